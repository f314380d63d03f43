// Figures of docs/PERFORMANCE.md: cross-node broadcast on 3 nodes over a
// local Redis against the same broadcast on one node, measured in one run.
// Run: deno run -A tests/cluster/cluster_figures.ts

import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import { Cluster } from "../../cluster/cluster.ts";
import { RedisProcess } from "./_redis.ts";

const MESSAGES = Number(Deno.env.get("MESSAGES") ?? 5_000);
const CLIENTS_PER_NODE = 10;
const SAMPLES = 2_000;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Resolves once every client got `n` pushes on `topic`. */
function receiveAll(clients: RpcClient[], topic: string, n: number): Promise<void> {
  return Promise.all(clients.map((c) =>
    new Promise<void>((resolve) => {
      let got = 0;
      const off = c.subscribe(topic, () => {
        if (++got === n) {
          off();
          resolve();
        }
      });
    })
  )).then(() => {});
}

async function clientsOf(addr: string, n: number): Promise<RpcClient[]> {
  return await Promise.all(Array.from({ length: n }, () => connect(addr, { codecs: ["msgpack"] })));
}

const redis = await RedisProcess.start();
try {
  // Single node: the baseline.
  const single = new RpcServer({ methods: new Methods() });
  const singleClients = await clientsOf(single.listen({ port: 0 }), 3 * CLIENTS_PER_NODE);
  let done = receiveAll(singleClients, "t", MESSAGES);
  let start = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    single.broadcast("t", { i });
    if (i % 128 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  await done;
  const singleRate = MESSAGES / ((performance.now() - start) / 1000);
  const singleLat: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = receiveAll([singleClients[0]], "lat", 1);
    const t0 = performance.now();
    single.broadcast("lat", i);
    await got;
    singleLat.push(performance.now() - t0);
  }
  for (const c of singleClients) await c.close();
  await single.shutdown();

  // Three nodes; publish on the first, clients on all three.
  const nodes: { server: RpcServer; cluster: Cluster; clients: RpcClient[] }[] = [];
  for (let n = 0; n < 3; n++) {
    const server = new RpcServer({ methods: new Methods() });
    const addr = server.listen({ port: 0 });
    const cluster = await Cluster.start(server, {
      backplane: await RedisBackplane.connect(redis.url),
      nodeId: `f${n}`,
    });
    nodes.push({ server, cluster, clients: await clientsOf(addr, CLIENTS_PER_NODE) });
  }
  const all = nodes.flatMap((n) => n.clients);
  done = receiveAll(all, "t", MESSAGES);
  start = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    pending.push(nodes[0].cluster.broadcast("t", { i }));
    if (i % 128 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  await Promise.all(pending);
  await done;
  const clusterRate = MESSAGES / ((performance.now() - start) / 1000);
  const remoteLat: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = receiveAll([nodes[1].clients[0]], "lat", 1);
    const t0 = performance.now();
    await nodes[0].cluster.broadcast("lat", i);
    await got;
    remoteLat.push(performance.now() - t0);
  }
  for (const n of nodes) {
    for (const c of n.clients) await c.close();
    await n.cluster.shutdown({ deadlineMs: 0 });
  }
  singleLat.sort((a, b) => a - b);
  remoteLat.sort((a, b) => a - b);
  const fmt = (x: number) => x.toFixed(3);
  console.log(`broadcast to ${3 * CLIENTS_PER_NODE} sessions, ${MESSAGES} messages (msgpack)`);
  console.log(`  single node: ${Math.round(singleRate)} msgs/s`);
  console.log(
    `  3 nodes, Redis: ${Math.round(clusterRate)} msgs/s (${
      (clusterRate / singleRate).toFixed(2)
    }x)`,
  );
  console.log(`latency publish -> receipt, ${SAMPLES} samples, ms`);
  console.log(
    `  single node: p50 ${fmt(quantile(singleLat, 0.5))} p99 ${fmt(quantile(singleLat, 0.99))}`,
  );
  console.log(
    `  other node:  p50 ${fmt(quantile(remoteLat, 0.5))} p99 ${fmt(quantile(remoteLat, 0.99))}`,
  );
  console.log(
    `  added:       p50 ${fmt(quantile(remoteLat, 0.5) - quantile(singleLat, 0.5))} p99 ${
      fmt(quantile(remoteLat, 0.99) - quantile(singleLat, 0.99))
    }`,
  );
} finally {
  await redis.stop();
}
