import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { guard, KINDS, rejectsWith, rig, settled, waitFor } from "./_rig.ts";

for (const kind of KINDS) {
  Deno.test(`${kind}: 10,000 calls past a tiny timeout all fail deadline_exceeded`, async () => {
    await using r = await rig(kind, { server: { maxConcurrentCalls: 20_000 } });
    const N = 10_000;
    const outcomes = await Promise.allSettled(
      Array.from(
        { length: N },
        (_, i) =>
          r.client.call(i % 2 ? "sleep" : "hang", i % 2 ? 5000 : undefined, { timeout: 10 }),
      ),
    );
    const codes = new Map<number, number>();
    for (const o of outcomes) {
      assert.equal(o.status, "rejected");
      const code = ((o as PromiseRejectedResult).reason as StreamwireError).code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    assert.deepEqual([...codes], [[Status.DEADLINE_EXCEEDED, N]]);
    assert.equal(r.client.pending, 0);
    await waitFor(() => r.serverPeer().inflight === 0, "server in-flight back to 0");
    // The connection is still usable.
    assert.equal(await r.client.call("add", [1, 1]), 2);
  });

  Deno.test(`${kind}: the callee stops at the caller's deadline`, async () => {
    await using r = await rig(kind);
    await rejectsWith(r.client.call("hang", undefined, { timeout: 20 }), Status.DEADLINE_EXCEEDED);
    await r.probe.until(() => r.probe.aborted.length === 1, "the handler aborted");
    assert.deepEqual(r.probe.aborted, [{ method: "hang", code: Status.DEADLINE_EXCEEDED }]);
    await waitFor(() => r.serverPeer().inflight === 0, "server in-flight back to 0");
  });

  Deno.test(`${kind}: the server's maxDeadlineMs bounds calls sent with a longer timeout`, async () => {
    await using r = await rig(kind, { server: { maxDeadlineMs: 30 } });
    // The client's own timer would fire only after 5 minutes, past the
    // safety net: a deadline_exceeded before it comes from the server's bound.
    await rejectsWith(
      guard(r.client.call("hang", undefined, { timeout: 300_000 }), "the server's deadline"),
      Status.DEADLINE_EXCEEDED,
    );
    // ...and calls sent with the default timeout.
    await rejectsWith(r.client.call("hang"), Status.DEADLINE_EXCEEDED);
    assert.equal(r.client.pending, 0);
  });

  Deno.test(`${kind}: a batch's timeout covers the whole batch`, async () => {
    await using r = await rig(kind);
    await rejectsWith(
      r.client.batch([{ method: "add", params: [1, 2] }, { method: "hang" }], { timeout: 20 }),
      Status.DEADLINE_EXCEEDED,
    );
    await settled(r);
  });

  Deno.test(`${kind}: a stream's timeout ends it with deadline_exceeded`, async () => {
    await using r = await rig(kind);
    const reader = r.client.stream("ticks", undefined, { timeout: 30 }).getReader();
    // Values come until the deadline; the stream never just ends.
    await assert.rejects(
      (async () => {
        for (;;) if ((await reader.read()).done) break;
      })(),
      { code: Status.DEADLINE_EXCEEDED },
    );
    await r.probe.until(() => r.probe.tickerClosed, "producer closed");
    await settled(r);
  });

  Deno.test(`${kind}: aborting a unary call reaches the handler's signal`, async () => {
    await using r = await rig(kind);
    const controller = new AbortController();
    const call = r.client.call("hang", undefined, { signal: controller.signal });
    await waitFor(() => r.serverPeer().inflight === 1, "the call in flight on the server");
    controller.abort();
    await rejectsWith(call, Status.CANCELLED);
    await r.probe.until(() => r.probe.aborted.length === 1, "handler aborted");
    assert.deepEqual(r.probe.aborted, [{ method: "hang", code: Status.CANCELLED }]);
    await waitFor(() => r.serverPeer().inflight === 0, "server in-flight back to 0");
    assert.equal(r.client.pending, 0);
    // Already aborted: never sent.
    await rejectsWith(
      r.client.call("hang", undefined, { signal: AbortSignal.abort() }),
      Status.CANCELLED,
    );
    assert.equal(r.serverPeer().inflight, 0);
    // `sleep` honours cancellation too.
    const c2 = new AbortController();
    const sleeping = r.client.call("sleep", 10_000, { signal: c2.signal });
    await waitFor(() => r.serverPeer().inflight === 1, "the sleep in flight on the server");
    c2.abort();
    await rejectsWith(sleeping, Status.CANCELLED);
    await waitFor(() => r.serverPeer().inflight === 0, "server in-flight back to 0");
  });

  Deno.test(`${kind}: reader.cancel() sends CANCEL; the producer stops and is closed`, async () => {
    await using r = await rig(kind);
    const reader = r.client.stream("ticks").getReader();
    for (let i = 0; i < 10; i++) assert.equal((await reader.read()).value, i);
    await reader.cancel("enough");
    await r.probe.until(() => r.probe.tickerClosed, "iterator return()");
    assert.deepEqual(r.probe.aborted, [{ method: "ticks", code: Status.CANCELLED }]);
    await settled(r);
    const produced = r.probe.produced;
    // A later call round trip: the server has run its turns since the
    // producer closed, and a closed generator yields no more.
    assert.equal(await r.client.call("echo", 1), 1);
    assert.equal(r.probe.produced, produced, "nothing produced after CANCEL");
  });

  Deno.test(`${kind}: an AbortSignal cancels a stream and a duplex`, async () => {
    await using r = await rig(kind);
    const controller = new AbortController();
    const reader = r.client.stream("ticks", undefined, { signal: controller.signal }).getReader();
    await reader.read();
    controller.abort();
    // Values already delivered may come first; the stream must still end in `cancelled`.
    const error = await (async () => {
      try {
        for (;;) if ((await reader.read()).done) return undefined;
      } catch (e) {
        return e as StreamwireError;
      }
    })();
    assert.equal(error?.code, Status.CANCELLED);
    await r.probe.until(() => r.probe.tickerClosed, "producer closed");
    await settled(r);

    const { readable, writable } = r.client.duplex("upper");
    const writer = writable.getWriter();
    await writer.write("a");
    const out = readable.getReader();
    assert.equal((await out.read()).value, "A");
    await writer.abort(new StreamwireError(Status.CANCELLED, "changed my mind"));
    await rejectsWith(out.read(), Status.CANCELLED);
    await settled(r);
  });
}
