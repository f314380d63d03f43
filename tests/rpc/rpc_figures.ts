/**
 * RPC benchmarks, side by side in one run, all over loopback TCP with one
 * connection and 64-byte params:
 *
 * 1. raw framed echo (Deno.listen, length-prefixed frames, manual read loop),
 *    1 and 128 frames in flight: the baseline;
 * 2. streamwire unary `echo` (msgpack), 1 and 128 calls in flight, next to
 *    sessions answering REQUEST without the RPC layer (transport + codec);
 * 3. a BATCH of 100 calls against 100 sequential awaited calls;
 * 4. server-stream throughput (`count`) per window, and a slow consumer;
 * 5. gRPC (grpc-js, generic service, Buffer passthrough): unary with 128 in
 *    flight and server-stream throughput.
 *
 * Client and server share one process and one JavaScript thread here. The
 * same comparisons with client and server in separate processes run under
 * `deno bench -A tests/bench/`; this script keeps what needs one process:
 * the sessions-only ceiling, the window sweep and the slow consumer.
 *
 * Run: `deno run -A tests/rpc/rpc_figures.ts` (about 20 s). Set
 * `BENCH_SECONDS` to change the length of each measurement (default 1).
 * Figures and findings: docs/PERFORMANCE.md, section RPC.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { FrameType } from "../../codec/constants.ts";
import { msgpackCodec } from "../../codec/payload_codec.ts";
import { dial } from "../../transport/dial.ts";
import { listen } from "../../transport/listen.ts";
import { openSession } from "../../transport/open_session.ts";
import { Server } from "../../transport/server.ts";
import type { Session } from "../../transport/session.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { DEFAULT_WINDOW } from "../../transport/handshake.ts";
import { RawClient } from "../bench/_clients.ts";
import { GRPC_HANDLERS, GRPC_SERVICE } from "../bench/_grpc_server.ts";
import { echo as rawEcho } from "../bench/_raw_echo_server.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "1");
const MEASURE_MS = SECONDS * 1000;
const WARMUP_MS = Math.min(300, MEASURE_MS / 3);
const PARAMS = new Uint8Array(64).map((_, i) => i);
const PIPELINE = 128;

interface Row {
  what: string;
  figure: string;
  ratio: string;
}
const rows: Row[] = [];

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
}

function row(what: string, figure: string, ratio = ""): void {
  rows.push({ what, figure, ratio });
  console.error(`  ${what}: ${figure}${ratio ? `  (${ratio})` : ""}`);
}

/** Runs `workers` loops of `op` for `ms` and returns completed ops per second. */
async function rate(workers: number, ms: number, op: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        await op();
        count++;
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function measure(workers: number, op: () => Promise<unknown>): Promise<number> {
  await rate(workers, WARMUP_MS, op);
  return await rate(workers, MEASURE_MS, op);
}

// ---------------------------------------------------------------------------
// (1) Raw framed echo: u32 length + payload, echoed by a manual read loop.

async function benchRaw(): Promise<{ pingPong: number; pipelined: number }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) rawEcho(conn).catch(() => {}).finally(() => conn.close());
  })();
  const client = await RawClient.connect(listener.addr.port, PARAMS);
  const pingPong = await measure(1, () => client.pingPong(1));
  // Rounds of 10,000 echoes, PIPELINE outstanding, for MEASURE_MS.
  const round = 10_000;
  await client.pipelined(round, PIPELINE);
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < MEASURE_MS) {
    await client.pipelined(round, PIPELINE);
    done += round;
  }
  const pipelined = done / ((performance.now() - started) / 1000);
  client.close();
  listener.close();
  await serving.catch(() => {});
  return { pingPong, pipelined };
}

// ---------------------------------------------------------------------------
// Sessions without the RPC layer: REQUEST answered by RESPONSE in the
// server's message handler. What transport and codec alone cost.

async function benchSessions(): Promise<number> {
  const server = new Server({
    handler: {
      message(session, m) {
        if (m.type === FrameType.REQUEST) {
          session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        }
      },
    },
  });
  const listener = listen({ port: 0 });
  const serving = server.serve(listener);
  const params = msgpackCodec.encode(PARAMS).slice();
  const waiting = new Map<number, () => void>();
  const session: Session = await openSession(await dial(listener.addr), {
    handler: {
      message(_s, m) {
        if (m.type !== FrameType.RESPONSE) return;
        msgpackCodec.decode(m.data);
        const resolve = waiting.get(m.seq)!;
        waiting.delete(m.seq);
        resolve();
      },
    },
  });
  let seq = 1;
  const call = () =>
    new Promise<void>((resolve) => {
      const id = seq;
      seq += 2;
      waiting.set(id, resolve);
      session.send({ type: FrameType.REQUEST, seq: id, method: "echo", params });
    });
  const rt = await measure(PIPELINE, call);
  await session.close();
  await server.shutdown();
  await serving;
  return rt;
}

