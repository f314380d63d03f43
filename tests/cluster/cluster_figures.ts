// Figures of docs/PERFORMANCE.md and docs/CLUSTER.md, one process per node:
// redis-server, three cluster nodes and a single-node baseline, each a
// `deno run` child (tests/cluster/_node_process.ts); the clients live in
// this process and talk to the nodes over loopback TCP.
//
//   deno run -A tests/cluster/cluster_figures.ts
//
// Environment: MESSAGES (per throughput round, 20000), ROUNDS (5),
// SAMPLES (latency samples, 1000), SESSIONS (topic members, 10000),
// MODE (`all`, `topic` or `both`, default both), PROF_DIR (a directory:
// each node writes a V8 tick log `<id>.log` there, for `node --prof-process`).
// 10,000 sessions need about 10,100 descriptors here and 3,400 per node:
// `ulimit -n 20000` first.

import { connect, type RpcClient } from "../../rpc/client.ts";
import { RedisProcess } from "./_redis.ts";

const env = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const MESSAGES = env("MESSAGES", 20_000);
const ROUNDS = env("ROUNDS", 5);
const SAMPLES = env("SAMPLES", 1_000);
const SESSIONS = env("SESSIONS", 10_000);
const MODE = Deno.env.get("MODE") ?? "both";
const PROF_DIR = Deno.env.get("PROF_DIR");
const CLIENTS_PER_NODE = 10;
const CONNECT_CONCURRENCY = 200;

interface NodeProcess {
  id: string;
  pid: number;
  addr: string;
  control: RpcClient;
  stop(): Promise<void>;
}

async function spawnNode(id: string, redisUrl?: string): Promise<NodeProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(PROF_DIR
        ? [`--v8-flags=--prof,--logfile=${PROF_DIR}/${id}.log,--no-logfile-per-isolate`]
        : []),
      new URL("./_node_process.ts", import.meta.url).pathname,
      id,
      ...(redisUrl ? [redisUrl] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/ready (\S+)\n/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`node ${id} exited: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const addr = /ready (\S+)\n/.exec(seen)![1];
  const control = await client(addr);
  return {
    id,
    pid: child.pid,
    addr,
    control,
    async stop() {
      await control.close();
      Deno.kill(child.pid, "SIGTERM");
      await child.status;
    },
  };
}

function client(addr: string): Promise<RpcClient> {
  return connect(addr, { codecs: ["msgpack"], reconnect: false });
}

/** `n` clients over `nodes` in turn, at most CONNECT_CONCURRENCY dialling at once. */
async function clientsOn(nodes: NodeProcess[], n: number, topic?: string): Promise<RpcClient[]> {
  const out: RpcClient[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, async () => {
    while (next < n) {
      const i = next++;
      const c = out[i] = await client(nodes[i % nodes.length].addr);
      if (topic !== undefined) await c.call("bench.join", { topic });
    }
  }));
  return out;
}

/** Resolves, per client, with the time (performance.now) it got its `n`-th push of `method`. */
function receipts(clients: RpcClient[], method: string, n: number): Promise<number[]> {
  return Promise.all(clients.map((c) =>
    new Promise<number>((resolve) => {
      let got = 0;
      const off = c.subscribe(method, () => {
        if (++got === n) {
          off();
          resolve(performance.now());
        }
      });
    })
  ));
}

/** Messages/s until every client in `measured` got all of a `bench.publish` on `publisher`. */
async function throughput(
  publisher: NodeProcess,
  receivers: RpcClient[],
  measured: RpcClient[],
  topic: string | undefined,
  count: number,
): Promise<number> {
  const method = topic ?? "t";
  const done = receipts(receivers, method, count);
  const start = performance.now();
  await publisher.control.call("bench.publish", { count, topic });
  const times = await done;
  const last = Math.max(...measured.map((c) => times[receivers.indexOf(c)]));
  return count / ((last - start) / 1000);
}

/** Publish-to-receipt times: `bench.one` on `publisher`, received by `receiver`. */
async function latency(
  publisher: NodeProcess,
  receiver: RpcClient,
  samples: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const got = receipts([receiver], "lat", 1);
    const start = performance.now();
    await publisher.control.call("bench.one", { method: "lat" });
    const [at] = await got;
    out.push(at - start);
  }
  return out.sort((a, b) => a - b);
}

/** CPU seconds (user + system) a process used so far, from /proc (Linux). */
function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

const q = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const range = (xs: number[], digits = 0) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0].toFixed(digits)}-${s.at(-1)!.toFixed(digits)} (median ${
    q(s, 0.5).toFixed(digits)
  })`;
};
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

