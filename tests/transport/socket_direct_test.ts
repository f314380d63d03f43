// SocketConnection's pull interface, used by sessions: read() and write()
// without the streams, and streams made late (after EOF or close) ending as
// they would have.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { type Connection, dial, listen } from "../../transport/mod.ts";
import { SocketConnection } from "../../transport/_socket_connection.ts";

async function socketPair(): Promise<{ client: Connection; server: SocketConnection }> {
  const listener = listen({ port: 0 });
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await dial(listener.addr);
  const { value } = await accepted;
  listener.close();
  assert.ok(value instanceof SocketConnection);
  return { client, server: value };
}

Deno.test("SocketConnection read() and write() move bytes both ways", async () => {
  const { client, server } = await socketPair();
  const writer = client.writable.getWriter();
  await writer.write(Uint8Array.of(1, 2, 3));
  assert.deepEqual(await server.read(), Uint8Array.of(1, 2, 3));
  await server.write(Uint8Array.of(4, 5));
  const reader = client.readable.getReader();
  assert.deepEqual((await reader.read()).value, Uint8Array.of(4, 5));
  // An empty write is a no-op.
  await server.write(new Uint8Array(0));
  reader.releaseLock();
  writer.releaseLock();
  client.close();
  assert.equal(await server.read(), null);
  await Promise.all([client.closed, server.closed]);
});

Deno.test("SocketConnection read() chunks are fresh buffers while the read buffer is reused", async () => {
  const { client, server } = await socketPair();
  const writer = client.writable.getWriter();
  const received: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    await writer.write(Uint8Array.of(i, i, i));
    received.push((await server.read())!);
  }
  assert.deepEqual(received.map((c) => c[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(new Set(received.map((c) => c.buffer)).size, 10);
  writer.releaseLock();
  client.close();
  server.close();
  await Promise.all([client.closed, server.closed]);
});

Deno.test("SocketConnection at EOF: read() returns null and the connection closes", async () => {
  const { client, server } = await socketPair();
  await client.writable.close();
  assert.equal(await server.read(), null);
  await server.closed;
  // A readable made afterwards is already closed.
  assert.deepEqual(await Array.fromAsync(server.readable), []);
  // The client reads the server's close as EOF.
  assert.deepEqual(await Array.fromAsync(client.readable), []);
  await client.closed;
});

Deno.test("SocketConnection after close: write() rejects with cancelled, late streams are settled", async () => {
  const { client, server } = await socketPair();
  const reading = server.read();
  server.close();
  assert.equal(await reading, null);
  assert.equal(await server.read(), null);
  await assert.rejects(server.write(Uint8Array.of(1)), (error) => {
    assert.ok(error instanceof StreamwireError);
    assert.equal(error.code, Status.CANCELLED);
    return true;
  });
  // Streams made after the close are closed (readable) and errored (writable).
  assert.deepEqual(await Array.fromAsync(server.readable), []);
  await assert.rejects(server.writable.getWriter().write(Uint8Array.of(1)), {
    code: Status.CANCELLED,
  });
  await Array.fromAsync(client.readable);
  await Promise.all([client.closed, server.closed]);
});
