// How served calls behave: their signal, deadlines, the errors callers see,
// and refusing oversized batches.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { BatchMessage, Message } from "../../codec/message.ts";
import type { CallKind } from "../../rpc/interceptor.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcPeer } from "../../rpc/peer.ts";
import { memoryPair } from "../../transport/memory.ts";
import { openSession } from "../../transport/open_session.ts";
import { Server } from "../../transport/server.ts";
import { KINDS, rejectsWith, rig } from "./_rig.ts";

interface Signal {
  aborted: boolean;
  code: number | undefined;
}

for (const kind of KINDS) {
  Deno.test(`${kind}: ctx.signal first read after a CANCEL or a deadline is already aborted`, async () => {
    let started = Promise.withResolvers<void>();
    let release = Promise.withResolvers<void>();
    let seen = Promise.withResolvers<Signal>();
    await using r = await rig(kind, {
      server: { maxDeadlineMs: 30 },
      methods: () =>
        new Methods()
          .unary("late", async (_p, ctx) => {
            started.resolve();
            await release.promise;
            // The first look at the signal, after the call was stopped.
            const signal = ctx.signal;
            seen.resolve({ aborted: signal.aborted, code: signal.reason?.code });
          })
          .unary("echo", (p) => p),
    });
    // CANCEL from the caller.
    const controller = new AbortController();
    const call = r.client.call("late", undefined, { signal: controller.signal, timeout: 60_000 });
    await started.promise;
    controller.abort();
    await rejectsWith(call, Status.CANCELLED);
    assert.equal(await r.client.call("echo", 1), 1, "the CANCEL was read before this call");
    release.resolve();
    assert.deepEqual(await seen.promise, { aborted: true, code: Status.CANCELLED });
    // The server's own deadline (maxDeadlineMs).
    started = Promise.withResolvers();
    release = Promise.withResolvers();
    seen = Promise.withResolvers();
    const expiring = r.client.call("late");
    await started.promise;
    await rejectsWith(expiring, Status.DEADLINE_EXCEEDED);
    release.resolve();
    assert.deepEqual(await seen.promise, { aborted: true, code: Status.DEADLINE_EXCEEDED });
  });

  Deno.test(`${kind}: streams have no deadline unless their caller sets one`, async () => {
    const seen: { kind: CallKind; timeout: number | undefined; deadline: number }[] = [];
    await using r = await rig(kind, {
      server: {
        maxDeadlineMs: 30,
        interceptors: [(next) => (call) => {
          seen.push({ kind: call.kind, timeout: call.timeout, deadline: call.context!.deadline });
          return next(call);
        }],
      },
    });
    const reader = r.client.stream("ticks").getReader();
    const { readable, writable } = r.client.duplex("upper");
    const writer = writable.getWriter();
    const upper = readable.getReader();
    assert.equal((await reader.read()).value, 0);
    await writer.write("a");
    assert.equal((await upper.read()).value, "A");
    // A unary call is cut at maxDeadlineMs...
    await rejectsWith(r.client.call("hang"), Status.DEADLINE_EXCEEDED);
    // ...while the streams opened before it go on.
    for (let i = 1; i <= 300; i++) assert.equal((await reader.read()).value, i);
    await writer.write("b");
    assert.equal((await upper.read()).value, "B");
    await reader.cancel();
    await writer.close();
    assert.equal((await upper.read()).done, true);
    assert.deepEqual(
      seen.map(({ kind, timeout, deadline }) => ({ kind, timeout, deadline })),
      [
        { kind: "server_stream", timeout: undefined, deadline: Infinity },
        { kind: "bidi", timeout: undefined, deadline: Infinity },
        { kind: "unary", timeout: 30_000, deadline: seen[2].deadline },
      ],
    );
    assert.ok(seen[2].deadline < Date.now() + 30, "maxDeadlineMs still bounds unary calls");
    // A caller's timeout still ends a stream.
    const timed = r.client.stream("ticks", undefined, { timeout: 20 });
    await rejectsWith(Array.fromAsync(timed), Status.DEADLINE_EXCEEDED);
    assert.equal(seen[3].timeout, 20);
  });

  Deno.test(`${kind}: errors that are not StreamwireErrors cross as 2 with a generic message`, async () => {
    await using r = await rig(kind, {
      methods: () =>
        new Methods()
          .unary("http", () => {
            throw Object.assign(new Error("db password is hunter2"), { code: 500 });
          })
          .unary("coded", () => {
            throw Object.assign(new Error("not yours"), { code: Status.PERMISSION_DENIED });
          })
          .unary("async", () => Promise.reject(new TypeError("x is undefined")))
          .unary("thrown", () => {
            throw "a string";
          })
          .unary("mine", () => {
            throw new StreamwireError(Status.NOT_FOUND, "No user 'ada'");
          })
          .serverStream("broken", function* () {
            yield 1;
            throw new RangeError("index 7");
          })
          .clientStream("sink", () => {
            throw new Error("sink exploded");
          }),
    });
    for (const method of ["http", "coded", "async", "thrown"]) {
      const e = await rejectsWith(r.client.call(method), Status.UNKNOWN);
      assert.equal(e.message, `Internal error in '${method}'`);
    }
    const mine = await rejectsWith(r.client.call("mine"), Status.NOT_FOUND);
    assert.equal(mine.message, "No user 'ada'");
    const reader = r.client.stream("broken").getReader();
    assert.equal((await reader.read()).value, 1);
    const e = await rejectsWith(reader.read(), Status.UNKNOWN);
    assert.equal(e.message, "Internal error in 'broken'");
    const u = await rejectsWith(r.client.upload("sink", ReadableStream.from([1])), Status.UNKNOWN);
    assert.equal(u.message, "Internal error in 'sink'");
    const [entry] = await r.client.batch([{ method: "http" }]);
    assert.deepEqual(
      !entry.ok && [entry.error.code, entry.error.message],
      [Status.UNKNOWN, "Internal error in 'http'"],
    );
    // The originals are kept on the server's side, with where they happened.
    const errors = r.probe.errors.map(({ error, method }) => [
      method,
      error instanceof Error ? error.message : error,
    ]);
    assert.deepEqual(errors, [
      ["http", "db password is hunter2"],
      ["coded", "not yours"],
      ["async", "x is undefined"],
      ["thrown", "a string"],
      ["broken", "index 7"],
      ["sink", "sink exploded"],
      ["http", "db password is hunter2"],
    ]);
    assert.ok(r.probe.errors.every(({ id }) => id % 2 === 1), "the caller's call ids");
  });

  Deno.test(`${kind}: a BATCH over maxBatchSize is refused from its declared count`, async () => {
    const calls = Array.from({ length: 2000 }, (_, i) => ({ method: "echo", params: i }));
    await using small = await rig(kind);
    const e = await rejectsWith(small.client.batch(calls), Status.RESOURCE_EXHAUSTED);
    assert.equal(e.message, "Batch of '2000' entries exceeds maxBatchSize '1024'");
    assert.equal(small.serverPeer().inflight, 0);
    // A server that allows more decodes and serves them all.
    await using large = await rig(kind, { server: { maxBatchSize: 4096 } });
    const outcomes = await large.client.batch(calls);
    assert.equal(outcomes.length, 2000);
    assert.deepEqual(outcomes[1999], { ok: true, value: 1999 });
  });
}

