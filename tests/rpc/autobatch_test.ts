import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import type { Connection } from "../../transport/connection.ts";
import { KINDS, rejectsWith, rig } from "./_rig.ts";
import { parseFrames, type RawFrame, T } from "./_wire.ts";

/** Wraps a connection so every frame it writes is parsed (by hand) and recorded. */
function spy(sent: RawFrame[]): (conn: Connection) => Connection {
  return (conn) => {
    const writer = conn.writable.getWriter();
    let rest: Uint8Array = new Uint8Array(0);
    const writable = new WritableStream<Uint8Array>({
      write(chunk) {
        const joined = new Uint8Array(rest.length + chunk.length);
        joined.set(rest);
        joined.set(chunk, rest.length);
        const parsed = parseFrames(joined);
        rest = parsed.rest;
        sent.push(...parsed.frames);
        return writer.write(chunk);
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    });
    return {
      readable: conn.readable,
      writable,
      remoteAddr: conn.remoteAddr,
      localAddr: conn.localAddr,
      transport: conn.transport,
      closed: conn.closed,
      close: () => conn.close(),
    };
  };
}

const calls = (sent: RawFrame[]) =>
  sent.filter((f) => f.type === T.REQUEST || f.type === T.BATCH).map((f) => f.type);

for (const kind of KINDS) {
  Deno.test(`${kind}: autoBatch sends calls of one tick as one BATCH`, async () => {
    const sent: RawFrame[] = [];
    await using r = await rig(kind, { client: { autoBatch: true }, wrap: spy(sent) });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => r.client.call("add", [i, 100])),
    );
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i + 100));
    assert.deepEqual(calls(sent), [T.BATCH]);
    const batch = sent.find((f) => f.type === T.BATCH)!;
    const body = new DataView(batch.body.buffer, batch.body.byteOffset, batch.body.byteLength);
    const offset = batch.flags & 0x08 ? 2 + body.getUint16(0) : 0;
    assert.equal(body.getUint32(offset), 20, "one BATCH of 20 entries");
    assert.ok(sent.every((f) => f.crcOk && f.magic === 0xcafe && f.version === 1));
  });

  Deno.test(`${kind}: autoBatch gives each call its own outcome`, async () => {
    const sent: RawFrame[] = [];
    await using r = await rig(kind, { client: { autoBatch: true }, wrap: spy(sent) });
    const [a, b, c, d] = await Promise.allSettled([
      r.client.call("echo", "a"),
      r.client.call("no.such"),
      r.client.call("fail.code"),
      r.client.call("sleep", 5),
    ]);
    assert.deepEqual(a, { status: "fulfilled", value: "a" });
    assert.equal(b.status === "rejected" && b.reason.code, Status.UNIMPLEMENTED);
    assert.equal(c.status === "rejected" && c.reason.code, Status.NOT_FOUND);
    assert.deepEqual(d, { status: "fulfilled", value: true });
    assert.deepEqual(calls(sent), [T.BATCH]);
    // A lone call in its turn goes as a plain REQUEST.
    assert.equal(await r.client.call("add", [1, 2]), 3);
    assert.deepEqual(calls(sent), [T.BATCH, T.REQUEST]);
    // Calls with a signal go on their own.
    await Promise.all([
      r.client.call("echo", 1, { signal: new AbortController().signal }),
      r.client.call("echo", 2, { signal: new AbortController().signal }),
    ]);
    assert.deepEqual(calls(sent), [T.BATCH, T.REQUEST, T.REQUEST, T.REQUEST]);
  });

  Deno.test(`${kind}: autoBatch: one bad params value fails only its own call`, async () => {
    await using r = await rig(kind, { client: { autoBatch: true, codecs: ["json"] } });
    const [a, b, c] = await Promise.allSettled([
      r.client.call("echo", 1),
      r.client.call("echo", 2n),
      r.client.call("echo", 3),
    ]);
    assert.deepEqual(a, { status: "fulfilled", value: 1 });
    assert.equal(b.status === "rejected" && b.reason.code, Status.INVALID_ARGUMENT);
    assert.deepEqual(c, { status: "fulfilled", value: 3 });
    // And the batcher still works afterwards, alone or grouped.
    await rejectsWith(r.client.call("echo", 4n), Status.INVALID_ARGUMENT);
    assert.equal(await r.client.call("echo", 5), 5);
    assert.deepEqual(
      await Promise.all([r.client.call("echo", 6), r.client.call("echo", 7)]),
      [6, 7],
    );
  });

  Deno.test(`${kind}: autoBatch: a call never fails at a neighbour's deadline`, async () => {
    const sent: RawFrame[] = [];
    await using r = await rig(kind, { client: { autoBatch: true }, wrap: spy(sent) });
    const [a, b, c, d] = await Promise.allSettled([
      r.client.call("hang", undefined, { timeout: 20 }),
      r.client.call("echo", 1),
      r.client.call("echo", 2),
      r.client.call("echo", 3, { timeout: 20 }),
    ]);
    assert.equal(a.status === "rejected" && a.reason.code, Status.DEADLINE_EXCEEDED);
    assert.deepEqual(b, { status: "fulfilled", value: 1 });
    assert.deepEqual(c, { status: "fulfilled", value: 2 });
    // Same timeout, same BATCH: it shares the hung entry's fate.
    assert.equal(d.status === "rejected" && d.reason.code, Status.DEADLINE_EXCEEDED);
    assert.deepEqual(calls(sent), [T.BATCH, T.BATCH]);
  });
}

Deno.test("autoBatch sends calls with their own traceparent one by one", async () => {
  const sent: RawFrame[] = [];
  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  await using r = await rig("memory", { client: { autoBatch: true }, wrap: spy(sent) });
  await Promise.all([
    r.client.call("echo", 1, { traceparent: tp }),
    r.client.call("echo", 2, { traceparent: tp }),
  ]);
  assert.deepEqual(calls(sent), [T.REQUEST, T.REQUEST]);
});

Deno.test("autoBatch refuses calls beyond maxPendingCalls instead of queueing them", async () => {
  await using r = await rig("memory", { client: { autoBatch: true, maxPendingCalls: 10 } });
  const results = await Promise.allSettled(
    Array.from({ length: 12 }, (_, i) => r.client.call("echo", i)),
  );
  assert.equal(results.filter((x) => x.status === "fulfilled").length, 10);
  for (const x of results.slice(10)) {
    assert.equal(x.status, "rejected");
    assert.equal((x as PromiseRejectedResult).reason.codeName, "resource_exhausted");
  }
  assert.equal(await r.client.call("echo", "after"), "after");
});
