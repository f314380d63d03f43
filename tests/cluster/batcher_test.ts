// The bounded publish pipeline of broadcasts to all: at once when idle,
// batched in order under load, bounded, failures reported to each caller;
// and a burst of cluster broadcasts arriving whole and in order on another node.

import assert from "node:assert/strict";
import type { Backplane } from "../../cluster/backplane.ts";
import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { Batcher } from "../../cluster/_batcher.ts";
import { decodeBatch, Kind } from "../../cluster/_wire.ts";
import { connect } from "../../rpc/client.ts";
import { StreamwireError } from "../../codec/error.ts";
import { guard } from "../transport/_helpers.ts";
import { startNodes, stopNodes } from "./_nodes.ts";

/** A backplane whose publishes the test settles one by one. */
function gatedBackplane() {
  const sent: { data: Uint8Array; settle: PromiseWithResolvers<void> }[] = [];
  const backplane = {
    publish(_channel: string, data: Uint8Array) {
      const settle = Promise.withResolvers<void>();
      sent.push({ data, settle });
      return settle.promise;
    },
  } as unknown as Backplane;
  return { backplane, sent };
}

const bytes = (n: number) => new Uint8Array([Kind.ALL, n]);
/** The messages a publish carried, a batch unpacked. */
const carried = (data: Uint8Array) =>
  data[0] === Kind.BATCH ? decodeBatch(data).messages.map((m) => m[1]) : [data[1]];

Deno.test("Batcher publishes at once when idle and batches in order while publishes are in flight", async () => {
  const { backplane, sent } = gatedBackplane();
  const limits = { depth: 1, maxBatch: 3, maxBatchBytes: 1024, maxQueued: 10 };
  const batcher = new Batcher(backplane, { channel: "all", origin: "me", limits });
  const done = [0, 1, 2, 3, 4, 5].map((n) => batcher.publish(bytes(n)));
  assert.equal(sent.length, 1); // the first went out alone; the rest wait for its slot
  assert.deepEqual(carried(sent[0].data), [0]);
  assert.equal(batcher.queued, 5);
  sent[0].settle.resolve();
  await done[0];
  assert.equal(sent.length, 2);
  assert.equal(decodeBatch(sent[1].data).origin, "me");
  assert.deepEqual(carried(sent[1].data), [1, 2, 3]); // maxBatch
  sent[1].settle.resolve();
  await Promise.all(done.slice(1, 4));
  assert.deepEqual(carried(sent[2].data), [4, 5]);
  sent[2].settle.reject(new Error("gone"));
  await assert.rejects(done[4], /gone/);
  await assert.rejects(done[5], /gone/);
  assert.equal(batcher.queued, 0);
});

Deno.test("Batcher refuses past maxQueued with resource_exhausted and keeps batches under maxBatchBytes", async () => {
  const { backplane, sent } = gatedBackplane();
  const limits = { depth: 1, maxBatch: 100, maxBatchBytes: 5, maxQueued: 3 };
  const batcher = new Batcher(backplane, { channel: "all", origin: "me", limits });
  const done = [0, 1, 2, 3].map((n) => batcher.publish(bytes(n)));
  await assert.rejects(batcher.publish(bytes(9)), (e) => {
    assert.ok(e instanceof StreamwireError);
    assert.equal(e.codeName, "resource_exhausted");
    return true;
  });
  sent[0].settle.resolve();
  await done[0];
  assert.deepEqual(carried(sent[1].data), [1, 2]); // 2 + 2 bytes; a third would pass 5
  sent[1].settle.resolve();
  await Promise.all(done.slice(1, 3));
  assert.deepEqual(carried(sent[2].data), [3]);
  sent[2].settle.resolve();
  await done[3];
});

Deno.test("a burst of broadcasts to all reaches another node's client whole and in order", async () => {
  const hub = new MemoryHub();
  const nodes = await startNodes(2, () => Promise.resolve(hub.connect()));
  const client = await connect(nodes[1].addr, { reconnect: false });
  try {
    const total = 2_000;
    const got: number[] = [];
    const all = Promise.withResolvers<void>();
    client.subscribe("burst", (v) => {
      got.push(v as number);
      if (got.length === total) all.resolve();
    });
    await Promise.all(
      Array.from({ length: total }, (_, i) => nodes[0].cluster.broadcast("burst", i)),
    );
    await guard(all.promise, `${total} broadcasts on the other node`);
    assert.deepEqual(got, Array.from({ length: total }, (_, i) => i));
    assert.equal(nodes[1].cluster.metrics.received, total);
  } finally {
    await client.close();
    await stopNodes(nodes);
  }
});
