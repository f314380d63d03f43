// The QUIC tests proper. They need Deno's unstable network API, so
// quic_test.ts runs this file in a child: `deno test --unstable-net -A`.
// Real sockets on 127.0.0.1; every test awaits the event it waits for and
// stops what it starts (the child's sanitizers check the latter).

import assert from "node:assert/strict";
import { concat } from "../../codec/_bytes.ts";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import type { Connection } from "../../transport/connection.ts";
import { dial } from "../../transport/dial.ts";
import { listen } from "../../transport/listen.ts";
import { dialQuic, listenQuic } from "../../transport/quic.ts";
import { quicApi } from "../../transport/_quic_api.ts";
import { type Certificates, makeCertificates } from "./_quic_certs.ts";
import { measureCalls } from "./_quic_figures.ts";
import { portOf } from "./_helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "streamwire-quic-" });
const certs: Certificates = await makeCertificates(dir);
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/** Reads a connection to its end. */
async function readAll(conn: Connection): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for (let chunk = await conn.read!(); chunk !== null; chunk = await conn.read!()) {
    chunks.push(chunk);
  }
  return chunks;
}

Deno.test("quic: an RpcServer answers unary calls, a server stream under credit and a client stream", async () => {
  let produced = 0;
  const methods = new Methods()
    .unary("add", ([a, b]: number[]) => a + b)
    .serverStream("count", async function* (n: number) {
      for (let i = 0; i < n; i++) {
        produced++;
        yield i;
      }
    })
    .clientStream("sum", async (input: ReadableStream<number>) => {
      let sum = 0;
      for await (const value of input) sum += value;
      return sum;
    });
  const window = 8;
  const server = new RpcServer({ methods, window });
  const addr = server.listen({
    transport: "quic",
    port: 0,
    certFile: certs.certFile,
    keyFile: certs.keyFile,
  });
  assert.match(addr, /^quic:\/\/127\.0\.0\.1:\d+$/);
  const client = await connect(
    { transport: "quic", hostname: "localhost", port: portOf(addr), caFile: certs.caFile },
    { reconnect: false },
  );
  try {
    assert.equal(await client.call("add", [2, 40]), 42);
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.call("add", [i, i])),
    );
    assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => 2 * i));

    // 50 windows' worth: the stream only finishes if CREDIT keeps coming,
    // and the producer never runs more than a window ahead of the reader.
    let consumed = 0;
    for await (const value of client.stream("count", 50 * window)) {
      assert.equal(value, consumed);
      consumed++;
      assert.ok(produced <= consumed + window, `produced ${produced}, consumed ${consumed}`);
    }
    assert.equal(consumed, 50 * window);

    const values = Array.from({ length: 1000 }, (_, i) => i);
    assert.equal(await client.upload("sum", ReadableStream.from(values)), 499_500);
    const [session] = server.transport.sessions();
    assert.equal(session.conn.transport, "quic");
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("quic: a server certificate from a CA the client does not trust is refused", async () => {
  const listener = listenQuic({ port: 0, certFile: certs.certFile, keyFile: certs.keyFile });
  const port = portOf(listener.addr);
  try {
    await assert.rejects(
      dial({ transport: "quic", hostname: "localhost", port, caFile: certs.otherCaFile }),
      (error) => {
        assert.ok(error instanceof StreamwireError);
        assert.equal(error.code, Status.UNAVAILABLE);
        assert.match(error.message, /UnknownIssuer/);
        assert.match(error.message, /not signed by a trusted CA: pass its CA as caFile/);
        return true;
      },
    );
    // A URL carries no CA: the built-in roots do not know the test CA.
    await assert.rejects(
      connect(`quic://localhost:${port}`, { reconnect: false }),
      { code: Status.UNAVAILABLE, message: /UnknownIssuer/ },
    );
  } finally {
    listener.close();
  }
});

