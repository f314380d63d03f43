// One conformance suite for every backplane engine: each engine's test file
// calls `conformance` with a way to make backplanes on one shared engine and
// to stop and start that engine (a restart that loses its data).
//
// Tests await what they wait for (a message, a status change); the only
// clock is the safety net of `guard`, and `until` re-checks a condition that
// no event announces (an expiry) without asserting on time.

import assert from "node:assert/strict";
import type { Backplane, BackplaneStatus } from "../../cluster/backplane.ts";
import { StreamwireError } from "../../codec/error.ts";
import { guard } from "../transport/_helpers.ts";

/** An engine under test. */
export interface Engine {
  /** A backplane on the shared engine, up. */
  make(): Promise<Backplane>;
  /** Stops the engine; its data is lost. */
  stop(): Promise<void>;
  /** Starts it again. */
  start(): Promise<void>;
  /** Releases what the engine holds after the suite. */
  dispose(): Promise<void>;
}

/** A channel message as a handler received it. */
export interface Received {
  data: Uint8Array;
  offset: number;
  prev: number;
}

/** Collects a channel's messages; `count(n)` resolves once `n` arrived. */
export class Collector {
  readonly got: Received[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];
  push = (data: Uint8Array, offset: number, prev: number): void => {
    this.got.push({ data, offset, prev });
    this.#waiters = this.#waiters.filter((w) => this.got.length < w.n || (w.resolve(), false));
  };
  count(n: number, what = `${n} messages`): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve });
    return guard(promise, what);
  }
}

/** Resolves when `backplane` reports `status`. */
export function statusOf(backplane: Backplane, status: BackplaneStatus): Promise<void> {
  if (backplane.status === status) return Promise.resolve();
  const { promise, resolve } = Promise.withResolvers<void>();
  const off = backplane.onStatus((s) => {
    if (s === status) {
      off();
      resolve();
    }
  });
  return guard(promise, `backplane ${status}`);
}

/** Re-checks `cond` on each turn of the event loop until it holds. */
export async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  await guard(
    (async () => {
      while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
    })(),
    what,
  );
}

const bytes = (...b: number[]) => new Uint8Array(b);

