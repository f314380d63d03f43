// Cluster state for operators on Redis: a Redis restart mid-run shows in
// health (the `streamwire.cluster` service, watched over a real client),
// in the Prometheus families and in the admin view, then clears; and
// `serve --cluster` serves the cluster routes on its admin port.

import assert from "node:assert/strict";
import { CLUSTER_HEALTH_SERVICE } from "../../cluster/cluster.ts";
import { clusterAdminApp } from "../../cluster/admin.ts";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { metricsRegistry } from "../../rpc/admin.ts";
import { connect } from "../../rpc/client.ts";
import { HEALTH_CHECK_METHOD, HEALTH_WATCH_METHOD } from "../../rpc/health.ts";
import { once } from "../transport/_helpers.ts";
import { spawnReady, stopChild } from "./_child.ts";
import { startNodes, stopNodes } from "./_nodes.ts";
import { RedisProcess } from "./_redis.ts";

function sample(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(match, `${name} in the metrics`);
  return Number(match[1]);
}

Deno.test("redis cluster: a Redis restart shows degraded, then recovered, in health, metrics and the admin view", async () => {
  const redis = await RedisProcess.start();
  const nodes = await startNodes(2, () => RedisBackplane.connect(redis.url, { prefix: "ops" }));
  const [a] = nodes;
  const client = await connect(a.addr, { reconnect: false });
  const watch = client.stream(HEALTH_WATCH_METHOD, { service: CLUSTER_HEALTH_SERVICE })
    .getReader();
  const app = clusterAdminApp(a.cluster);
  const scrape = () => metricsRegistry(a.server).metrics();
  try {
    assert.deepEqual((await watch.read()).value, { status: "SERVING" });
    await once<string>(a.cluster, "nodejoined", (id) => id === "n1");
    let text = await scrape();
    assert.equal(sample(text, "streamwire_cluster_backplane_up"), 1);
    assert.equal(sample(text, "streamwire_cluster_degraded"), 0);
    assert.equal(sample(text, "streamwire_cluster_nodes"), 2);

    const degraded = once(a.cluster, "status", (s) => s === "degraded");
    await redis.stop();
    await degraded;
    // The watcher is told; the server as a whole still serves (local delivery works).
    assert.deepEqual((await watch.read()).value, { status: "NOT_SERVING" });
    assert.deepEqual(await client.call(HEALTH_CHECK_METHOD, {}), { status: "SERVING" });
    assert.deepEqual(
      await client.call(HEALTH_CHECK_METHOD, { service: CLUSTER_HEALTH_SERVICE }),
      { status: "NOT_SERVING" },
    );
    await a.cluster.broadcast("t", 1); // delivered locally only
    text = await scrape();
    assert.equal(sample(text, "streamwire_cluster_backplane_up"), 0);
    assert.equal(sample(text, "streamwire_cluster_degraded"), 1);
    assert.equal(sample(text, "streamwire_cluster_outages_total"), 1);
    assert.equal(sample(text, "streamwire_cluster_local_only_total"), 1);
    const view = await (await app.request("/cluster")).json();
    assert.equal(view.status, "degraded");
    assert.equal(view.backplane, "down");
    assert.equal(view.stale, true);
    assert.deepEqual(view.nodes.map((n: { id: string }) => n.id).sort(), ["n0", "n1"]);
    const listing = await app.request("/cluster/sessions");
    assert.equal(listing.status, 503);
    assert.equal((await listing.json()).codeName, "unavailable");

    const back = once(a.cluster, "status", (s) => s === "connected");
    await redis.resume();
    await back;
    assert.deepEqual((await watch.read()).value, { status: "SERVING" });
    text = await scrape();
    assert.equal(sample(text, "streamwire_cluster_backplane_up"), 1);
    assert.equal(sample(text, "streamwire_cluster_degraded"), 0);
    assert.equal(sample(text, "streamwire_cluster_outages_total"), 1);
    const after = await (await app.request("/cluster")).json();
    assert.equal(after.status, "connected");
    assert.equal(after.stale, false);
  } finally {
    await watch.cancel();
    await client.close();
    await stopNodes(nodes);
    await redis.stop();
  }
});

Deno.test("redis cluster: serve --cluster serves GET /cluster on the admin port, behind the admin token", async () => {
  const redis = await RedisProcess.start();
  let child: Deno.ChildProcess | undefined;
  try {
    const started = await spawnReady(
      Deno.execPath(),
      ["run", "-A", "cli/main.ts", "serve", "--port", "0", "--admin-port", "0"]
        .concat(["--cluster", redis.url, "--node-id", "ops1"]),
      {
        log: "stdout",
        ready: /admin API on /,
        other: "null",
        env: { STREAMWIRE_ADMIN_TOKEN: "adm1n" },
      },
    );
    child = started.child;
    const admin = /admin API on (\S+)/.exec(started.seen)![1];
    const refused = await fetch(`${admin}/cluster`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const res = await fetch(`${admin}/cluster`, { headers: { authorization: "Bearer adm1n" } });
    assert.equal(res.status, 200);
    const view = await res.json();
    assert.equal(view.nodeId, "ops1");
    assert.equal(view.status, "connected");
    assert.deepEqual(view.nodes.map((n: { id: string }) => n.id), ["ops1"]);
    // The server's own admin routes are still there.
    const health = await fetch(`${admin}/health`, { headers: { authorization: "Bearer adm1n" } });
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    if (child !== undefined) await stopChild(child);
    await redis.stop();
  }
});
