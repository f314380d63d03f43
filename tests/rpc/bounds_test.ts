import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { Methods } from "../../rpc/methods.ts";
import { Signal } from "../transport/_helpers.ts";
import { rejectsWith, rig, waitFor } from "./_rig.ts";

Deno.test("a NOTIFY flood runs at most maxConcurrentCalls handlers and counts the rest", async () => {
  const release = Promise.withResolvers<void>();
  let running = 0, peak = 0, started = 0;
  const handlers = new Signal();
  await using r = await rig("memory", {
    server: { maxConcurrentCalls: 4 },
    methods: () =>
      new Methods().unary("slow", async () => {
        started++;
        peak = Math.max(peak, ++running);
        handlers.notify();
        await release.promise;
        running--;
        handlers.notify();
      }),
  });
  for (let i = 0; i < 50; i++) r.client.notify("slow");
  const peer = r.serverPeer();
  // No event announces a dropped NOTIFY: the counter is polled.
  await waitFor(() => peer.droppedNotifications === 46, "46 NOTIFYs dropped");
  assert.equal(peak, 4);
  release.resolve();
  await handlers.until(() => running === 0, "the four handlers done");
  // With the handlers done, NOTIFYs run again.
  r.client.notify("slow");
  await handlers.until(() => started === 5 && running === 0, "a fifth handler run");
  assert.equal(peer.droppedNotifications, 46);
});

Deno.test("upload keeps only the last value of a callee that streams instead of answering once", async () => {
  await using r = await rig("memory", {
    methods: () =>
      new Methods().bidi("chatty", async function* (input) {
        for await (const _ of input) { /* drain */ }
        for (let i = 1; i <= 10_000; i++) yield i;
      }),
  });
  assert.equal(await r.client.upload("chatty", ReadableStream.from([1, 2, 3])), 10_000);
  assert.equal(r.client.pending, 0);
});

Deno.test("a stream whose params cannot be encoded fails its stream and leaves nothing pending", async () => {
  await using r = await rig("memory", { client: { codecs: ["json"] } });
  const bad = r.client.stream("ticks", 1n);
  assert.equal(r.client.pending, 0);
  await rejectsWith(bad.getReader().read(), Status.INVALID_ARGUMENT);
  const aborted = r.client.stream("ticks", 1, { signal: AbortSignal.abort() });
  await rejectsWith(aborted.getReader().read(), Status.CANCELLED);
  const { writable } = r.client.duplex("upper", 2n);
  await rejectsWith(writable.getWriter().write("a"), Status.INVALID_ARGUMENT);
  assert.equal(r.client.pending, 0);
  assert.equal(r.serverPeer().inflight, 0);
});