const redis = await RedisProcess.start();
const procs: NodeProcess[] = [];
const clients: RpcClient[] = [];
try {
  const solo = await spawnNode("solo");
  procs.push(solo);
  const nodes: NodeProcess[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await spawnNode(`n${i}`, redis.url));
  procs.push(...nodes);

  const soloClients = await clientsOn([solo], 3 * CLIENTS_PER_NODE);
  const clusterClients = await clientsOn(nodes, 3 * CLIENTS_PER_NODE);
  clients.push(...soloClients, ...clusterClients);
  const remote = clusterClients.filter((_, i) => i % 3 !== 0); // on n1 and n2
  console.log(
    `3 nodes + baseline, ${3 * CLIENTS_PER_NODE} clients each (msgpack), one process per node`,
  );

  for (const mode of MODE === "both" ? ["all", "topic"] : [MODE]) {
    const topic = mode === "topic" ? "room" : undefined;
    if (topic !== undefined) {
      for (const c of [...soloClients, ...clusterClients]) await c.call("bench.join", { topic });
    }
    // Warm-up of both paths, then rounds taken in turn so that load from
    // elsewhere on the machine falls on both alike.
    await throughput(solo, soloClients, soloClients, topic, 2_000);
    await throughput(nodes[0], clusterClients, remote, topic, 2_000);
    const single: number[] = [], cross: number[] = [], ratio: number[] = [];
    const pids: [string, number | "self"][] = [
      ["solo", solo.pid],
      ...nodes.map((n): [string, number] => [n.id, n.pid]),
      ["redis", redis.pid!],
      ["clients", "self"],
    ];
    const soloCpu = new Map<string, number>(), clusterCpu = new Map<string, number>();
    const account = async (into: Map<string, number>, run: () => Promise<number>) => {
      const before = pids.map(([, pid]) => cpuSeconds(pid));
      const rate = await run();
      pids.forEach(([name, pid], i) => {
        into.set(name, (into.get(name) ?? 0) + cpuSeconds(pid) - before[i]);
      });
      return rate;
    };
    for (let r = 0; r < ROUNDS; r++) {
      const s = await account(
        soloCpu,
        () => throughput(solo, soloClients, soloClients, topic, MESSAGES),
      );
      const c = await account(
        clusterCpu,
        () => throughput(nodes[0], clusterClients, remote, topic, MESSAGES),
      );
      single.push(s);
      cross.push(c);
      ratio.push(c / s);
    }
    const perK = (m: Map<string, number>) =>
      [...m].filter(([, v]) => v > 0.005).map(([k, v]) =>
        `${k} ${(v * 1e6 / (ROUNDS * MESSAGES)).toFixed(1)}`
      ).join(", ");
    console.log(`broadcast to ${mode === "all" ? "all" : "a topic"}, ${MESSAGES} messages`);
    console.log(`  single node:          ${range(single)} msgs/s`);
    console.log(`  3 nodes, other nodes: ${range(cross)} msgs/s`);
    console.log(`  ratio per round:      ${range(ratio, 2)}`);
    console.log(`  CPU µs per message, single-node rounds: ${perK(soloCpu)}`);
    console.log(`  CPU µs per message, cluster rounds:     ${perK(clusterCpu)}`);
  }

  const base = await latency(solo, soloClients[0], SAMPLES);
  const far = await latency(nodes[0], clusterClients[1], SAMPLES);
  const f = (x: number) => x.toFixed(3);
  console.log(`latency publish -> receipt, ${SAMPLES} samples, ms`);
  console.log(`  single node: p50 ${f(q(base, 0.5))} p99 ${f(q(base, 0.99))}`);
  console.log(`  other node:  p50 ${f(q(far, 0.5))} p99 ${f(q(far, 0.99))}`);
  console.log(
    `  added:       p50 ${f(q(far, 0.5) - q(base, 0.5))} p99 ${f(q(far, 0.99) - q(base, 0.99))}`,
  );

  // A topic with members on every node, SESSIONS in total.
  const before = await Promise.all(nodes.map((n) => n.control.call("bench.mem")));
  const startJoin = performance.now();
  const members = await clientsOn(nodes, SESSIONS, "big");
  clients.push(...members);
  const joinS = (performance.now() - startJoin) / 1000;
  const after = await Promise.all(nodes.map((n) => n.control.call("bench.mem"))) as {
    rss: number;
    heapUsed: number;
    sessions: number;
  }[];
  const fanout: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const got = receipts(members, "big", 1);
    const start = performance.now();
    await nodes[0].control.call("bench.one", { method: "big", topic: "big" });
    const times = await got;
    fanout.push(Math.max(...times) - start);
  }
  console.log(`topic with ${SESSIONS} members over 3 nodes (joined in ${joinS.toFixed(1)} s)`);
  console.log(`  one message to all of them: ${range(fanout, 1)} ms`);
  after.forEach((m, i) => {
    const b = before[i] as { rss: number; sessions: number };
    const added = m.sessions - b.sessions;
    console.log(
      `  ${nodes[i].id}: ${m.sessions} sessions, RSS ${mib(m.rss)} MiB (+${
        mib(m.rss - b.rss)
      }), heap ${mib(m.heapUsed)} MiB; ${
        ((m.rss - b.rss) / 1024 / added).toFixed(1)
      } KiB RSS per session`,
    );
  });
} finally {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  for (const p of procs) await p.stop();
  await redis.stop();
}