Deno.test("quic: bytes both ways, half-close, reads bounded by maxReadSize, close on both sides", async () => {
  const listener = listen({
    transport: "quic",
    port: 0,
    certFile: certs.certFile,
    keyFile: certs.keyFile,
  });
  // An echo server: what it reads it writes back, and ends when the client does.
  const served = (async () => {
    for await (const conn of listener) {
      await conn.readable.pipeTo(conn.writable);
      return conn;
    }
  })();
  const client = await dialQuic({
    hostname: "127.0.0.1",
    port: portOf(listener.addr),
    caCerts: [await Deno.readTextFile(certs.caFile)],
    readSize: 512,
    maxReadSize: 4096,
  });
  assert.equal(client.transport, "quic");
  assert.equal(client.remoteAddr, listener.addr);
  const sent = Uint8Array.from({ length: 300_000 }, (_, i) => i % 251);
  const reading = readAll(client);
  await client.write!(sent.subarray(0, 100_000));
  await client.write!(sent.subarray(100_000));
  const writer = client.writable.getWriter();
  await writer.close();
  const chunks = await reading;
  assert.deepEqual(concat(chunks), sent);
  assert.ok(chunks.every((chunk) => chunk.byteLength <= 4096), "no read beyond maxReadSize");
  assert.ok(chunks[0].byteLength <= 512, "the first read is readSize");
  const server = (await served)!;
  listener.close();
  await Promise.all([client.closed, server.closed]);
  await assert.rejects(client.write!(Uint8Array.of(1)), { code: Status.CANCELLED });
  assert.equal(await client.read!(), null);
});

Deno.test("quic: close() ends the peer's reads at EOF; a listener closes without its connections", async () => {
  const listener = listenQuic({ port: 0, certFile: certs.certFile, keyFile: certs.keyFile });
  const accepted = (async () => {
    for await (const conn of listener) return conn;
  })();
  const client = await dialQuic({
    hostname: "localhost",
    port: portOf(listener.addr),
    caFile: certs.caFile,
  });
  // QUIC announces a stream with its first bytes: the client speaks first.
  await client.write!(new TextEncoder().encode("hello"));
  const server = (await accepted)!;
  listener.close();
  assert.equal(new TextDecoder().decode((await server.read!())!), "hello");
  // The listener is closed; the accepted connection still works.
  await server.write!(new TextEncoder().encode("still here"));
  assert.equal(new TextDecoder().decode((await client.read!())!), "still here");
  server.close();
  assert.equal(await client.read!(), null);
  await Promise.all([client.closed, server.closed]);
});

Deno.test("quic: a peer that resets the connection fails reads and writes with unavailable", async () => {
  const listener = listenQuic({ port: 0, certFile: certs.certFile, keyFile: certs.keyFile });
  const accepted = (async () => {
    for await (const conn of listener) return conn;
  })();
  // A raw QUIC peer, to close the connection abruptly with an error code.
  const api = quicApi("test");
  const endpoint = new api.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
  const raw = await api.connectQuic({
    endpoint,
    hostname: "127.0.0.1",
    port: portOf(listener.addr),
    alpnProtocols: ["streamwire/1"],
    caCerts: [await Deno.readTextFile(certs.caFile)],
  });
  const stream = await raw.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  await writer.write(Uint8Array.of(1, 2, 3));
  const server = (await accepted)!;
  listener.close();
  assert.deepEqual(await server.read!(), Uint8Array.of(1, 2, 3));
  const reading = server.read!();
  raw.close({ closeCode: 7, reason: "gone" });
  await assert.rejects(reading, (error) => {
    assert.ok(error instanceof StreamwireError);
    assert.equal(error.code, Status.UNAVAILABLE);
    assert.match(error.message, /code 7 \('gone'\)|connection lost/);
    return true;
  });
  await server.closed;
  await assert.rejects(server.write!(Uint8Array.of(4)), { code: Status.UNAVAILABLE });
  endpoint.close();
});

Deno.test("quic: a dial gives up at timeoutMs when nothing answers, and on its signal", async () => {
  // A bound UDP port that never answers a handshake.
  const silent = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (silent.addr as Deno.NetAddr).port;
  try {
    await assert.rejects(
      dialQuic({ hostname: "127.0.0.1", port, caFile: certs.caFile, timeoutMs: 200 }),
      { code: Status.DEADLINE_EXCEEDED, message: /timeoutMs '200'/ },
    );
    const controller = new AbortController();
    const dialing = dialQuic({ hostname: "127.0.0.1", port, signal: controller.signal });
    controller.abort();
    await assert.rejects(dialing, { code: Status.CANCELLED });
  } finally {
    silent.close();
  }
});

Deno.test("quic: throughput figure against TCP (printed, not asserted)", async () => {
  const figures = await measureCalls(certs, { calls: 20_000, inflight: 128 });
  // quic_test.ts picks this line up and prints it.
  console.log(`QUIC_FIGURES ${JSON.stringify(figures)}`);
});
