import assert from "node:assert/strict";
import { selfSigned } from "./_tls.ts";
import { delay, portOf } from "./_helpers.ts";
import { concat } from "../../codec/_bytes.ts";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import {
  type Connection,
  dial,
  type DialOptions,
  listen,
  type Listener,
  type ListenOptions,
  memoryListener,
  memoryPair,
} from "../../transport/mod.ts";
import { DEFAULT_READ_SIZE, SocketConnection } from "../../transport/_socket_connection.ts";

// --- helpers ---------------------------------------------------------------

function pattern(size: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed + (i >>> 8)) & 0xff;
  return bytes;
}

/** The next connection a listener accepts. */
async function accept(listener: Listener): Promise<Connection> {
  const iterator = listener[Symbol.asyncIterator]();
  const next = await iterator.next();
  assert.equal(next.done, false);
  await iterator.return?.();
  return next.value as Connection;
}

interface Pair {
  listener: Listener;
  client: Connection;
  server: Connection;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A listener, a client connected to it and the accepted server side. */
async function socketPair(
  listenOptions: ListenOptions = {},
  connectOptions: Partial<DialOptions> = {},
): Promise<Pair> {
  const listener = listen({ port: 0, ...listenOptions });
  const accepted = accept(listener);
  const client = await dial(
    Object.keys(connectOptions).length ? { ...connectOptions } : listener.addr,
  );
  const server = await accepted;
  return {
    listener,
    client,
    server,
    async [Symbol.asyncDispose]() {
      listener.close();
      client.close();
      server.close();
      await Promise.all([client.closed, server.closed]);
    },
  };
}

/** Writes `data` in pieces of `piece` bytes, then half-closes. */
async function send(conn: Connection, data: Uint8Array, piece = data.byteLength): Promise<void> {
  const writer = conn.writable.getWriter();
  for (let offset = 0; offset < data.byteLength; offset += piece) {
    await writer.write(data.subarray(offset, offset + piece));
  }
  await writer.close();
}

/** Echoes `size` bytes through an echo server and checks them. */
async function echoRoundTrip(
  pair: { client: Connection; server: Connection },
  size: number,
): Promise<Uint8Array[]> {
  const echoed = pair.server.readable.pipeTo(pair.server.writable);
  const data = pattern(size, size);
  const [chunks] = await Promise.all([
    Array.fromAsync(pair.client.readable),
    send(pair.client, data),
  ]);
  await echoed;
  const received = concat(chunks);
  assert.equal(received.byteLength, size);
  assert.ok(received.every((byte, i) => byte === data[i]), `echo of ${size} bytes intact`);
  await Promise.all([pair.client.closed, pair.server.closed]);
  return chunks;
}

/** Reads with `read()` until EOF and joins the chunks. */
async function readAll(conn: Connection): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let chunk = await conn.read!(); chunk !== null; chunk = await conn.read!()) {
    chunks.push(chunk);
  }
  return concat(chunks);
}

/** Writes with `write` until a write fails; returns that failure. */
async function writeUntilFailure(write: (chunk: Uint8Array) => Promise<void>): Promise<unknown> {
  const chunk = pattern(1024);
  for (;;) {
    try {
      await write(chunk);
    } catch (error) {
      return error;
    }
  }
}

/**
 * Counts the ReadableStreams and WritableStreams made while `body` runs, by
 * standing in for the global constructors.
 */
