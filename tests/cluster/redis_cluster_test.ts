import assert from "node:assert/strict";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { ClusterClient, type FollowInfo } from "../../cluster/cluster_client.ts";
import { clusterCases } from "./_cases.ts";
import { nextEvent, startNodes, stopNodes } from "./_nodes.ts";
import { RedisProcess } from "./_redis.ts";
import { guard } from "../transport/_helpers.ts";

clusterCases("redis", async () => {
  const redis = await RedisProcess.start();
  return {
    make: () => RedisBackplane.connect(redis.url, { prefix: "cases" }),
    dispose: () => redis.stop(),
  };
});

Deno.test("redis cluster: Redis restarts mid-run; local delivery goes on, the node recovers", async () => {
  const redis = await RedisProcess.start();
  const nodes = await startNodes(2, () => RedisBackplane.connect(redis.url, { prefix: "rs" }));
  const [a, b] = nodes;
  const client = await ClusterClient.connect([a.addr]);
  try {
    const got: unknown[] = [];
    let notify: (() => void) | undefined;
    await client.follow("t", (v) => {
      got.push(v);
      notify?.();
    });
    const seen = (n: number) =>
      guard(
        new Promise<void>((resolve) => {
          notify = () => got.length >= n && resolve();
          notify();
        }),
        `${n} messages`,
      );
    await a.cluster.broadcast("t", 1, { topic: "t" });
    await seen(1);
    const degraded = nextEvent(a.cluster, "status", (s) => s === "degraded");
    await redis.stop();
    await degraded;
    assert.equal(a.cluster.status, "degraded");
    // Local delivery keeps working while Redis is away (no offset).
    assert.deepEqual(await a.cluster.broadcast("t", 2, { topic: "t" }), { offset: 0 });
    await seen(2);
    assert.equal(a.cluster.metrics.localOnly, 1);
    const back = nextEvent(a.cluster, "status", (s) => s === "connected");
    await redis.resume();
    await back;
    // Announced again: b sees a, and a publish from b reaches a's follower.
    await guard(
      (async () => {
        // b may still be reconnecting: its calls fail until then.
        while (!(await b.cluster.nodes().catch(() => [])).some((n) => n.id === "n0")) {
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
      "n0 announced again",
    );
    const ticker = setInterval(() => b.cluster.broadcast("t", 3, { topic: "t" }), 50);
    try {
      await seen(3);
    } finally {
      clearInterval(ticker);
    }
    assert.deepEqual(got.slice(0, 3), [1, 2, 3]);
  } finally {
    await client.close();
    await stopNodes(nodes);
    await redis.stop();
  }
});

/** Starts `streamwire serve --cluster` as a child process; resolves with its address. */
async function serveNode(url: string, nodeId: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/main.ts",
      "serve",
      "--port",
      "0",
      "--no-admin",
      "--cluster",
      url,
      "--node-id",
      nodeId,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/cluster node /.test(seen)) {
    const { value, done } = await guard(reader.read(), `${nodeId} started`);
    if (done) throw new Error(`serve exited: ${seen}`);
    seen += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  const addr = /listening on (\S+)/.exec(seen)![1];
  return { child, addr };
}

Deno.test("redis cluster: a node is killed while its clients follow a topic; they resume on another with no gap or duplicate", async () => {
  const redis = await RedisProcess.start();
  const nodes = await startNodes(2, () => RedisBackplane.connect(redis.url));
  const [pub, spare] = nodes;
  const doomed = await serveNode(redis.url, "doomed");
  const followers: { client: ClusterClient; got: [unknown, FollowInfo][] }[] = [];
  const total = 300;
  let done!: () => void;
  const allDone = new Promise<void>((r) => (done = r));
  const check = () => followers.every((f) => f.got.length >= total) && done();
  let killed = false;
  try {
    for (let i = 0; i < 5; i++) {
      const client = await ClusterClient.connect([doomed.addr, spare.addr], {
        reconnect: { initialDelayMs: 1, maxDelayMs: 20, maxRetries: 20 },
      });
      const f = { client, got: [] as [unknown, FollowInfo][] };
      await client.follow("ticker", (v, info) => {
        f.got.push([v, info]);
        check();
      });
      followers.push(f);
    }
    const gone = nextEvent<string>(pub.cluster, "nodegone", (id) => id === "doomed");
    for (let i = 0; i < total; i++) {
      await pub.cluster.broadcast("ticker", i, { topic: "ticker" });
      if (i === 100) {
        // SIGKILL: no GOAWAY, no goodbye to the cluster, connections cut by the kernel.
        Deno.kill(doomed.child.pid, "SIGKILL");
        await doomed.child.status;
        killed = true;
      }
    }
    await guard(allDone, `${total} messages at every follower`).catch((e) => {
      console.log(followers.map((f) => [f.got.length, f.client.rpc.state, f.got.at(-1)]));
      throw e;
    });
    await gone;
    for (const f of followers) {
      assert.deepEqual(f.got.map(([v]) => v), Array.from({ length: total }, (_, i) => i));
      const offsets = f.got.map(([, info]) => info.offset);
      assert.equal(new Set(offsets).size, total, "no duplicate offset");
    }
    assert.ok(followers.some((f) => f.got.some(([, info]) => info.recovered)), "some replayed");
  } finally {
    if (!killed) {
      Deno.kill(doomed.child.pid, "SIGKILL");
      await doomed.child.status;
    }
    for (const f of followers) await f.client.close();
    await stopNodes(nodes);
    await redis.stop();
  }
});
