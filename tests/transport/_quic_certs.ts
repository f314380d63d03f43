// Throwaway certificates for the QUIC tests, made with the openssl CLI: a CA,
// and a server certificate for localhost / 127.0.0.1 that the CA signs.
// rustls refuses a self-signed server certificate, so QUIC tests need both.
import assert from "node:assert/strict";

/** Paths of the PEM files {@linkcode makeCertificates} wrote. */
export interface Certificates {
  /** The CA's certificate: what a client trusts (`caFile`). */
  caFile: string;
  /** A second, unrelated CA: trusting it alone must fail. */
  otherCaFile: string;
  /** The server's certificate, signed by the CA. */
  certFile: string;
  /** The server's private key. */
  keyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, `openssl ${args[0]}: ${new TextDecoder().decode(stderr)}`);
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  await openssl([
    "req",
    "-x509",
    ...EC,
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { cert, key };
}

/** Writes a CA, a server certificate it signs, and an unrelated CA into `dir`. */
export async function makeCertificates(dir: string): Promise<Certificates> {
  const ca = await makeCa(dir, "streamwire-test-ca");
  const other = await makeCa(dir, "other-ca");
  const keyFile = `${dir}/server.key`;
  const request = `${dir}/server.csr`;
  const certFile = `${dir}/server.pem`;
  const extensions = `${dir}/server.ext`;
  await openssl(["req", ...EC, "-subj", "/CN=localhost", "-keyout", keyFile, "-out", request]);
  // Not a CA (rustls refuses a CA as the server's own certificate), and
  // naming both ways the tests reach the server.
  await Deno.writeTextFile(
    extensions,
    "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    request,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    extensions,
    "-out",
    certFile,
  ]);
  return { caFile: ca.cert, otherCaFile: other.cert, certFile, keyFile };
}