// ---------------------------------------------------------------------------
// streamwire

function startServer(window?: number): { server: RpcServer; addr: string } {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    ...(window ? { window } : {}),
  });
  return { server, addr: server.listen({ port: 0 }) };
}

async function benchUnary(client: RpcClient): Promise<{ pingPong: number; pipelined: number }> {
  const pingPong = await measure(1, () => client.call("echo", PARAMS));
  const pipelined = await measure(PIPELINE, () => client.call("echo", PARAMS));
  return { pingPong, pipelined };
}

async function benchBatch(client: RpcClient): Promise<{ batch: number; sequential: number }> {
  const calls = Array.from({ length: 100 }, () => ({ method: "echo", params: PARAMS }));
  const batch = await measure(1, () => client.batch(calls));
  const sequential = await measure(1, async () => {
    for (let i = 0; i < 100; i++) await client.call("echo", PARAMS);
  });
  return { batch, sequential };
}

/** Reads `count` for `ms`; returns messages per second. */
async function streamRate(client: RpcClient, ms: number): Promise<number> {
  const reader = client.stream("count", 10_000_000).getReader();
  let n = 0;
  const started = performance.now();
  const end = started + ms;
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    // Checking the clock every read would cost more than a read.
    if ((++n & 1023) === 0 && performance.now() >= end) break;
  }
  const elapsed = performance.now() - started;
  await reader.cancel();
  return n / (elapsed / 1000);
}

async function benchStream(window: number | undefined): Promise<number> {
  const { server, addr } = startServer(window);
  const client = await connect(addr);
  try {
    await streamRate(client, WARMUP_MS);
    return await streamRate(client, MEASURE_MS);
  } finally {
    await client.close();
    await server.shutdown();
  }
}

/** A consumer taking one item per ms for `ms`: what the producer side holds meanwhile. */
async function benchSlowConsumer(ms: number) {
  const { server, addr } = startServer();
  const client = await connect(addr);
  const session = [...server.transport.sessions()][0];
  const reader = client.stream("count", 10_000_000).getReader();
  await reader.read();
  const before = Deno.memoryUsage();
  let maxQueued = 0, read = 1;
  const started = performance.now();
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= ms) break;
    // One item per elapsed ms: timers sleep 1-2 ms, so catch up after each.
    while (read < elapsed) {
      await reader.read();
      read++;
      maxQueued = Math.max(maxQueued, session.queuedBytes);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const after = Deno.memoryUsage();
  await reader.cancel();
  await client.close();
  await server.shutdown();
  return { before, after, maxQueued, read };
}

// ---------------------------------------------------------------------------
// (5) gRPC: a generic service, Buffers passed through unchanged.

async function benchGrpc(): Promise<{ unary: number; stream: number }> {
  const server = new grpc.Server();
  server.addService(GRPC_SERVICE, GRPC_HANDLERS);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  const Client = grpc.makeGenericClientConstructor(GRPC_SERVICE, "Echo");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as
    & grpc.Client
    & Record<string, CallableFunction>;
  const params = Buffer.from(PARAMS);
  const echo = () =>
    new Promise<Buffer>((resolve, reject) =>
      client.echo(
        params,
        (error: Error | null, value: Buffer) => error ? reject(error) : resolve(value),
      )
    );
  const unary = await measure(PIPELINE, echo);
  const streamOnce = (ms: number) =>
    new Promise<number>((resolve) => {
      const n = Buffer.alloc(4);
      n.writeUInt32BE(10_000_000);
      const call = client.count(n) as grpc.ClientReadableStream<Buffer>;
      let got = 0;
      const started = performance.now();
      const end = started + ms;
      call.on("data", () => {
        if ((++got & 1023) === 0 && performance.now() >= end) call.cancel();
      });
      call.on("error", () => resolve(got / ((performance.now() - started) / 1000)));
      call.on("end", () => resolve(got / ((performance.now() - started) / 1000)));
    });
  await streamOnce(WARMUP_MS);
  const stream = await streamOnce(MEASURE_MS);
  client.close();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  return { unary, stream };
}

// ---------------------------------------------------------------------------

