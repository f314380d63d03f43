// Cluster behaviour on any backplane engine: cross-node broadcast to all and
// to a topic, channel subscriptions following local membership, unicast and
// kick of a session on another node, session listing, node expiry, resume
// with offsets, and a node's loss while its clients follow a topic.

import assert from "node:assert/strict";
import type { Backplane } from "../../cluster/backplane.ts";
import { ClusterClient, type FollowInfo } from "../../cluster/cluster_client.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { guard, once } from "../transport/_helpers.ts";
import { member, startNodes, stopNodes, type TestNode } from "./_nodes.ts";

export interface CaseEngine {
  make(): Promise<Backplane>;
  dispose(): Promise<void>;
}

function pushes(client: RpcClient, topic: string, count: number): Promise<unknown[]> {
  const got: unknown[] = [];
  const { promise, resolve } = Promise.withResolvers<unknown[]>();
  client.subscribe(topic, (v) => {
    got.push(v);
    if (got.length === count) resolve(got);
  });
  return guard(promise, `${count} pushes on ${topic}`);
}

class Follower {
  got: [unknown, FollowInfo][] = [];
  #waiters: { n: number; resolve: () => void }[] = [];
  callback = (value: unknown, info: FollowInfo) => {
    this.got.push([value, info]);
    this.#waiters = this.#waiters.filter((w) => this.got.length < w.n || (w.resolve(), false));
  };
  count(n: number): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve });
    return guard(promise, `${n} followed messages (have ${this.got.length})`);
  }
}

export function clusterCases(name: string, engine: () => Promise<CaseEngine>): void {
  Deno.test(`${name} cluster`, async (t) => {
    const e = await engine();
    let nodes: TestNode[] = [];
    const clients: { close(): Promise<void> }[] = [];
    try {
      nodes = await startNodes(3, e.make);
      const [a, b, c] = nodes;
      const cb = await connect(b.addr, { codecs: ["json"] });
      const cc = await connect(c.addr, { codecs: ["msgpack"], compression: ["zlib"] });
      clients.push(cb, cc);

      await t.step("broadcast to all reaches every node, in publish order, per codec", async () => {
        const gotB = pushes(cb, "news", 3), gotC = pushes(cc, "news", 3);
        for (let i = 0; i < 3; i++) await a.cluster.broadcast("news", { i, pad: "x".repeat(2000) });
        for (const got of [await gotB, await gotC]) {
          assert.deepEqual(got.map((v) => (v as { i: number }).i), [0, 1, 2]);
        }
      });

      await t.step("topic broadcast reaches members only; channels follow membership", async () => {
        await cb.call("chat.join", { room: "lobby" });
        await member(b, "lobby", 1);
        await b.cluster.ready("lobby");
        const got = pushes(cb, "lobby", 1);
        let ccGot = 0;
        cc.subscribe("lobby", () => ccGot++);
        const { offset } = await a.cluster.broadcast("lobby", { text: "hi" }, { topic: "lobby" });
        assert.ok(offset > 0);
        assert.deepEqual(await got, [{ text: "hi" }]);
        assert.equal(ccGot, 0);
        // Every member on every node gets a message published on a node with a member too.
        await cc.call("chat.join", { room: "lobby" });
        await member(c, "lobby", 1);
        await c.cluster.ready("lobby");
        const both = [pushes(cb, "lobby", 1), pushes(cc, "lobby", 1)];
        await c.cluster.broadcast("lobby", { text: "from c" }, { topic: "lobby" });
        const [fromB, fromC] = await Promise.all(both);
        assert.deepEqual((fromB[0] as { text: string }).text, "from c");
        assert.deepEqual((fromC[0] as { text: string }).text, "from c");
        await cc.call("chat.leave", { room: "lobby" });
      });

      await t.step(
        "unicast and kick reach a session on another node; sessions listed",
        async () => {
          const listed = await a.cluster.sessions();
          const idB = cb.session!.id, idC = cc.session!.id;
          assert.ok(listed.some((s) => s.id === idB && s.node === "n1"));
          assert.ok(listed.some((s) => s.id === idC && s.node === "n2"));
          const got = pushes(cc, "direct", 1);
          assert.equal(await a.cluster.unicast(idC, "direct", { to: "c" }), true);
          assert.deepEqual(await got, [{ to: "c" }]);
          assert.equal(await a.cluster.unicast("no-such-session", "direct", 1), false);
          const victim = await connect(b.addr, { reconnect: false });
          const closed = victim.session!.closed;
          await guard(
            (async () => {
              while (!(await a.cluster.sessions()).some((s) => s.id === victim.session!.id)) {
                await new Promise((r) => setTimeout(r, 2));
              }
            })(),
            "victim in the directory",
          );
          assert.equal(await a.cluster.kick(victim.session!.id, "bye"), true);
          await guard(closed, "kicked session closed");
          await victim.close();
        },
      );

      await t.step("a stopped node is forgotten with its sessions", async () => {
        const extra = (await startNodes(1, e.make, { nodeTtlMs: 100 }, "x"))[0];
        const joined = await a.cluster.nodes();
        assert.ok(joined.some((n) => n.id === "x0" && n.announced.address === extra.addr));
        const gone = once<string>(a.cluster, "nodegone", (id) => id === "x0");
        await extra.server.shutdown({ deadlineMs: 0 });
        // Stop its heartbeats without removing it: it must expire.
        await extra.cluster.backplane.close();
        await gone;
        const ids = (await a.cluster.nodes()).map((n) => n.id);
        assert.deepEqual(ids.sort(), ["n0", "n1", "n2"]);
        await extra.cluster.close();
      });

      await t.step("resume: reconnect to another node replays from the offset", async () => {
        const f = new Follower();
        const client = await ClusterClient.connect([b.addr, c.addr]);
        clients.push(client);
        await client.follow("feed", f.callback);
        await member(b, "feed", 1);
        for (let i = 0; i < 5; i++) await a.cluster.broadcast("feed", i, { topic: "feed" });
        await f.count(5);
        // Drop the connection: the client reconnects (to c) and resumes.
        const resumed = once(
          client.rpc,
          "statechange",
          (d: { to: string }) => d.to === "ready",
        );
        for (let i = 5; i < 8; i++) await a.cluster.broadcast("feed", i, { topic: "feed" });
        b.server.transport.kick(client.rpc.session!.id, "go elsewhere");
        await resumed;
        for (let i = 8; i < 10; i++) await a.cluster.broadcast("feed", i, { topic: "feed" });
        await f.count(10);
        assert.deepEqual(f.got.map(([v]) => v), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        const offsets = f.got.map(([, i]) => i.offset);
        assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
        assert.equal(new Set(offsets).size, 10);
      });
    } finally {
      for (const c of clients) await c.close();
      await stopNodes(nodes);
      await e.dispose();
    }
  });
}
