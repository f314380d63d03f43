import assert from "node:assert/strict";
import { FrameType } from "../../codec/constants.ts";
import { helloBytes, nextMacrotask, startServer } from "./_helpers.ts";

Deno.test("unicast to a peer that stops reading disconnects it as a slow consumer", async () => {
  await using t = startServer({ where: "memory", maxQueueBytes: 16 * 1024 });
  const peer = await t.raw();
  await peer.write(helloBytes());
  const ack = await peer.next();
  assert.ok(ack?.type === FrameType.HELLO_ACK);
  const id = String(ack.ack.session);
  const session = t.server.session(id)!;
  // The peer reads nothing from here on: the memory pair's 64 KiB buffer
  // fills, then the session's queue, then unicast refuses and drops it.
  const params = new Uint8Array(1024);
  let sent = 0;
  while (t.server.unicast(id, { type: FrameType.NOTIFY, seq: 0, method: "news", params })) {
    sent++;
    if (sent > 10_000) assert.fail("unicast never refused a peer that does not read");
    // Let the writes run, so the pair's buffer fills before the queue does.
    if (sent % 16 === 0) await nextMacrotask();
  }
  assert.ok(sent > 0);
  assert.equal(t.server.metrics.slowConsumers, 1);
  await session.closed;
  assert.equal(t.server.session(id), undefined, "slow session removed");
  assert.equal(
    t.server.unicast(id, { type: FrameType.NOTIFY, seq: 0, method: "x", params }),
    false,
  );
});