async function countStreams(body: () => Promise<void>): Promise<number> {
  const { ReadableStream: Readable, WritableStream: Writable } = globalThis;
  let made = 0;
  globalThis.ReadableStream = class extends Readable<unknown> {
    constructor(...args: ConstructorParameters<typeof Readable>) {
      super(...args);
      made++;
    }
  } as typeof Readable;
  globalThis.WritableStream = class extends Writable<unknown> {
    constructor(...args: ConstructorParameters<typeof Writable>) {
      super(...args);
      made++;
    }
  } as typeof Writable;
  try {
    await body();
  } finally {
    globalThis.ReadableStream = Readable;
    globalThis.WritableStream = Writable;
  }
  return made;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function assertStreamwireError(
  promise: Promise<unknown>,
  code?: number,
): Promise<StreamwireError> {
  let caught: unknown;
  await promise.then(() => assert.fail("expected a rejection"), (error) => caught = error);
  assert.ok(caught instanceof StreamwireError, `got ${caught}`);
  if (code !== undefined) assert.equal(caught.code, code, caught.message);
  return caught;
}

// --- TCP -------------------------------------------------------------------

for (const size of [1, 64 * 1024, 8 * 1024 * 1024]) {
  Deno.test(`TCP echoes ${size} bytes intact and in order`, async () => {
    await using pair = await socketPair();
    const chunks = await echoRoundTrip(pair, size);
    if (size === 8 * 1024 * 1024) {
      // Adaptive sizing: a bulk transfer ends up reading large chunks.
      assert.equal(Math.max(...chunks.map((c) => c.byteLength)), 64 * 1024);
    }
  });
}

Deno.test("TCP connections report addresses in URL form", async () => {
  await using pair = await socketPair({ hostname: "127.0.0.1" });
  const { listener, client, server } = pair;
  assert.match(listener.addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(portOf(listener.addr), 0);
  assert.equal(client.remoteAddr, listener.addr);
  assert.equal(server.localAddr, listener.addr);
  assert.match(client.localAddr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.remoteAddr, client.localAddr);
  assert.equal(client.transport, "tcp");
  assert.equal(server.transport, "tcp");
});

Deno.test("TCP readable chunks are distinct buffers, never reused", async () => {
  await using pair = await socketPair();
  const writer = pair.client.writable.getWriter();
  const reader = pair.server.readable.getReader();
  const sent: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) {
    const message = pattern(100 + i * 50, i);
    sent.push(message);
    await writer.write(message);
    let got = 0;
    while (got < message.byteLength) {
      const { value } = await reader.read();
      assert.ok(value);
      received.push(value);
      got += value.byteLength;
    }
  }
  // Checked only now: a reused buffer would have been overwritten by later reads.
  assert.deepEqual(concat(received), concat(sent));
  assert.equal(new Set(received.map((c) => c.buffer)).size, received.length);
  reader.releaseLock();
  writer.releaseLock();
});

Deno.test("TCP EOF from the peer closes the readable", async () => {
  await using pair = await socketPair();
  await send(pair.client, Uint8Array.of(1, 2, 3));
  const chunks = await Array.fromAsync(pair.server.readable);
  assert.deepEqual(concat(chunks), Uint8Array.of(1, 2, 3));
  // Not half-open: EOF closed the server, whose FIN ends the client too.
  await pair.server.closed;
  assert.deepEqual(await Array.fromAsync(pair.client.readable), []);
  await pair.client.closed;
});

for (const closer of ["client", "server"] as const) {
  Deno.test(`TCP close() by the ${closer} is idempotent and closes both sides`, async () => {
    await using pair = await socketPair();
    const other = closer === "client" ? pair.server : pair.client;
    const self = pair[closer];
    const reading = Array.fromAsync(other.readable);
    self.close();
    self.close();
    self.close();
    await self.closed;
    assert.deepEqual(await reading, []);
    await other.closed;
    other.close();
    // The writable of a closed connection rejects with a StreamwireError.
    await assertStreamwireError(
      self.writable.getWriter().write(Uint8Array.of(1)),
      Status.CANCELLED,
    );
    // And close() still does not throw.
    self.close();
  });
}

Deno.test("TCP close() settles a pending read", async () => {
  await using pair = await socketPair();
  const reader = pair.server.readable.getReader();
  const pending = reader.read();
  pair.server.close();
  assert.deepEqual(await pending, { done: true, value: undefined });
  await pair.server.closed;
  // The client notices by reading: EOF, then it closes itself.
  assert.deepEqual(await Array.fromAsync(pair.client.readable), []);
  await pair.client.closed.then(() => {}, () => assert.fail("closed never rejects"));
});

Deno.test("TCP close() fails a write stalled by backpressure", async () => {
  await using pair = await socketPair();
  const writer = pair.client.writable.getWriter();
  // Nobody reads the server side: the kernel buffers fill and a write stalls.
  const big = pattern(32 * 1024 * 1024);
  const write = writer.write(big);
  await delay(20);
  pair.client.close();
  await assertStreamwireError(write, Status.CANCELLED);
  await pair.client.closed;
  await Array.fromAsync(pair.server.readable);
  await pair.server.closed;
});

Deno.test("TCP peer reset while reading ends the readable with a StreamwireError", async () => {
  // Half-open, so the server is still open to write into the reset socket.
  await using pair = await socketPair({ allowHalfOpen: true });
  const { client, server } = pair;
  // Unread data in the client's receive buffer makes its close send RST.
  const writer = server.writable.getWriter();
  await writer.write(pattern(1000));
  await delay(20);
  const reading = Array.fromAsync(server.readable).then(
    () => "eof",
    (error) => error,
  );
  client.close();
  // Deno reports a reset on read as EOF; an error would be unavailable.
  const outcome = await reading;
  if (outcome !== "eof") {
    assert.ok(outcome instanceof StreamwireError, String(outcome));
    assert.equal(outcome.code, Status.UNAVAILABLE);
  }
  // Writes into the reset socket fail with unavailable, not an uncaught Deno error.
  let failure: unknown;
  try {
    for (let i = 0; i < 100; i++) await writer.write(pattern(65536));
  } catch (error) {
    failure = error;
  }
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  assert.match(failure.message, /^Connection 'tcp:\/\/127\.0\.0\.1:\d+' failed while writing/);
  await Promise.all([server.closed, client.closed]);
});

Deno.test("TCP cancelling the readable closes the connection", async () => {
  await using pair = await socketPair();
  await pair.server.readable.cancel();
  await pair.server.closed;
  await Array.fromAsync(pair.client.readable);
  await pair.client.closed;
});

Deno.test("TCP allowHalfOpen lets a side answer after the peer's EOF", async () => {
  const listener = listen({ port: 0, allowHalfOpen: true });
  const accepted = accept(listener);
  const client = await dial(listener.addr);
  const server = await accepted;
  await send(client, new TextEncoder().encode("question"));
  const question = await new Response(server.readable).text();
  assert.equal(question, "question");
  await delay(10);
  // Still open: the answer goes out after the EOF.
  await send(server, new TextEncoder().encode("answer"));
  assert.equal(await new Response(client.readable).text(), "answer");
  await Promise.all([client.closed, server.closed]);
  listener.close();
});

Deno.test("TCP adaptive reads: large under bulk, small again when idle", async () => {
  await using pair = await socketPair({}, {});
  const server = pair.server;
  assert.ok(server instanceof SocketConnection);
  assert.equal(server.nextReadSize, DEFAULT_READ_SIZE);
  const writer = pair.client.writable.getWriter();
  const reader = server.readable.getReader();
  const bulk = 4 * 1024 * 1024;
  const writing = writer.write(pattern(bulk));
  let got = 0;
  let largest = 0;
  while (got < bulk) {
    const { value } = await reader.read();
    assert.ok(value);
    got += value.byteLength;
    largest = Math.max(largest, value.byteLength);
  }
  await writing;
  assert.equal(largest, 65536);
  // A small message afterwards: read into the large buffer, copied out so it
  // does not pin it, and the next (idle, pending) read is small again.
  await writer.write(Uint8Array.of(1, 2, 3, 4, 5));
  const { value: small } = await reader.read();
  assert.deepEqual(small, Uint8Array.of(1, 2, 3, 4, 5));
  assert.ok(small!.buffer.byteLength <= DEFAULT_READ_SIZE, `buffer of ${small!.buffer.byteLength}`);
  assert.equal(server.nextReadSize, DEFAULT_READ_SIZE);
  reader.releaseLock();
  writer.releaseLock();
});

Deno.test("TCP adaptive reads: a full read takes the rest of the burst whole, then sizes to the traffic", async () => {
  await using pair = await socketPair({}, {});
  const server = pair.server;
  assert.ok(server instanceof SocketConnection);
  const writer = pair.client.writable.getWriter();
  // 10 KB in one write: the first read (readSize) is full, so the next read has
  // room for everything the peer sent in that burst.
  await writer.write(pattern(10_000));
  const first = await server.read!();
  assert.equal(first!.byteLength, DEFAULT_READ_SIZE);
  assert.equal(server.nextReadSize, 65536);
  let got = first!.byteLength;
  while (got < 10_000) got += (await server.read!())!.byteLength;
  // The pending read is sized to that traffic (twice the last read), not to the maximum.
  assert.ok(server.nextReadSize <= 32768, `next read of ${server.nextReadSize}`);
  // A small message brings it back to readSize.
  await writer.write(Uint8Array.of(1, 2, 3));
  assert.deepEqual(await server.read!(), Uint8Array.of(1, 2, 3));
  assert.equal(server.nextReadSize, DEFAULT_READ_SIZE);
  writer.releaseLock();
});

Deno.test("TCP readSize and maxReadSize bound the read buffers", async () => {
  const listener = listen({ port: 0, readSize: 256, maxReadSize: 1024 });
  const accepted = accept(listener);
  const client = await dial(listener.addr);
  const server = await accepted;
  assert.ok(server instanceof SocketConnection);
  assert.equal(server.nextReadSize, 256);
  const [chunks] = await Promise.all([
    Array.fromAsync(server.readable),
    send(client, pattern(100_000)),
    Array.fromAsync(client.readable),
  ]);
  assert.equal(concat(chunks).byteLength, 100_000);
  assert.ok(chunks.every((c) => c.byteLength <= 1024));
  assert.equal(Math.max(...chunks.map((c) => c.byteLength)), 1024);
  listener.close();
  await Promise.all([client.closed, server.closed]);
});

Deno.test("TCP listener close() ends a pending iteration cleanly", async () => {
  const listener = listen({ port: 0 });
  const iteration = Array.fromAsync(listener);
  await delay(10);
  listener.close();
  listener.close();
  assert.deepEqual(await iteration, []);
});

Deno.test("TCP connect to a closed port rejects with unavailable", async () => {
  const listener = listen({ port: 0 });
  listener.close();
  await assertStreamwireError(dial(listener.addr), Status.UNAVAILABLE);
});

Deno.test("TCP listen on a used port throws already_exists", () => {
  const listener = listen({ port: 0 });
  try {
    assert.throws(
      () => listen(listener.addr),
      (error) => error instanceof StreamwireError && error.code === Status.ALREADY_EXISTS,
    );
  } finally {
    listener.close();
  }
});

// --- a failed write keeps what was received -------------------------------

Deno.test("TCP after a failed write, read() still returns what the peer sent, then null", async () => {
  await using pair = await socketPair();
  const { client, server } = pair;
  // The peer says its last word and goes away, as a server's GOAWAY then close.
  await server.write!(encoder.encode("goaway"));
  server.close();
  await server.closed;
  // Writes into the closed socket fail once its reset comes back (EPIPE).
  const failure = await writeUntilFailure((chunk) => client.write!(chunk));
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  assert.match(failure.message, /^Connection 'tcp:\/\/127\.0\.0\.1:\d+' failed while writing/);
  // The write side is done: later writes fail with the same error.
  await assert.rejects(client.write!(Uint8Array.of(1)), (error) => error === failure);
  // The read side is not: the bytes the peer sent are still there, then EOF.
  assert.equal(decoder.decode(await readAll(client)), "goaway");
  assert.equal(await client.read!(), null);
  await client.closed;
});

Deno.test("TCP after a failed write, the readable still yields what the peer sent", async () => {
  await using pair = await socketPair();
  const { client, server } = pair;
  const serverWriter = server.writable.getWriter();
  await serverWriter.write(encoder.encode("goaway"));
  server.close();
  await server.closed;
  const writer = client.writable.getWriter();
  const failure = await writeUntilFailure((chunk) => writer.write(chunk));
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  // The writable is errored with the failure; the readable goes on to EOF.
  await assert.rejects(writer.closed, (error) => error === failure);
  const chunks = await Array.fromAsync(client.readable);
  assert.equal(decoder.decode(concat(chunks)), "goaway");
  await client.closed;
});

Deno.test("TCP a failed write after EOF closes the connection", async () => {
  const listener = listen({ port: 0 });
  const accepted = accept(listener);
  // Half-open, so that EOF alone leaves the connection open for writing.
  const client = await dial({ port: portOf(listener.addr), allowHalfOpen: true });
  const server = await accepted;
  listener.close();
  await server.write!(encoder.encode("bye"));
  server.close();
  assert.equal(decoder.decode(await readAll(client)), "bye");
  // Nothing is left to read, so the failed write ends the connection.
  const failure = await writeUntilFailure((chunk) => client.write!(chunk));
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  await Promise.all([client.closed, server.closed]);
});

Deno.test("memoryPair after the peer closed, read() still returns what it sent, then null", async () => {
  const [a, b] = memoryPair();
  await b.write!(encoder.encode("goaway"));
  b.close();
  const failure = await writeUntilFailure((chunk) => a.write!(chunk));
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  await assert.rejects(a.write!(Uint8Array.of(1)), (error) => error === failure);
  assert.equal(decoder.decode(await readAll(a)), "goaway");
  assert.equal(await a.read!(), null);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair after the peer closed, the readable still yields what it sent", async () => {
  const [a, b] = memoryPair();
  await b.writable.getWriter().write(encoder.encode("goaway"));
  b.close();
  const writer = a.writable.getWriter();
  const failure = await writeUntilFailure((chunk) => writer.write(chunk));
  assert.ok(failure instanceof StreamwireError, String(failure));
  assert.equal(failure.code, Status.UNAVAILABLE);
  const chunks = await Array.fromAsync(a.readable);
  assert.equal(decoder.decode(concat(chunks)), "goaway");
  await Promise.all([a.closed, b.closed]);
});

// --- dial: timeoutMs and signal --------------------------------------------

/**
 * A plain TCP listener for TLS dials that never get an answer: the kernel
 * accepts, and the server side reads the ClientHello and says nothing.
 */
async function silentTlsPeer(
  dialing: (port: number) => Promise<Connection>,
): Promise<
  { outcome: Promise<unknown>; hello: Uint8Array; [Symbol.asyncDispose](): Promise<void> }
> {
  const listener = listen({ port: 0 });
  const accepted = accept(listener);
  const outcome = dialing(portOf(listener.addr)).then(
    (conn) => {
      conn.close();
      return assert.fail("the dial should not complete");
    },
    (error) => error,
  );
  const server = await accepted;
  // The first bytes are the ClientHello: the handshake is under way.
  const hello = (await server.read!())!;
  return {
    outcome,
    hello,
    async [Symbol.asyncDispose]() {
      listener.close();
      server.close();
      await server.closed;
    },
  };
}

Deno.test("dial with an aborted signal rejects with cancelled at once", async () => {
  const listener = listen({ port: 0 });
  const controller = new AbortController();
  controller.abort(new Error("not needed any more"));
  const error = await assertStreamwireError(
    dial({ port: portOf(listener.addr), signal: controller.signal }),
    Status.CANCELLED,
  );
  assert.equal(error.message, `Dial to '${listener.addr}' was cancelled`);
  assert.equal((error.cause as Error).message, "not needed any more");
  listener.close();
});

Deno.test("dial aborted while connecting rejects with cancelled and closes the late socket", async () => {
  const listener = listen({ port: 0 });
  const accepted = accept(listener);
  const controller = new AbortController();
  const dialing = dial({ port: portOf(listener.addr), signal: controller.signal });
  // The connect is in flight: it cannot be stopped, so its socket is closed on arrival.
  controller.abort();
  await assertStreamwireError(dialing, Status.CANCELLED);
  const server = await accepted;
  assert.equal(await server.read!(), null);
  await server.closed;
  listener.close();
});

Deno.test("dial aborted during a TLS handshake that hangs rejects with cancelled", async () => {
  const controller = new AbortController();
  await using peer = await silentTlsPeer((port) =>
    dial({ transport: "tls", port, signal: controller.signal })
  );
  assert.equal(peer.hello[0], 0x16, "a TLS handshake record");
  controller.abort();
  const error = await peer.outcome;
  assert.ok(error instanceof StreamwireError, String(error));
  assert.equal(error.code, Status.CANCELLED);
});

Deno.test("dial past timeoutMs in a TLS handshake that hangs rejects with deadline_exceeded", async () => {
  await using peer = await silentTlsPeer((port) => dial({ transport: "tls", port, timeoutMs: 50 }));
  assert.equal(peer.hello[0], 0x16, "a TLS handshake record");
  const error = await peer.outcome;
  assert.ok(error instanceof StreamwireError, String(error));
  assert.equal(error.code, Status.DEADLINE_EXCEEDED);
  assert.match(
    error.message,
    /^Dial to 'tls:\/\/127\.0\.0\.1:\d+' did not complete within timeoutMs '50'$/,
  );
});

Deno.test("dial's signal and timeoutMs do not outlive the dial", async () => {
  await using pair = await socketPair();
  const controller = new AbortController();
  const client = await dial({ port: portOf(pair.listener.addr), signal: controller.signal });
  const server = await accept(pair.listener);
  controller.abort();
  await client.write!(Uint8Array.of(7));
  assert.deepEqual(await server.read!(), Uint8Array.of(7));
  client.close();
  server.close();
  await Promise.all([client.closed, server.closed]);
});

Deno.test("dial rejects a timeoutMs that is not a positive number with invalid_argument", async () => {
  for (const timeoutMs of [0, -1, Number.NaN, "5" as unknown as number]) {
    const error = await assertStreamwireError(
      dial({ port: 1, timeoutMs }),
      Status.INVALID_ARGUMENT,
    );
    assert.ok(error.message.startsWith(`timeoutMs '${timeoutMs}'`), error.message);
  }
});

// --- Unix ------------------------------------------------------------------

Deno.test("Unix socket round trip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/echo.sock`;
    const listener = listen({ transport: "unix", path });
    assert.equal(listener.addr, `unix://${path}`);
    const accepted = accept(listener);
    const client = await dial(listener.addr);
    const server = await accepted;
    assert.equal(client.transport, "unix");
    assert.equal(client.remoteAddr, listener.addr);
    assert.equal(server.localAddr, listener.addr);
    await echoRoundTrip({ client, server }, 300_000);
    listener.close();
    // Closing removed the socket file, so the path can be listened on again.
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    listen(`unix://${path}`).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- TLS -------------------------------------------------------------------

Deno.test("TLS round trip with a self-signed certificate", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certFile, keyFile } = await selfSigned(dir);
    const listener = listen({ transport: "tls", port: 0, certFile, keyFile });
    assert.match(listener.addr, /^tls:\/\/127\.0\.0\.1:\d+$/);
    const accepted = accept(listener);
    const client = await dial({
      transport: "tls",
      hostname: "localhost",
      port: portOf(listener.addr),
      caCerts: [await Deno.readTextFile(certFile)],
    });
    const server = await accepted;
    assert.equal(client.transport, "tls");
    assert.equal(server.transport, "tls");
    assert.equal(server.remoteAddr, client.localAddr);
    await echoRoundTrip({ client, server }, 1_000_000);
    listener.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS connect rejects an untrusted certificate with unavailable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certFile, keyFile } = await selfSigned(dir);
    const listener = listen({
      transport: "tls",
      port: 0,
      cert: await Deno.readTextFile(certFile),
      key: await Deno.readTextFile(keyFile),
    });
    const accepted = accept(listener);
    await assertStreamwireError(dial(listener.addr), Status.UNAVAILABLE);
    // The server side sees the failed handshake as a broken connection.
    const server = await accepted;
    await Array.fromAsync(server.readable).catch((error) => {
      assert.ok(error instanceof StreamwireError);
      assert.equal(error.code, Status.UNAVAILABLE);
    });
    await server.closed;
    listener.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- memory ----------------------------------------------------------------

Deno.test("memoryPair round trip, with copies of written chunks", async () => {
  const [a, b] = memoryPair();
  assert.equal(a.transport, "memory");
  assert.match(a.localAddr, /^memory:\/\/\d+$/);
  assert.equal(a.remoteAddr, b.localAddr);
  assert.equal(b.remoteAddr, a.localAddr);
  const data = pattern(200_000);
  const writer = a.writable.getWriter();
  const reading = Array.fromAsync(b.readable);
  const scratch = new Uint8Array(1000);
  for (let offset = 0; offset < data.byteLength; offset += 1000) {
    scratch.set(data.subarray(offset, offset + 1000));
    await writer.write(scratch);
    scratch.fill(0xee); // the connection keeps no reference after the write
  }
  await writer.close();
  const chunks = await reading;
  assert.deepEqual(concat(chunks), data);
  assert.equal(new Set(chunks.map((c) => c.buffer)).size, chunks.length);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair writes stall after highWaterMark bytes without a reader", async () => {
  const [a, b] = memoryPair({ highWaterMark: 16 * 1024 });
  const writer = a.writable.getWriter();
  let accepted = 0;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) {
    writes.push(writer.write(pattern(1024, i)).then(() => void accepted++));
  }
  await delay(20);
  // 15 writes fit below 16 KiB; the 16th fills the queue and waits.
  assert.ok(accepted >= 15 && accepted <= 17, `accepted ${accepted}`);
  const stalled = accepted;
  const reader = b.readable.getReader();
  const received: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) received.push((await reader.read()).value!);
  await delay(10);
  assert.ok(accepted > stalled && accepted <= stalled + 11, `accepted ${accepted}`);
  reader.releaseLock();
  const [rest] = await Promise.all([
    Array.fromAsync(b.readable),
    Promise.all(writes).then(() => writer.close()),
  ]);
  const expected = concat(Array.from({ length: 100 }, (_, i) => pattern(1024, i)));
  assert.deepEqual(concat([...received, ...rest]), expected);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair close() ends the peer's readable and closes both", async () => {
  const [a, b] = memoryPair();
  const writer = a.writable.getWriter();
  await writer.write(Uint8Array.of(9));
  a.close();
  a.close();
  await Promise.all([a.closed, b.closed]);
  // What was sent before close stays readable, then EOF.
  assert.deepEqual(await Array.fromAsync(b.readable), [Uint8Array.of(9)]);
  await assertStreamwireError(writer.write(Uint8Array.of(1)), Status.CANCELLED);
  await assertStreamwireError(b.writable.getWriter().write(Uint8Array.of(1)), Status.UNAVAILABLE);
  assert.deepEqual(await Array.fromAsync(a.readable), []);
});