/** Runs every measurement and prints the table (not under `deno bench`, which only imports it). */
async function main(): Promise<void> {
  const started = performance.now();
  console.error(`measuring ${SECONDS} s per figure (Deno ${Deno.version.deno})`);

  const raw = await benchRaw();
  row(
    "raw framed echo, 1 in flight",
    `${fmt(raw.pingPong)} rt/s (${fmt(1e6 / raw.pingPong)} µs)`,
    "baseline",
  );
  row(`raw framed echo, ${PIPELINE} in flight`, `${fmt(raw.pipelined)} rt/s`, "baseline");

  const sessions = await benchSessions();
  row(
    `sessions only (no RPC layer), ${PIPELINE} in flight`,
    `${fmt(sessions)} rt/s`,
    `${(sessions / raw.pipelined * 100).toFixed(0)}% of raw: the ceiling of transport + codec`,
  );

  const { server, addr } = startServer();
  const client = await connect(addr);
  const unary = await benchUnary(client);
  row(
    "streamwire echo, 1 in flight",
    `${fmt(unary.pingPong)} calls/s (${fmt(1e6 / unary.pingPong)} µs)`,
    `${(unary.pingPong / raw.pingPong * 100).toFixed(0)}% of raw; latency x${
      (raw.pingPong / unary.pingPong).toFixed(2)
    } raw (target <= x1.25)`,
  );
  row(
    `streamwire echo, ${PIPELINE} in flight`,
    `${fmt(unary.pipelined)} calls/s`,
    `${(unary.pipelined / raw.pipelined * 100).toFixed(0)}% of raw (target >= 30%); ${
      (unary.pipelined / sessions * 100).toFixed(0)
    }% of sessions only`,
  );
  const batch = await benchBatch(client);
  row(
    "100 calls as one BATCH",
    `${fmt(batch.batch * 100)} calls/s (${fmt(1e3 / batch.batch)} ms per 100)`,
    `x${(batch.batch / batch.sequential).toFixed(1)} vs 100 sequential (${
      fmt(1e3 / batch.sequential)
    } ms per 100; reference claims x16.7)`,
  );
  await client.close();
  await server.shutdown();

  const windows = [16, 64, 128, 256, undefined, 1024];
  const streamRates = new Map<number, number>();
  for (const window of windows) {
    const r = await benchStream(window);
    streamRates.set(window ?? DEFAULT_WINDOW, r);
    row(
      `server stream, window ${window ?? `${DEFAULT_WINDOW} (default)`}`,
      `${fmt(r)} msgs/s`,
      `x${(r / streamRates.get(16)!).toFixed(2)} vs window 16`,
    );
  }
  const best = [...streamRates].sort((a, b) => b[1] - a[1])[0];
  const million = [...streamRates].filter(([, r]) => r >= 1e6).map(([w]) => w);
  row(
    "server stream, best window",
    `${best[0]} (${fmt(best[1])} msgs/s)`,
    million.length
      ? `>= 1M msgs/s with windows ${million.join(", ")}`
      : "no window reaches 1M msgs/s",
  );

  const slow = await benchSlowConsumer(1000);
  const mb = (n: number) => (n / 1048576).toFixed(1);
  row(
    "slow consumer (1 item/ms for 1 s)",
    `${slow.read} read; producer queue max ${slow.maxQueued} B`,
    `heap ${mb(slow.before.heapUsed)}->${mb(slow.after.heapUsed)} MB, external ${
      mb(slow.before.external)
    }->${mb(slow.after.external)} MB, rss ${mb(slow.before.rss)}->${mb(slow.after.rss)} MB`,
  );

  const g = await benchGrpc();
  row(
    `grpc-js unary echo, ${PIPELINE} in flight`,
    `${fmt(g.unary)} calls/s`,
    `streamwire/gRPC x${(unary.pipelined / g.unary).toFixed(2)}`,
  );
  const sw64 = streamRates.get(DEFAULT_WINDOW)!;
  row(
    "grpc-js server stream",
    `${fmt(g.stream)} msgs/s`,
    `streamwire (window ${DEFAULT_WINDOW})/gRPC x${(sw64 / g.stream).toFixed(2)}`,
  );

  const w1 = Math.max(...rows.map((r) => r.what.length), 4);
  const w2 = Math.max(...rows.map((r) => r.figure.length), 6);
  console.log(`\n| ${"what".padEnd(w1)} | ${"figure".padEnd(w2)} | ratio |`);
  console.log(`| ${"-".repeat(w1)} | ${"-".repeat(w2)} | --- |`);
  for (const r of rows) {
    console.log(`| ${r.what.padEnd(w1)} | ${r.figure.padEnd(w2)} | ${r.ratio} |`);
  }
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

if (import.meta.main) await main();
