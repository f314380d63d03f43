// How many writes a served stream takes: a producer that makes its values
// asynchronously (an async generator, a ReadableStream) must still have its
// DATA coalesced into few writes, not one write per handful of frames.

import assert from "node:assert/strict";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import { memoryPair } from "../../transport/memory.ts";

const VALUES = 2_000;

for (
  const [name, methods] of [
    [
      "an async generator",
      new Methods().serverStream("values", async function* (n: number) {
        for (let i = 1; i <= n; i++) yield i;
      }),
    ],
    [
      "a ReadableStream",
      new Methods().serverStream("values", (n: number) => {
        let i = 0;
        return new ReadableStream<number>({
          pull: (controller) => ++i > n ? controller.close() : controller.enqueue(i),
        });
      }),
    ],
  ] as const
) {
  Deno.test(`a server stream from ${name} goes out in few writes`, async () => {
    const server = new RpcServer({ methods, metrics: false });
    const [a, b] = memoryPair();
    let writes = 0;
    const write = a.write!.bind(a);
    a.write = (chunk) => {
      writes++;
      return write(chunk);
    };
    server.accept(a);
    const client = await connect("tcp://127.0.0.1:1", {
      reconnect: false,
      dial: () => Promise.resolve(b),
    });
    try {
      const before = writes;
      const values = await Array.fromAsync(client.stream("values", VALUES));
      assert.equal(values.length, VALUES);
      assert.equal(values[VALUES - 1], VALUES);
      // A few writes per window of 512 is what coalescing gives (7 for the
      // 2,000 here); flushing after the first quiet microtask turn wrote one
      // or two frames per write over this in-memory pair (1,008 and 2,001).
      const used = writes - before;
      assert.ok(used <= VALUES / 50, `${VALUES} DATA frames took ${used} writes`);
    } finally {
      await client.close();
      await server.shutdown({ deadlineMs: 0 });
    }
  });
}
