// How many writes a served stream takes: a producer that makes its values
// asynchronously (an async generator, a ReadableStream) must still have its
// DATA coalesced into few writes, not one write per handful of frames.

import assert from "node:assert/strict";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import { memoryPair } from "../../transport/memory.ts";
import { FrameType } from "../../codec/constants.ts";
import { guard, rig } from "./_rig.ts";

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
      // 2,000 here on a quiet machine); flushing after the first quiet
      // microtask turn wrote one or two frames per write over this in-memory
      // pair (1,008 and 2,001). Client and server share this process, and
      // a write also goes out when a busy producer has kept the queue
      // waiting for 1 ms, so a loaded machine writes more often: up to 367
      // writes with two other processes spinning on both cores. The bound
      // sits between the two.
      const used = writes - before;
      assert.ok(used <= VALUES * 0.4, `${VALUES} DATA frames took ${used} writes`);
    } finally {
      await client.close();
      await server.shutdown({ deadlineMs: 0 });
    }
  });
}

/** Resolves once `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

for (const source of ["an async generator", "a ReadableStream"] as const) {
  for (const how of ["cancels", "times out"] as const) {
    Deno.test(`a server stream from ${source} sends nothing after its caller ${how}`, async () => {
      // The producer makes its next value only once the call was aborted: the
      // value must not go out (PROTOCOL.md 3.2), and the producer is stopped.
      // The deadline is the feature tested; 300 ms leaves a slow machine time
      // to deliver the first value before it.
      const stopped = Promise.withResolvers<void>();
      const methods = new Methods().serverStream(
        "slow",
        source === "an async generator"
          ? async function* (_: unknown, ctx) {
            try {
              yield 1;
              await aborted(ctx.signal);
              yield 2;
              yield 3;
            } finally {
              stopped.resolve();
            }
          }
          : (_: unknown, ctx) => {
            let i = 0;
            return new ReadableStream<number>({
              async pull(controller) {
                if (++i === 2) await aborted(ctx.signal);
                controller.enqueue(i);
              },
              cancel: () => stopped.resolve(),
            });
          },
      );
      await using r = await rig("memory", { methods: () => methods, server: { metrics: false } });
      const data: number[] = [];
      r.serverSession().tap = {
        received() {},
        sent: (message) => {
          if (message.type === FrameType.DATA) data.push(message.seq);
        },
        sentEncoded() {},
      };
      const reader = r.client.stream("slow", undefined, how === "times out" ? { timeout: 300 } : {})
        .getReader();
      assert.deepEqual(await reader.read(), { value: 1, done: false });
      if (how === "cancels") await reader.cancel();
      else await assert.rejects(reader.read(), { codeName: "deadline_exceeded" });
      await guard(stopped.promise, "the producer to be stopped");
      assert.equal(data.length, 1, `DATA frames sent: ${data.length}`);
    });
  }
}

Deno.test("a server stream whose value cannot be encoded fails the call and stops its producer", async () => {
  const stopped = Promise.withResolvers<void>();
  const methods = new Methods().serverStream("bad", async function* () {
    try {
      yield 1;
      yield Symbol("no codec encodes this");
      yield 3;
    } finally {
      stopped.resolve();
    }
  });
  await using r = await rig("memory", { methods: () => methods });
  const reader = r.client.stream("bad").getReader();
  assert.deepEqual(await reader.read(), { value: 1, done: false });
  await assert.rejects(reader.read(), { codeName: "internal" });
  // The generator was returned (its finally ran), so the call counts as finished.
  await guard(stopped.promise, "the producer to be stopped");
  assert.equal(r.server.metrics!.method("bad")?.inFlight, 0);
});