Deno.test("memoryPair close() fails a write waiting for room", async () => {
  const [a, b] = memoryPair({ highWaterMark: 0 });
  const writer = a.writable.getWriter();
  const write = writer.write(Uint8Array.of(1));
  await delay(5);
  b.close();
  await assertStreamwireError(write, Status.UNAVAILABLE);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair writer.close() half-closes with allowHalfOpen", async () => {
  const [a, b] = memoryPair({ allowHalfOpen: true });
  await send(a, new TextEncoder().encode("question"));
  assert.equal(await new Response(b.readable).text(), "question");
  await delay(5);
  await send(b, new TextEncoder().encode("answer"));
  assert.equal(await new Response(a.readable).text(), "answer");
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair EOF closes the connection after its writes", async () => {
  const [a, b] = memoryPair();
  const echoed = b.readable.pipeTo(b.writable);
  const [chunks] = await Promise.all([
    Array.fromAsync(a.readable),
    send(a, pattern(300_000), 10_000),
  ]);
  assert.deepEqual(concat(chunks), pattern(300_000));
  await echoed;
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryListener accepts what dial() dials", async () => {
  const listener = memoryListener();
  assert.match(listener.addr, /^memory:\/\/\d+$/);
  const served: string[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      served.push(conn.remoteAddr);
      await conn.readable.pipeTo(conn.writable);
    }
  })();
  for (const word of ["one", "two"]) {
    const client = await listener.connect();
    assert.equal(client.remoteAddr, listener.addr);
    await send(client, new TextEncoder().encode(word));
    assert.equal(await new Response(client.readable).text(), word);
    served.push(`client ${client.localAddr}`);
    await client.closed;
  }
  listener.close();
  await serving;
  assert.equal(served.length, 4);
  assert.equal(`client ${served[0]}`, served[1]);
  await assertStreamwireError(listener.connect(), Status.UNAVAILABLE);
});