Deno.test("a BATCH handed on with only its declared count is refused without building entries", async () => {
  // The server side plays the caller: it sends even call ids.
  const received = Promise.withResolvers<Message>();
  const server = new Server({ handler: { message: (_s, m) => received.resolve(m) } });
  const [a, b] = memoryPair();
  server.accept(a);
  const session = await openSession(b, { handler: { message() {} } });
  try {
    let built = 0;
    const peer = new RpcPeer(session, {
      maxBatchSize: 1024,
      methods: new Methods().unary("echo", (p) => {
        built++;
        return p;
      }),
    });
    // What the session hands on for a BATCH over its maxBatchEntries.
    const batch: BatchMessage = { type: FrameType.BATCH, seq: 2, entries: [] };
    (batch as { declared?: number }).declared = 2_000_000;
    peer.handle(batch);
    const answer = await received.promise;
    assert.equal(answer.type, FrameType.ERROR);
    assert.deepEqual(
      answer.type === FrameType.ERROR && [answer.seq, answer.code, answer.message],
      [2, Status.RESOURCE_EXHAUSTED, "Batch of '2000000' entries exceeds maxBatchSize '1024'"],
    );
    assert.equal(built, 0);
    assert.equal(peer.inflight, 0);
  } finally {
    await session.close();
    await server.shutdown();
  }
});
