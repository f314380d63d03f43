// A throwaway self-signed certificate for TLS tests, made with the openssl CLI
// (.ci/run installs it when missing).
import assert from "node:assert/strict";

/** Writes a certificate and key for localhost / 127.0.0.1 into `dir`. */
export async function selfSigned(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = `${dir}/c.pem`;
  const keyFile = `${dir}/k.pem`;
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // Without this, `req -x509` marks the certificate as a CA, and rustls
      // refuses a CA as the server's own certificate (CaUsedAsEndEntity).
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return { certFile, keyFile };
}