Deno.test("memoryListener close() closes connections dialed but not accepted", async () => {
  const listener = memoryListener();
  const client = await listener.connect();
  listener.close();
  await client.closed;
  assert.deepEqual(await Array.fromAsync(listener), []);
});

Deno.test("memoryPair read() and write() move copies, with backpressure", async () => {
  const [a, b] = memoryPair({ highWaterMark: 4 });
  const scratch = Uint8Array.of(1, 2, 3);
  await a.write!(scratch);
  scratch.fill(0); // the connection keeps no reference after the write
  // The queue now holds 3 of 4 bytes: the next write waits for the reader.
  let written = false;
  const writing = a.write!(Uint8Array.of(4, 5)).then(() => written = true);
  const first = await b.read!();
  assert.deepEqual(first, Uint8Array.of(1, 2, 3));
  await writing;
  assert.equal(written, true);
  assert.deepEqual(await b.read!(), Uint8Array.of(4, 5));
  // An empty write resolves and sends nothing.
  await a.write!(new Uint8Array(0));
  a.close();
  assert.equal(await b.read!(), null);
  assert.equal(await a.read!(), null);
  await assertStreamwireError(a.write!(Uint8Array.of(1)), Status.CANCELLED);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("memoryPair used through read() and write() makes no streams", async () => {
  let pair: Connection[] = [];
  const made = await countStreams(async () => {
    const [a, b] = pair = memoryPair();
    await a.write!(Uint8Array.of(1));
    assert.deepEqual(await b.read!(), Uint8Array.of(1));
    await b.write!(Uint8Array.of(2));
    assert.deepEqual(await a.read!(), Uint8Array.of(2));
    a.close();
    assert.equal(await b.read!(), null);
    await Promise.all([a.closed, b.closed]);
  });
  assert.equal(made, 0);
  // Streams made afterwards end as they would have.
  const [a, b] = pair;
  assert.deepEqual(await Array.fromAsync(b.readable), []);
  await assertStreamwireError(a.writable.getWriter().write(Uint8Array.of(1)), Status.CANCELLED);
  await assertStreamwireError(b.writable.getWriter().write(Uint8Array.of(1)), Status.UNAVAILABLE);
});

Deno.test("TCP connections used through read() and write() make no streams", async () => {
  const made = await countStreams(async () => {
    await using pair = await socketPair();
    const { client, server } = pair;
    await client.write!(Uint8Array.of(1));
    assert.deepEqual(await server.read!(), Uint8Array.of(1));
    client.close();
    assert.equal(await server.read!(), null);
  });
  assert.equal(made, 0);
});

Deno.test("memoryListener connections have read() and write()", async () => {
  const listener = memoryListener();
  const client = await listener.connect();
  const server = await accept(listener);
  await client.write!(encoder.encode("ping"));
  assert.equal(decoder.decode((await server.read!())!), "ping");
  await server.write!(encoder.encode("pong"));
  assert.equal(decoder.decode((await client.read!())!), "pong");
  listener.close();
  client.close();
  assert.equal(await server.read!(), null);
  await Promise.all([client.closed, server.closed]);
});

// --- arguments -------------------------------------------------------------

Deno.test("listen and connect reject bad URLs and options with invalid_argument", async () => {
  const bad: (string | URL | ListenOptions)[] = [
    "nope",
    "127.0.0.1:9000",
    "http://localhost:80",
    "tcp://host:99999",
    "tcp://host:80/path",
    "tcp://user@host:80",
    "unix://relative/x.sock",
    "unix:///",
    new URL("udp://host:1"),
    { transport: "unix" },
    { transport: "sctp" as "tcp" },
    { port: -1 },
    { port: 1.5 },
    { hostname: "" },
    { port: 0, transport: "tls" },
    { port: 0, transport: "tls", certFile: "/nonexistent/c.pem", keyFile: "/nonexistent/k.pem" },
    { port: 0, readSize: 0 },
    { port: 0, readSize: 4096, maxReadSize: 1024 },
  ];
  for (const input of bad) {
    assert.throws(
      () => listen(input),
      (error) => {
        assert.ok(error instanceof StreamwireError, `${JSON.stringify(input)}: ${error}`);
        assert.equal(error.code, Status.INVALID_ARGUMENT, error.message);
        return true;
      },
    );
    if (typeof input === "string" || input instanceof URL) {
      const error = await assertStreamwireError(dial(input), Status.INVALID_ARGUMENT);
      assert.ok(error.message.includes(String(input)), error.message);
    }
  }
  await assertStreamwireError(dial({ transport: "unix" }), Status.INVALID_ARGUMENT);
  await assertStreamwireError(
    dial({ transport: "tls", caFile: "/nonexistent/ca.pem" }),
    Status.INVALID_ARGUMENT,
  );
  assert.throws(() => memoryPair({ highWaterMark: -1 }), StreamwireError);
});
