// Engine figures of docs/CLUSTER.md: the same backplane calls on Redis and
// NATS (and the in-memory engine as a floor) in one run, servers started
// here on loopback like the tests do.
//
//   deno run -A tests/cluster/backplane_figures.ts
//
// For each engine, two backplanes (two connections, as two nodes have):
// - latency: one `append` at a time on the first, time until the second's
//   channel handler has it (publish to receive), p50 and p99 of SAMPLES;
// - throughput: MESSAGES appends with WINDOW in flight, until the second
//   received the last one, in entries per second;
// - read: one `read` of 500 entries (a resume page), p50 of 50.
// Environment: SAMPLES (2000), MESSAGES (20000), WINDOW (64), SIZE (bytes, 200).

import type { Backplane } from "../../cluster/backplane.ts";
import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { NatsBackplane } from "../../cluster/nats_backplane.ts";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { NatsProcess } from "./_nats.ts";
import { RedisProcess } from "./_redis.ts";

const env = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const SAMPLES = env("SAMPLES", 2_000);
const MESSAGES = env("MESSAGES", 20_000);
const WINDOW = env("WINDOW", 64);
const SIZE = env("SIZE", 200);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(name: string, make: () => Promise<Backplane>): Promise<void> {
  const [a, b] = [await make(), await make()];
  const payload = new Uint8Array(SIZE).fill(7);
  let onMessage: (() => void) | undefined;
  let received = 0;
  await b.subscribe("topic:fig", () => {
    received++;
    onMessage?.();
  });
  // Warm-up: the log's stream or key exists, connections are hot.
  for (let i = 0; i < 200; i++) await a.append("fig", "topic:fig", payload);
  const latencies: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = new Promise<void>((resolve) => (onMessage = resolve));
    const t0 = performance.now();
    await a.append("fig", "topic:fig", payload);
    await got;
    latencies.push((performance.now() - t0) * 1000);
  }
  onMessage = undefined;
  latencies.sort((x, y) => x - y);

  const target = received + MESSAGES;
  const done = new Promise<void>((resolve) => (onMessage = () => received >= target && resolve()));
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      next++;
      await a.append("fig", "topic:fig", payload);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await done;
  const rate = MESSAGES / ((performance.now() - t0) / 1000);

  const head = (await a.read("fig", 0, 1)).head;
  const reads: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    const r = await b.read("fig", head - 600, 500);
    if (r.entries.length === 0) throw new Error(`${name}: empty read`);
    reads.push((performance.now() - t) * 1000);
  }
  reads.sort((x, y) => x - y);
  console.log(
    `${name.padEnd(7)} append->receive p50 ${quantile(latencies, 0.5).toFixed(0)} us, ` +
      `p99 ${quantile(latencies, 0.99).toFixed(0)} us; ` +
      `${Math.round(rate)} appends/s (window ${WINDOW}); read of 500 p50 ${
        (quantile(reads, 0.5) / 1000).toFixed(1)
      } ms`,
  );
  await a.close();
  await b.close();
}

const hub = new MemoryHub();
await measure("memory", () => Promise.resolve(hub.connect()));
const redis = await RedisProcess.start();
try {
  await measure("redis", () => RedisBackplane.connect(redis.url, { prefix: "fig" }));
} finally {
  await redis.stop();
}
const nats = await NatsProcess.start();
try {
  await measure("nats", () => NatsBackplane.connect(nats.url, { prefix: "fig" }));
  await measure(
    "nats-mem",
    () => NatsBackplane.connect(nats.url, { prefix: "figm", storage: "memory" }),
  );
} finally {
  await nats.stop();
}
console.log(`size ${SIZE} B, ${SAMPLES} latency samples, ${MESSAGES} appends per throughput round`);
