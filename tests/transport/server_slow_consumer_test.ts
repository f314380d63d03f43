// A client that stops reading while broadcasts go out is cut off as a slow
// consumer; the clients that read get everything, in order; the server's
// memory stays within the per-session queue bound.

import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { FrameType, Status } from "../../codec/constants.ts";
import type { Message } from "../../codec/message.ts";
import type { Session } from "../../transport/mod.ts";
import { decodeAll, helloBytes, serverSide, Signal, startServer } from "./_helpers.ts";

type Gc = (options?: { type: string; execution: string; flavor: string }) => void;

/** V8's gc(), reachable without --expose-gc on the command line. */
function gcFunction(): Gc {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc");
}

/** Live memory: after a last-resort GC, which also gives V8's free pages back. */
function memory(gc: Gc): { rss: number; external: number } {
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  const { rss, external } = Deno.memoryUsage();
  return { rss, external };
}

const MiB = 1024 * 1024;
const COUNT = 1000;
// Loopback TCP buffers about 4 MB for a socket nobody reads (send and
// receive buffers together), so the total must exceed that for the
// session's own queue to fill: 1,000 x 8 KiB = 8 MiB.
const SIZE = 8 * 1024;
const MAX_QUEUE = 64 * 1024;
// Broadcasts a reader may be behind before the broadcaster waits for it:
// 4 x 8 KiB queued at most, so a reader never reaches MAX_QUEUE.
const LAG = 4;

Deno.test("Slow consumer: cut off at maxQueueBytes while readers get all 1,000 broadcasts in order, memory bounded", async () => {
  const gc = gcFunction();
  await using t = startServer({ maxQueueBytes: MAX_QUEUE, closeTimeoutMs: 200 });
  const port = Number(new URL(t.addr).port);

  // Readers: client sessions that check order as they go and keep nothing.
  interface Reader {
    session: Session;
    server: Session;
    received: number;
    outOfOrder: number;
    arrived: Signal;
  }
  const readers: Reader[] = [];
  for (let i = 0; i < 3; i++) {
    const reader = { received: 0, outOfOrder: 0, arrived: new Signal() } as Reader;
    reader.session = await t.client({
      compression: [], // the same bytes on the wire as the slow peers get
      handler: {
        message(_session, m: Message) {
          if (m.type !== FrameType.BROADCAST) return;
          const seq = new DataView(m.params.buffer, m.params.byteOffset, 4).getUint32(0);
          if (seq !== reader.received || m.params.length !== SIZE) reader.outOfOrder++;
          reader.received++;
          reader.arrived.notify();
        },
      },
    });
    reader.server = serverSide(t.server, reader.session);
    readers.push(reader);
  }

  // Slow peers: bare sockets that read HELLO_ACK and then stop reading.
  const slow: Deno.TcpConn[] = [];
  for (let i = 0; i < 4; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(helloBytes());
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    const [ack] = await decodeAll(buffer.subarray(0, n ?? 0));
    assert.equal(ack.type, FrameType.HELLO_ACK);
    slow.push(conn);
  }
  const slowSessions = [...t.server.sessions()].filter((s) => !readers.some((r) => r.server === s));
  assert.equal(slowSessions.length, 4);

  const before = memory(gc);
  const params = new Uint8Array(SIZE);
  const view = new DataView(params.buffer);
  let dropped = 0;
  let delivered = 0;
  let peakQueued = 0;
  for (let seq = 0; seq < COUNT; seq++) {
    view.setUint32(0, seq);
    const result = t.server.broadcast("tick", params);
    dropped += result.dropped;
    delivered += result.delivered;
    let queued = 0;
    for (const session of t.server.sessions()) queued += session.queuedBytes;
    peakQueued = Math.max(peakQueued, queued);
    // The broadcaster paces itself on the readers, as an application
    // would; the slow peers get no such favour.
    for (const reader of readers) {
      await reader.arrived.until(() => reader.received > seq - LAG, `broadcast ${seq - LAG}`);
    }
  }
  for (const reader of readers) {
    await reader.arrived.until(() => reader.received === COUNT, `all ${COUNT} broadcasts`);
  }
  for (const session of slowSessions) await session.closed;
  assert.equal(t.server.sessionCount, readers.length, "slow peers removed");
  const after = memory(gc);

  for (const reader of readers) {
    assert.equal(reader.received, COUNT);
    assert.equal(reader.outOfOrder, 0, "every message, in order");
    assert.equal(reader.session.state === "active" || reader.session.state === "idle", true);
  }
  assert.equal(t.server.metrics.slowConsumers, 4);
  assert.equal(dropped, 4);
  for (const session of slowSessions) {
    assert.equal(session.state, "closed");
    assert.equal(session.closeReason?.code, Status.RESOURCE_EXHAUSTED);
    assert.match(session.closeReason!.message, /^Slow consumer: outbound queue over its limit/);
  }
  // The slow peers got part of it (into the kernel buffers) before the cut.
  assert.ok(delivered > 3 * COUNT && delivered < 7 * COUNT, `delivered ${delivered}`);

  // Bounded: never more than one queue bound per session (plus one message).
  assert.ok(
    peakQueued <= 7 * (MAX_QUEUE + SIZE + 64),
    `peak queued ${peakQueued} bytes over 7 sessions`,
  );
  // Queued bytes are ArrayBuffers, counted in `external`. Without the bound
  // (maxQueueBytes 256 MiB) the slow peers' queues hold what their kernel
  // buffers could not take: +4 MiB external measured at the end of the
  // loop, the same bytes shared by the 4 sessions. RSS is only a sanity
  // bound: the readers in this process leave 24 MiB of read buffers to the
  // allocator, which keeps some of it (4-10 MiB measured either way).
  const external = after.external - before.external;
  const rss = after.rss - before.rss;
  console.log(
    `slow consumer: peak queued ${(peakQueued / 1024).toFixed(0)} KiB, ` +
      `external +${(external / 1024).toFixed(0)} KiB, rss +${(rss / 1024).toFixed(0)} KiB`,
  );
  assert.ok(external < 1 * MiB, `external grew by ${external} bytes`);
  assert.ok(rss < 16 * MiB, `rss grew by ${rss} bytes`);

  for (const conn of slow) conn.close();
});
