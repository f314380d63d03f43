// The bounded publish pipeline of broadcasts: at once when idle, batched in
// order under load, one lane per topic with a bound over all lanes,
// bounded, failures reported to each caller; and bursts of cluster
// broadcasts, to all and to a topic, arriving whole and in order on another node.

import assert from "node:assert/strict";
import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { Batcher } from "../../cluster/_batcher.ts";
import { decodeBatch, encodeBatch, Kind } from "../../cluster/_wire.ts";
import { ClusterClient } from "../../cluster/cluster_client.ts";
import { connect } from "../../rpc/client.ts";
import { StreamwireError } from "../../codec/error.ts";
import { guard } from "../transport/_helpers.ts";
import { startNodes, stopNodes } from "./_nodes.ts";

/** A send function whose batches the test settles one by one. */
function gated<R = void>() {
  const sent: { key: string; messages: Uint8Array[]; settle: PromiseWithResolvers<R[]> }[] = [];
  const send = (key: string, messages: Uint8Array[]) => {
    const settle = Promise.withResolvers<R[]>();
    sent.push({ key, messages, settle });
    return settle.promise;
  };
  return { send, sent };
}

/** The cluster's send of broadcasts to all: one message, or a batch of several. */
function gatedBackplane() {
  const sent: { data: Uint8Array; settle: PromiseWithResolvers<void> }[] = [];
  const send = async (_key: string, messages: Uint8Array[]) => {
    const data = messages.length === 1 ? messages[0] : encodeBatch("me", messages);
    const settle = Promise.withResolvers<void>();
    sent.push({ data, settle });
    await settle.promise;
    return [];
  };
  return { send, sent };
}

const bytes = (n: number) => new Uint8Array([Kind.ALL, n]);
/** The messages a publish carried, a batch unpacked. */
const carried = (data: Uint8Array) =>
  data[0] === Kind.BATCH ? decodeBatch(data).messages.map((m) => m[1]) : [data[1]];

Deno.test("Batcher publishes at once when idle and batches in order while publishes are in flight", async () => {
  const { send, sent } = gatedBackplane();
  const limits = { depth: 1, maxInFlight: 1, maxBatch: 3, maxBatchBytes: 1024, maxQueued: 10 };
  const batcher = new Batcher(send, limits);
  const done = [0, 1, 2, 3, 4, 5].map((n) => batcher.publish("all", bytes(n)));
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
  const { send, sent } = gatedBackplane();
  const limits = { depth: 1, maxInFlight: 1, maxBatch: 100, maxBatchBytes: 5, maxQueued: 3 };
  const batcher = new Batcher(send, limits);
  const done = [0, 1, 2, 3].map((n) => batcher.publish("all", bytes(n)));
  await assert.rejects(batcher.publish("all", bytes(9)), (e) => {
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

Deno.test("Batcher gives each message its batch's result, keeps lanes apart and in order, and takes turns past maxInFlight", async () => {
  const { send, sent } = gated<number>();
  const limits = { depth: 2, maxInFlight: 3, maxBatch: 10, maxBatchBytes: 1024, maxQueued: 100 };
  const batcher = new Batcher(send, limits);
  const a = [0, 1, 2, 3].map((n) => batcher.publish("a", bytes(n)));
  const b = [4, 5].map((n) => batcher.publish("b", bytes(n)));
  const c = batcher.publish("c", bytes(6));
  // a: two in flight ([0], [1]) with [2, 3] queued; b: one ([4]); then the bound of 3 holds.
  assert.deepEqual(sent.map((s) => [s.key, s.messages.map((m) => m[1])]), [
    ["a", [0]],
    ["a", [1]],
    ["b", [4]],
  ]);
  assert.equal(batcher.queued, 4);
  assert.equal(batcher.lanes, 3);
  sent[2].settle.resolve([40]);
  assert.equal(await b[0], 40);
  // b's freed slot goes to b's own queue first, then the lanes waiting their turn.
  assert.deepEqual(sent.slice(3).map((s) => [s.key, s.messages.map((m) => m[1])]), [["b", [5]]]);
  sent[0].settle.resolve([10]);
  assert.equal(await a[0], 10);
  assert.deepEqual(sent.slice(4).map((s) => [s.key, s.messages.map((m) => m[1])]), [["a", [2, 3]]]);
  sent[1].settle.resolve([11]);
  assert.equal(await a[1], 11);
  assert.deepEqual(sent.slice(5).map((s) => [s.key, s.messages.map((m) => m[1])]), [["c", [6]]]);
  sent[4].settle.resolve([12, 13]);
  assert.deepEqual(await Promise.all(a.slice(2)), [12, 13]);
  sent[3].settle.resolve([50]);
  sent[5].settle.reject(new Error("gone"));
  assert.equal(await b[1], 50);
  await assert.rejects(c, /gone/);
  assert.equal(batcher.queued, 0);
  assert.equal(batcher.lanes, 0); // idle lanes are dropped
});

Deno.test("a burst of topic broadcasts reaches another node's client whole, in order, in few appends", async () => {
  const hub = new MemoryHub();
  let appends = 0;
  const counted = () => {
    const backplane = hub.connect();
    const appendMany = backplane.appendMany.bind(backplane);
    backplane.appendMany = (log, channel, data) => {
      appends++;
      return appendMany(log, channel, data);
    };
    return Promise.resolve(backplane);
  };
  const nodes = await startNodes(2, counted);
  const client = await ClusterClient.connect([nodes[1].addr]);
  try {
    const total = 2_000;
    const got: [number, number][] = [];
    const all = Promise.withResolvers<void>();
    await client.follow("burst", (v, info) => {
      got.push([v as number, info.offset]);
      if (got.length === total) all.resolve();
    });
    await nodes[1].cluster.ready("burst");
    const sent = await Promise.all(
      Array.from(
        { length: total },
        (_, i) => nodes[0].cluster.broadcast("burst", i, { topic: "burst" }),
      ),
    );
    await guard(all.promise, `${total} topic broadcasts on the other node`);
    assert.deepEqual(got.map(([v]) => v), Array.from({ length: total }, (_, i) => i));
    // Each caller got its own message's offset, as the client saw it, increasing.
    assert.deepEqual(got.map(([, offset]) => offset), sent.map((s) => s.offset));
    assert.ok(sent.every((s, i) => i === 0 || s.offset > sent[i - 1].offset));
    assert.ok(appends < total / 10, `${appends} appends for ${total} messages`);
  } finally {
    await client.close();
    await stopNodes(nodes);
  }
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
