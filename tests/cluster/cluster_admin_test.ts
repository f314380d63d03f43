// The cluster's admin routes, Prometheus families and health service, on
// the in-memory engine: the view of nodes with heartbeats and the draining
// flag, the cluster-wide session listing, kick and NOTIFY of a session on
// another node, auth and read-only refusals, counters read at scrape time.

import assert from "node:assert/strict";
import { CLUSTER_HEALTH_SERVICE } from "../../cluster/cluster.ts";
import { clusterAdminApp } from "../../cluster/admin.ts";
import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { metricsRegistry } from "../../rpc/admin.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { HEALTH_WATCH_METHOD } from "../../rpc/health.ts";
import { guard, once } from "../transport/_helpers.ts";
import { startNodes, stopNodes, type TestNode } from "./_nodes.ts";

/** The value of a family without labels in Prometheus text. */
function sample(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(match, `${name} in the metrics`);
  return Number(match[1]);
}

Deno.test("cluster admin: view, sessions, kick and notify across nodes, metrics, health", async (t) => {
  const hub = new MemoryHub();
  let nodes: TestNode[] = [];
  const clients: RpcClient[] = [];
  try {
    nodes = await startNodes(2, () => Promise.resolve(hub.connect()));
    const [a, b] = nodes;
    const joined = once<string>(a.cluster, "nodejoined", (id) => id === "n1");
    const onB = await connect(b.addr, { reconnect: false });
    const onA = await connect(a.addr, { reconnect: false });
    clients.push(onA, onB);
    const idOnB = onB.session!.id;
    await joined;
    // Directory entries are written as sessions open, without a reply to wait for.
    await guard(
      (async () => {
        while ((await a.cluster.sessions()).length < 2) await new Promise((r) => setTimeout(r, 2));
      })(),
      "both sessions in the directory",
    );
    const app = clusterAdminApp(a.cluster, { token: "t0k" });
    const auth = { authorization: "Bearer t0k" };
    const get = async (path: string) => {
      const res = await app.request(path, { headers: auth });
      return { status: res.status, body: await res.json() };
    };

    await t.step("GET /cluster shows both nodes with their last heartbeat", async () => {
      const { status, body } = await get("/cluster");
      assert.equal(status, 200);
      assert.equal(body.nodeId, "n0");
      assert.equal(body.status, "connected");
      assert.equal(body.backplane, "up");
      assert.equal(body.stale, false);
      const ids = body.nodes.map((n: { id: string }) => n.id).sort();
      assert.deepEqual(ids, ["n0", "n1"]);
      for (const n of body.nodes) {
        assert.equal(typeof n.lastHeartbeat, "number");
        assert.ok(n.lastHeartbeat <= Date.now());
        assert.equal(n.draining, false);
        assert.equal(n.self, n.id === "n0");
      }
      assert.equal(body.nodes.find((n: { id: string }) => n.id === "n1").address, b.addr);
    });

    await t.step("auth and read-only", async () => {
      assert.equal((await app.request("/cluster")).status, 401);
      const ro = clusterAdminApp(a.cluster, { readOnly: true });
      const res = await ro.request(`/cluster/sessions/${idOnB}`, { method: "DELETE" });
      assert.equal(res.status, 403);
      assert.equal((await res.json()).codeName, "permission_denied");
      const bad = await get("/cluster/sessions?limit=0");
      assert.equal(bad.status, 400);
      assert.equal(bad.body.codeName, "invalid_argument");
    });

    await t.step("GET /cluster/sessions lists sessions of every node", async () => {
      const all = await get("/cluster/sessions");
      assert.equal(all.body.total, 2);
      assert.deepEqual(all.body.sessions.map((s: { node: string }) => s.node), ["n0", "n1"]);
      const onlyB = await get("/cluster/sessions?node=n1&limit=1");
      assert.equal(onlyB.body.total, 1);
      assert.equal(onlyB.body.sessions[0].id, idOnB);
      assert.equal(onlyB.body.sessions[0].codec, "msgpack");
    });

    await t.step("POST notify and DELETE reach a session on the other node", async () => {
      const got = new Promise((resolve) => onB.subscribe("ops", resolve));
      const res = await app.request(`/cluster/sessions/${idOnB}/notify`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ method: "ops", params: { hi: 1 } }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await guard(got, "NOTIFY on b"), { hi: 1 });
      const closed = guard(onB.session!.closed, "b's session closed");
      const kick = await app.request(`/cluster/sessions/${idOnB}`, {
        method: "DELETE",
        headers: auth,
        body: JSON.stringify({ reason: "maintenance" }),
      });
      assert.equal(kick.status, 204);
      await closed;
      const missing = await app.request("/cluster/sessions/nope", {
        method: "DELETE",
        headers: auth,
      });
      assert.equal(missing.status, 404);
    });

    await t.step("metrics: cluster families in the server's registry", async () => {
      await a.cluster.broadcast("news", 1);
      const text = await metricsRegistry(a.server).metrics();
      assert.equal(sample(text, "streamwire_cluster_nodes"), 2);
      assert.equal(sample(text, "streamwire_cluster_backplane_up"), 1);
      assert.equal(sample(text, "streamwire_cluster_degraded"), 0);
      assert.equal(
        sample(text, "streamwire_cluster_messages_published_total"),
        a.cluster.metrics.published,
      );
      assert.ok(a.cluster.metrics.published >= 1);
      const textB = await metricsRegistry(b.server).metrics();
      assert.ok(sample(textB, "streamwire_cluster_messages_received_total") >= 1);
    });

    await t.step("a draining node says so in the view", async () => {
      // Holds b's drain open with a call in flight until the view was read.
      const gate = Promise.withResolvers<void>();
      const started = Promise.withResolvers<void>();
      b.server.methods.unary("hold", () => {
        started.resolve();
        return gate.promise.then(() => true);
      });
      const other = await connect(b.addr, { reconnect: false });
      clients.push(other);
      const watch = other.stream(HEALTH_WATCH_METHOD, { service: CLUSTER_HEALTH_SERVICE })
        .getReader();
      assert.deepEqual((await watch.read()).value, { status: "SERVING" });
      const held = other.call("hold");
      await guard(started.promise, "hold started");
      const stopping = b.cluster.shutdown({ deadlineMs: 30_000 });
      // Shutdown tells health watchers NOT_SERVING after the draining heartbeat.
      assert.deepEqual((await watch.read()).value, { status: "NOT_SERVING" });
      const { body } = await get("/cluster");
      assert.equal(body.nodes.find((n: { id: string }) => n.id === "n1")?.draining, true);
      gate.resolve();
      await held.catch(() => {});
      await stopping;
      nodes = [a];
      const after = await get("/cluster");
      assert.deepEqual(after.body.nodes.map((n: { id: string }) => n.id), ["n0"]);
      assert.equal(b.server.health!.status(CLUSTER_HEALTH_SERVICE), "NOT_SERVING");
      assert.equal(a.server.health!.status(CLUSTER_HEALTH_SERVICE), "SERVING");
    });
  } finally {
    for (const c of clients) await c.close();
    await stopNodes(nodes);
  }
});
