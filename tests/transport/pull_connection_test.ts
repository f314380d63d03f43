// What the socket and in-memory connections share through PullConnection:
// a chunk that is not bytes is refused with invalid_argument and closes the
// connection, through write() and through the writable alike.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { type Connection, dial, listen, memoryPair } from "../../transport/mod.ts";

async function socketPair(): Promise<[Connection, Connection]> {
  const listener = listen({ port: 0 });
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await dial(listener.addr);
  const { value } = await accepted;
  listener.close();
  return [client, value as Connection];
}

const pairs: [string, () => Promise<[Connection, Connection]>][] = [
  ["TCP", socketPair],
  ["memoryPair", () => Promise.resolve(memoryPair())],
];

function assertNotBytes(error: unknown): true {
  assert.ok(error instanceof StreamwireError);
  assert.equal(error.code, Status.INVALID_ARGUMENT);
  assert.equal(error.message, "Chunk of type '[object String]' is not a Uint8Array");
  return true;
}

for (const [name, makePair] of pairs) {
  Deno.test(`${name} write() of a chunk that is not bytes rejects with invalid_argument and closes`, async () => {
    const [a, b] = await makePair();
    await assert.rejects(a.write!("abc" as unknown as Uint8Array), assertNotBytes);
    await a.closed;
    // Later writes fail as on any closed connection; the peer reaches the end.
    await assert.rejects(a.write!(Uint8Array.of(1)), StreamwireError);
    assert.equal(await b.read!(), null);
    await b.closed;
  });

  Deno.test(`${name} writable refuses a chunk that is not bytes with invalid_argument and closes`, async () => {
    const [a, b] = await makePair();
    const writer = a.writable.getWriter();
    await assert.rejects(writer.write("abc" as unknown as Uint8Array), assertNotBytes);
    await a.closed;
    await assert.rejects(writer.closed, StreamwireError);
    assert.deepEqual(await Array.fromAsync(b.readable), []);
    await b.closed;
  });
}
