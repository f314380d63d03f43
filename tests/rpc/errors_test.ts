import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { Methods } from "../../rpc/methods.ts";
import { KINDS, rejectsWith, rig, settled, waitFor } from "./_rig.ts";

for (const kind of KINDS) {
  Deno.test(`${kind}: handler errors cross with their code and message`, async () => {
    await using r = await rig(kind);
    const e1 = await rejectsWith(r.client.call("fail.code"), Status.NOT_FOUND);
    assert.equal(e1.message, "No user 'ada'");
    assert.ok(e1 instanceof StreamwireError);
    const e2 = await rejectsWith(r.client.call("fail.plain"), Status.UNKNOWN);
    assert.equal(e2.message, "Internal error in 'fail.plain'", "neither message nor stack crosses");
    assert.equal((r.probe.errors[0].error as Error).message, "plain boom", "kept for the log");
    await rejectsWith(r.client.call("fail.async"), Status.ABORTED);
    assert.equal(r.client.pending, 0);
    assert.equal(r.serverPeer().inflight, 0);
  });

  Deno.test(`${kind}: unknown method and bad params`, async () => {
    await using r = await rig(kind);
    const e = await rejectsWith(r.client.call("no.such"), Status.UNIMPLEMENTED);
    assert.equal(e.message, "Unknown method 'no.such'");
    await rejectsWith(r.client.call("add", [1]), Status.INVALID_ARGUMENT);
    await rejectsWith(r.client.call("add", ["a", 2]), Status.INVALID_ARGUMENT);
    await rejectsWith(r.client.call("sleep", -1), Status.INVALID_ARGUMENT);
    const s = r.client.stream("no.such.stream");
    await rejectsWith(s.getReader().read(), Status.UNIMPLEMENTED);
    await rejectsWith(Array.fromAsync(r.client.stream("count", -3)), Status.INVALID_ARGUMENT);
    await settled(r);
  });

  Deno.test(`${kind}: REQUEST to a streaming method and OPEN to a unary one fail 12`, async () => {
    await using r = await rig(kind);
    const e1 = await rejectsWith(r.client.call("count", 3), Status.UNIMPLEMENTED);
    assert.match(e1.message, /server_stream method: open it with OPEN/);
    await rejectsWith(r.client.call("sum", 3), Status.UNIMPLEMENTED);
    const e2 = await rejectsWith(
      Array.fromAsync(r.client.stream("add", [1, 2])),
      Status.UNIMPLEMENTED,
    );
    assert.match(e2.message, /is unary: call it with REQUEST/);
    await rejectsWith(r.client.upload("echo", ReadableStream.from([1])), Status.UNIMPLEMENTED);
    await settled(r);
  });

  Deno.test(`${kind}: a result the codec cannot encode fails with internal`, async () => {
    await using r = await rig(kind, {
      client: { codecs: ["json"] },
      methods: () => new Methods().unary("big", () => 10n).unary("ok", () => 1),
    });
    const e = await rejectsWith(r.client.call("big"), Status.INTERNAL);
    assert.match(e.message, /Result not encodable/);
    const [o] = await r.client.batch([{ method: "big" }]);
    assert.equal(o.ok, false);
    assert.equal((o as { error: StreamwireError }).error.code, Status.INTERNAL);
    assert.equal(await r.client.call("ok"), 1);
  });

  Deno.test(`${kind}: params the client cannot encode fail locally`, async () => {
    await using r = await rig(kind, { client: { codecs: ["json"] } });
    // A rejected promise, not a synchronous throw: `.catch()` and `await` both see it.
    const call = r.client.call("echo", 1n);
    await rejectsWith(call, Status.INVALID_ARGUMENT);
    assert.equal(r.client.pending, 0);
    // In a batch, only that entry fails; the others are sent and answered.
    const outcomes = await r.client.batch([
      { method: "echo", params: 1 },
      { method: "echo", params: 2n },
      { method: "echo", params: 3 },
    ]);
    assert.deepEqual(outcomes[0], { ok: true, value: 1 });
    assert.equal(!outcomes[1].ok && outcomes[1].error.code, Status.INVALID_ARGUMENT);
    assert.deepEqual(outcomes[2], { ok: true, value: 3 });
    const none = await r.client.batch([{ method: "echo", params: 4n }]);
    assert.equal(!none[0].ok && none[0].error.code, Status.INVALID_ARGUMENT);
  });

  Deno.test(`${kind}: maxConcurrentCalls refuses the call over the limit at once`, async () => {
    await using r = await rig(kind, { server: { maxConcurrentCalls: 2 } });
    // Two calls that hold their slots until released: a refusal that came
    // only once a slot freed could not come before the release.
    const controller = new AbortController();
    const a = r.client.call("hang", undefined, { signal: controller.signal });
    const b = r.client.call("hang", undefined, { signal: controller.signal });
    await waitFor(() => r.serverPeer().inflight === 2, "both slots taken");
    await rejectsWith(r.client.call("sleep", 100), Status.RESOURCE_EXHAUSTED);
    // Streams count too.
    await rejectsWith(Array.fromAsync(r.client.stream("count", 3)), Status.RESOURCE_EXHAUSTED);
    assert.equal(r.serverPeer().inflight, 2, "both calls still hold their slots");
    controller.abort();
    await rejectsWith(a, Status.CANCELLED);
    await rejectsWith(b, Status.CANCELLED);
    await waitFor(() => r.serverPeer().inflight === 0, "both slots free");
    assert.equal(await r.client.call("sleep", 1), true, "slots free again");
  });

  Deno.test(`${kind}: maxBatchSize refuses a larger batch whole`, async () => {
    await using r = await rig(kind, { server: { maxBatchSize: 3 } });
    const calls = [1, 2, 3].map((i) => ({ method: "add", params: [i, i] }));
    assert.deepEqual((await r.client.batch(calls)).map((o) => o.ok), [true, true, true]);
    const e = await rejectsWith(
      r.client.batch([...calls, { method: "echo", params: 4 }]),
      Status.RESOURCE_EXHAUSTED,
    );
    assert.match(e.message, /Batch of '4' entries exceeds maxBatchSize '3'/);
    assert.equal(r.serverPeer().inflight, 0);
  });

  Deno.test(`${kind}: maxPendingCalls bounds calls waiting on the client`, async () => {
    await using r = await rig(kind, { client: { maxPendingCalls: 2 } });
    const a = r.client.call("sleep", 20);
    const b = r.client.call("sleep", 20);
    await rejectsWith(r.client.call("sleep", 20), Status.RESOURCE_EXHAUSTED);
    assert.equal(r.client.pending, 2);
    await Promise.all([a, b]);
    assert.equal(r.client.pending, 0);
  });
}