/** Registers the suite for `name`. */
export function conformance(name: string, engine: () => Promise<Engine>): void {
  Deno.test(`${name} backplane conformance`, async (t) => {
    const e = await engine();
    const open: Backplane[] = [];
    const make = async () => {
      const b = await e.make();
      open.push(b);
      return b;
    };
    try {
      await t.step("publish reaches every subscriber in order, binary intact", async () => {
        const [a, b, c] = [await make(), await make(), await make()];
        const nb = new Collector(), nc = new Collector();
        await b.subscribe("ch1", nb.push);
        await c.subscribe("ch1", nc.push);
        await Promise.all([a.publish("ch1", bytes(0)), a.publish("ch1", bytes(255, 0, 1))]);
        await a.publish("ch1", bytes(2));
        await Promise.all([nb.count(3), nc.count(3)]);
        for (const { got } of [nb, nc]) {
          assert.deepEqual(got.map((m) => [...m.data]), [[0], [255, 0, 1], [2]]);
          assert.deepEqual(got.map((m) => m.offset), [0, 0, 0]);
        }
      });

      await t.step("unsubscribe stops delivery", async () => {
        const [a, b] = [await make(), await make()];
        const n = new Collector();
        await b.subscribe("ch2", n.push);
        await b.subscribe("ch2-marker", () => {});
        await b.unsubscribe("ch2");
        const marker = Promise.withResolvers<void>();
        await b.subscribe("ch2-marker", () => marker.resolve());
        await a.publish("ch2", bytes(1));
        await a.publish("ch2-marker", bytes(9));
        await guard(marker.promise, "marker after the unsubscribed channel");
        assert.equal(n.got.length, 0);
      });

      await t.step("append publishes with increasing offsets; read resumes", async () => {
        const [a, b] = [await make(), await make()];
        const n = new Collector();
        await b.subscribe("ch3", n.push);
        const offsets = [];
        for (let i = 1; i <= 3; i++) offsets.push(await a.append("log3", "ch3", bytes(i)));
        await n.count(3);
        assert.deepEqual(n.got.map((m) => m.offset), offsets);
        assert.deepEqual(n.got.map((m) => m.prev), [0, offsets[0], offsets[1]]);
        assert.ok(offsets[0] < offsets[1] && offsets[1] < offsets[2]);
        const all = await b.read("log3", 0, 100);
        assert.equal(all.head, offsets[2]);
        assert.equal(all.gap, false);
        // Callers keep and patch what they get: a slice of it must be a copy, not a view.
        for (const got of [n.got, all.entries]) {
          for (const m of got) m.data.slice().fill(0);
          assert.deepEqual(got.map((x) => [...x.data]), [[1], [2], [3]]);
        }
        const rest = await b.read("log3", offsets[0], 1);
        assert.deepEqual(rest.entries.map((x) => x.offset), [offsets[1]]);
        assert.equal(rest.gap, false);
        const none = await b.read("log3", offsets[2], 10);
        assert.deepEqual(none, { entries: [], gap: false, head: offsets[2] });
        const empty = await b.read("log-none", 0, 10);
        assert.deepEqual(empty, { entries: [], gap: false, head: 0 });
      });

      await t.step("retention trims old entries and a read before them reports a gap", async () => {
        const a = await make();
        const first = await a.append("log4", "ch4", bytes(0));
        for (let i = 1; i < 40; i++) await a.append("log4", "ch4", bytes(i));
        // The engines' retention is 16 in this suite; Redis may keep a few more.
        const read = await a.read("log4", first, 1000);
        assert.equal(read.gap, true);
        assert.ok(read.entries.length < 39, `kept '${read.entries.length}' of 39 after the first`);
        assert.equal(read.entries.at(-1)?.data[0], 39);
      });

      await t.step(
        "appendMany appends in order: offsets, prev, one delivery each, read",
        async () => {
          const [a, b] = [await make(), await make()];
          const n = new Collector();
          await b.subscribe("ch7", n.push);
          const one = await a.append("log7", "ch7", bytes(0));
          // Bytes a length-prefixed or space-separated format could trip on.
          const many = await a.appendMany("log7", "ch7", [bytes(42, 32, 1), bytes(), bytes(32)]);
          assert.deepEqual(await a.appendMany("log7", "ch7", []), []);
          const big = new Uint8Array(70_000).map((_, i) => i % 251);
          const last = await a.appendMany("log7", "ch7", [big]);
          const offsets = [one, ...many, ...last];
          assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]), `${offsets}`);
          await n.count(5);
          const want = [[0], [42, 32, 1], [], [32], [...big]];
          assert.deepEqual(n.got.map((m) => m.offset), offsets);
          assert.deepEqual(n.got.map((m) => m.prev), [0, ...offsets.slice(0, -1)]);
          for (const m of n.got) m.data.slice().fill(7); // a slice is a copy
          assert.deepEqual(n.got.map((m) => [...m.data]), want);
          const read = await b.read("log7", 0, 100);
          assert.deepEqual(
            read.entries.map((e) => [e.offset, e.prev]),
            n.got.map((m) => [m.offset, m.prev]),
          );
          assert.deepEqual(read.entries.map((e) => [...e.data]), want);
          assert.equal(read.head, offsets[4]);
          const rest = await b.read("log7", offsets[1], 2);
          assert.deepEqual(rest.entries.map((e) => e.offset), offsets.slice(2, 4));
          assert.equal(rest.gap, false);
        },
      );

      await t.step("a handler that throws still gets the messages after", async () => {
        const [a, b] = [await make(), await make()];
        const n = new Collector();
        await b.subscribe("ch9", (data, offset, prev) => {
          n.push(data, offset, prev);
          if (data[0] % 2 === 1) throw new Error("handler failure");
        });
        await a.publish("ch9", bytes(1));
        await a.publish("ch9", bytes(2));
        await a.appendMany("log9", "ch9", [bytes(3), bytes(4)]);
        await n.count(4);
        assert.deepEqual(n.got.map((m) => m.data[0]), [1, 2, 3, 4]);
      });

      await t.step("appendMany calls in flight together keep call order", async () => {
        const [a, b] = [await make(), await make()];
        const n = new Collector();
        await b.subscribe("ch8", n.push);
        const calls = await Promise.all([
          a.appendMany("log8", "ch8", [bytes(1), bytes(2)]),
          a.appendMany("log8", "ch8", [bytes(3)]),
          a.append("log8", "ch8", bytes(4)).then((o) => [o]),
          a.appendMany("log8", "ch8", [bytes(5), bytes(6), bytes(7)]),
        ]);
        const offsets = calls.flat();
        assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]), `${offsets}`);
        await n.count(7);
        assert.deepEqual(n.got.map((m) => m.data[0]), [1, 2, 3, 4, 5, 6, 7]);
        assert.deepEqual(n.got.map((m) => m.offset), offsets);
        const read = await b.read("log8", 0, 100);
        assert.deepEqual(read.entries.map((e) => e.data[0]), [1, 2, 3, 4, 5, 6, 7]);
        assert.equal(read.gap, false);
      });

      await t.step(
        "appendMany spanning the retention: trimmed, all published, a gap before",
        async () => {
          const [a, b] = [await make(), await make()];
          const n = new Collector();
          await b.subscribe("ch9", n.push);
          const first = await a.append("log9", "ch9", bytes(0));
          // 40 entries in one call against a retention of 16.
          const offsets = await a.appendMany(
            "log9",
            "ch9",
            Array.from({ length: 40 }, (_, i) => bytes(i + 1)),
          );
          await n.count(41);
          assert.deepEqual(n.got.map((m) => m.data[0]), Array.from({ length: 41 }, (_, i) => i));
          assert.deepEqual(n.got.slice(1).map((m) => m.offset), offsets);
          const read = await b.read("log9", first, 1000);
          assert.equal(read.gap, true);
          assert.equal(read.head, offsets[39]);
          assert.ok(read.entries.length <= 16, `kept '${read.entries.length}' of 41`);
          assert.equal(read.entries.at(-1)?.data[0], 40);
          // What is kept is contiguous, and a reader inside it has no gap.
          for (let i = 1; i < read.entries.length; i++) {
            assert.equal(read.entries[i].prev, read.entries[i - 1].offset);
          }
          const inside = await b.read("log9", offsets[35], 1000);
          assert.equal(inside.gap, false);
          assert.deepEqual(inside.entries.map((e) => e.offset), offsets.slice(36));
        },
      );

      await t.step(
        "appendMany past maxAppendMany is refused with resource_exhausted, nothing appended",
        async () => {
          const [a, b] = [await make(), await make()];
          const n = new Collector();
          await b.subscribe("ch10", n.push);
          const max = a.maxAppendMany;
          assert.ok(Number.isSafeInteger(max) && max > 0, `maxAppendMany '${max}'`);
          await assert.rejects(
            a.appendMany("log10", "ch10", Array.from({ length: max + 1 }, () => bytes(1))),
            (e) =>
              e instanceof StreamwireError && e.codeName === "resource_exhausted" &&
              e.message === `appendMany of '${max + 1}' entries exceeds maxAppendMany '${max}'`,
          );
          assert.deepEqual(await a.read("log10", 0, 10), { entries: [], gap: false, head: 0 });
          const at = await a.appendMany(
            "log10",
            "ch10",
            Array.from({ length: max }, () => bytes(2)),
          );
          assert.equal(at.length, max);
          await n.count(max);
          assert.ok(n.got.every((m) => m.data[0] === 2));
        },
      );

      await t.step("nodes: heartbeat, list, expiry, removal with their sessions", async () => {
        const [a, b] = [await make(), await make()];
        await a.heartbeat("n1", '{"x":1}', 60_000);
        await b.heartbeat("n2", "{}", 60_000);
        await a.setSession({ id: "s1", node: "n1", info: '{"codec":"json"}' });
        await b.setSession({ id: "s2", node: "n2", info: "{}" });
        assert.deepEqual((await b.nodes()).map((n) => n.id).sort(), ["n1", "n2"]);
        assert.deepEqual(await b.session("s1"), { id: "s1", node: "n1", info: '{"codec":"json"}' });
        assert.deepEqual((await a.sessions()).map((s) => s.id).sort(), ["s1", "s2"]);
        assert.deepEqual((await a.sessions("n2")).map((s) => s.id), ["s2"]);
        await a.deleteSession("n1", "s1");
        assert.equal(await b.session("s1"), undefined);
        await a.setSession({ id: "s1", node: "n1", info: "{}" });
        // n2 stops heartbeating with a short lifetime: it expires and is reaped.
        await b.heartbeat("n2", "{}", 1);
        await until(
          async () => (await a.reap()).includes("n2") || !(await has(a, "n2")),
          "n2 reaped",
        );
        assert.deepEqual((await a.nodes()).map((n) => n.id), ["n1"]);
        assert.equal(await a.session("s2"), undefined);
        assert.deepEqual((await a.sessions()).map((s) => s.id), ["s1"]);
        await a.removeNode("n1");
        assert.deepEqual(await a.nodes(), []);
        assert.equal(await b.session("s1"), undefined);
      });

      await t.step("engine restart: down, calls reject, up, subscriptions kept", async () => {
        const [a, b] = [await make(), await make()];
        const n = new Collector();
        await b.subscribe("ch6", n.push);
        const before = await a.append("log6", "ch6", bytes(1));
        await n.count(1);
        const downs = [statusOf(a, "down"), statusOf(b, "down")];
        await e.stop();
        await Promise.all(downs);
        await assert.rejects(a.publish("ch6", bytes(2)));
        await assert.rejects(a.append("log6", "ch6", bytes(2)));
        await e.start();
        await Promise.all([statusOf(a, "up"), statusOf(b, "up")]);
        // The subscription may come back a little after the status: publish until it lands.
        const ticker = setInterval(() => a.publish("ch6", bytes(3)).catch(() => {}), 20);
        try {
          await n.count(2, "a message after the restart");
        } finally {
          clearInterval(ticker);
        }
        assert.deepEqual([...n.got[1].data], [3]);
        // The log was lost with the engine's data: a reader of the old offset is told.
        const read = await a.read("log6", before, 10);
        assert.equal(read.gap, true);
        const next = await a.append("log6", "ch6", bytes(4));
        assert.ok(next > before, "offsets keep increasing across the restart");
      });
    } finally {
      for (const b of open) await b.close();
      await e.dispose();
    }
  });
}

async function has(b: Backplane, node: string): Promise<boolean> {
  return (await b.nodes()).some((n) => n.id === node);
}
