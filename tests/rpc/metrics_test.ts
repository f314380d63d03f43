import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { type CallContext, Methods, RpcMetrics } from "../../rpc/mod.ts";
import { DURATION_BUCKETS } from "../../rpc/metrics.ts";

const CTX = {} as CallContext;

/** Replaces `performance.now()` with a clock that moves only when told, for `fn`. */
async function withClock(fn: (advance: (ms: number) => void) => Promise<void>): Promise<void> {
  let now = 1_000;
  const real = Object.getOwnPropertyDescriptor(performance, "now");
  Object.defineProperty(performance, "now", { value: () => now, configurable: true });
  try {
    await fn((ms) => (now += ms));
  } finally {
    if (real === undefined) delete (performance as { now?: unknown }).now;
    else Object.defineProperty(performance, "now", real);
  }
}

/** Index of the bucket a duration in ms falls in. */
function bucket(ms: number): number {
  const i = DURATION_BUCKETS.findIndex((le) => ms / 1000 <= le);
  return i === -1 ? DURATION_BUCKETS.length : i;
}

function call(methods: Methods, name: string, input: unknown = undefined): unknown {
  const handler = methods.get(name)!.handler as (input: unknown, ctx: CallContext) => unknown;
  return handler(input, CTX);
}

Deno.test("RpcMetrics counts handlers that return, throw, resolve and reject, by code", async () => {
  const metrics = new RpcMetrics();
  let release!: (value: string) => void;
  const methods = metrics.wrap(
    new Methods()
      .unary("echo", (p) => p)
      .unary("bad", () => {
        throw new StreamwireError(Status.INVALID_ARGUMENT, "bad");
      })
      .unary("later", () => new Promise<string>((resolve) => (release = resolve)))
      .unary("refused", () => Promise.reject(new StreamwireError(Status.NOT_FOUND, "gone")))
      .unary("broken", () => Promise.reject(new Error("not a StreamwireError"))),
  );
  assert.equal(call(methods, "echo", 7), 7);
  assert.throws(() => call(methods, "bad"), StreamwireError);
  const later = call(methods, "later") as Promise<string>;
  assert.equal(metrics.method("later")?.inFlight, 1);
  assert.equal(metrics.method("later")?.codes[Status.OK], 0);
  release("done");
  assert.equal(await later, "done");
  await assert.rejects(call(methods, "refused") as Promise<unknown>, StreamwireError);
  await assert.rejects(call(methods, "broken") as Promise<unknown>, /not a StreamwireError/);

  const counted = (name: string) => {
    const stats = metrics.method(name)!;
    return {
      codes: Object.fromEntries(stats.codes.flatMap((n, code) => n > 0 ? [[code, n]] : [])),
      calls: stats.buckets.reduce((a, b) => a + b, 0),
      inFlight: stats.inFlight,
    };
  };
  assert.deepEqual(counted("echo"), { codes: { [Status.OK]: 1 }, calls: 1, inFlight: 0 });
  assert.deepEqual(counted("bad"), {
    codes: { [Status.INVALID_ARGUMENT]: 1 },
    calls: 1,
    inFlight: 0,
  });
  assert.deepEqual(counted("later"), { codes: { [Status.OK]: 1 }, calls: 1, inFlight: 0 });
  assert.deepEqual(counted("refused"), { codes: { [Status.NOT_FOUND]: 1 }, calls: 1, inFlight: 0 });
  assert.deepEqual(counted("broken"), { codes: { [Status.UNKNOWN]: 1 }, calls: 1, inFlight: 0 });
});

Deno.test("RpcMetrics counts a stream when its output ends, cancelled if left early", async () => {
  const metrics = new RpcMetrics();
  const methods = metrics.wrap(
    new Methods().serverStream("count", function* (n: number) {
      for (let i = 1; i <= n; i++) yield i;
    }).serverStream("later", async function* (n: number) {
      for (let i = 1; i <= n; i++) yield await Promise.resolve(i);
    }),
  );
  const all = call(methods, "count", 3) as Iterable<number>;
  assert.equal(metrics.method("count")?.inFlight, 1);
  assert.deepEqual([...all], [1, 2, 3]);
  const left = (call(methods, "count", 3) as Iterable<number>)[Symbol.iterator]();
  assert.deepEqual(left.next(), { value: 1, done: false });
  left.return!(undefined);
  const stats = metrics.method("count")!;
  assert.equal(stats.codes[Status.OK], 1);
  assert.equal(stats.codes[Status.CANCELLED], 1);
  assert.equal(stats.inFlight, 0);

  assert.deepEqual(await Array.fromAsync(call(methods, "later", 3) as AsyncIterable<number>), [
    1,
    2,
    3,
  ]);
  const early = (call(methods, "later", 3) as AsyncIterable<number>)[Symbol.asyncIterator]();
  assert.deepEqual(await early.next(), { value: 1, done: false });
  await early.return!(undefined);
  const later = metrics.method("later")!;
  assert.equal(later.codes[Status.OK], 1);
  assert.equal(later.codes[Status.CANCELLED], 1);
  assert.equal(later.inFlight, 0);
});

Deno.test("RpcMetrics times each call of a burst from the end of the call before it", async () => {
  await withClock(async (advance) => {
    const metrics = new RpcMetrics();
    const methods = metrics.wrap(
      new Methods()
        .unary("slow", () => advance(30))
        .unary("fast", () => undefined),
    );
    // One run of JavaScript: the fast call after the slow one does not
    // count the slow one's 30 ms.
    call(methods, "slow");
    call(methods, "fast");
    call(methods, "fast");
    // Time passing between runs, outside any call, is not counted either.
    await Promise.resolve();
    advance(3_000);
    call(methods, "fast");
    await Promise.resolve();
    advance(3_000);
    call(methods, "slow");

    const slow = metrics.method("slow")!, fast = metrics.method("fast")!;
    assert.equal(slow.buckets[bucket(30)], 2);
    assert.equal(fast.buckets[bucket(0)], 3);
    assert.equal(slow.sum, 0.06);
    assert.equal(fast.sum, 0);
  });
});

Deno.test("RpcMetrics keeps a synchronous stream output synchronous, and counts it when it ends", () => {
  const metrics = new RpcMetrics();
  const methods = metrics.wrap(
    new Methods().serverStream("count", function* (n: number) {
      for (let i = 1; i <= n; i++) yield i;
    }).serverStream("stop", function* () {
      yield 1;
      throw new StreamwireError(Status.ABORTED, "stopped");
    }),
  );
  // The producer sends a window of a synchronous source in one run; an
  // async wrapper would cost microtask hops per value and split the writes.
  const output = call(methods, "count", 3) as Iterable<number>;
  assert.equal(typeof (output as Iterable<number>)[Symbol.iterator], "function");
  assert.equal(Symbol.asyncIterator in (output as object), false);
  assert.equal(metrics.method("count")?.inFlight, 1);
  assert.deepEqual([...output], [1, 2, 3]);
  assert.equal(metrics.method("count")?.inFlight, 0);
  assert.equal(metrics.method("count")?.codes[Status.OK], 1);
  assert.throws(() => [...(call(methods, "stop") as Iterable<number>)], StreamwireError);
  assert.equal(metrics.method("stop")?.codes[Status.ABORTED], 1);
});
