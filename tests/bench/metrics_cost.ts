/**
 * What an `RpcServer`'s default call metrics cost in calls/s: pipelined
 * unary `echo` (64-byte params, 128 in flight) from one client process to
 * three servers in child processes over loopback TCP, the rows interleaved
 * round by round so that the machine's load falls on all of them alike:
 * `deno run -A tests/bench/metrics_cost.ts [rounds] [calls]` (defaults 7
 * and 200,000 calls per row and round).
 *
 * - raw: the framed echo of `_raw_echo_server.ts`, no RPC layer (baseline);
 * - metrics off: `RpcServer` with `metrics: false`;
 * - metrics on: the same server with its defaults (`_metrics_rpc_server.ts`).
 *
 * Each round runs the rows in a rotated order. Per row it prints calls/s
 * and the server's CPU per call (all its threads, from
 * `/proc/<pid>/task/<tid>/schedstat`); then, per round, metrics on against
 * metrics off of the same round, as the cost of the metrics in calls/s.
 * It prints figures and never fails on them.
 *
 * Figures: docs/PERFORMANCE.md, section "Telemetry".
 *
 * @module
 */

import { connect, type RpcClient } from "../../rpc/mod.ts";
import { type ServerProcess, spawnServer } from "./_child.ts";
import { PAYLOAD, pipeline, RawClient } from "./_clients.ts";

const ROUNDS = Number(Deno.args[0] ?? 7);
const CALLS = Number(Deno.args[1] ?? 200_000);
const IN_FLIGHT = 128;
const WARMUP = 20_000;

/** CPU time of every thread of a process so far, in ns. */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns;
}

interface Row {
  name: string;
  server: ServerProcess;
  run(calls: number): Promise<void>;
  rates: number[];
  cpu: number[];
}

function rpcRow(name: string, server: ServerProcess, client: RpcClient): Row {
  return {
    name,
    server,
    run: (calls) => pipeline(calls, IN_FLIGHT, () => client.call("echo", PAYLOAD)),
    rates: [],
    cpu: [],
  };
}

const [raw, off, on] = await Promise.all([
  spawnServer("_raw_echo_server.ts"),
  spawnServer("_metrics_rpc_server.ts", ["off"]),
  spawnServer("_metrics_rpc_server.ts", ["on"]),
]);
const rawClient = await RawClient.connect(raw.port);
const offClient = await connect(`tcp://127.0.0.1:${off.port}`, { reconnect: false });
const onClient = await connect(`tcp://127.0.0.1:${on.port}`, { reconnect: false });
const rows: Row[] = [
  {
    name: "raw echo (baseline)",
    server: raw,
    run: (calls) => rawClient.pipelined(calls, IN_FLIGHT),
    rates: [],
    cpu: [],
  },
  rpcRow("RpcServer, metrics off", off, offClient),
  rpcRow("RpcServer, metrics on (default)", on, onClient),
];

const range = (xs: number[], digits: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(digits);
  return `${f(sorted[0])}-${f(sorted.at(-1)!)} (median ${f(sorted[sorted.length >> 1])})`;
};

try {
  for (const row of rows) await row.run(WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    const order = rows.map((_, i) => rows[(i + round) % rows.length]);
    for (const row of order) {
      const cpu = cpuNs(row.server.pid);
      const started = performance.now();
      await row.run(CALLS);
      const ms = performance.now() - started;
      row.rates.push(CALLS / ms * 1000);
      row.cpu.push((cpuNs(row.server.pid) - cpu) / CALLS / 1000);
    }
    console.log(
      `round ${round + 1}: ` +
        rows.map((r) => `${r.name} ${Math.round(r.rates.at(-1)!)}/s`).join(", "),
    );
  }
  console.log(
    `\n${ROUNDS} rounds, ${CALLS} pipelined echo calls per row and round, ${IN_FLIGHT} in flight, 64 B params:`,
  );
  for (const row of rows) {
    console.log(
      `  ${row.name}: ${range(row.rates.map((r) => r / 1000), 1)} k calls/s, ` +
        `server CPU ${range(row.cpu, 2)} µs per call`,
    );
  }
  const [, offRow, onRow] = rows;
  const ratio = onRow.rates.map((r, i) => r / offRow.rates[i]);
  console.log(`  metrics on / off, calls/s, same round: ${range(ratio, 3)}`);
  console.log(
    `  metrics on - off, server CPU per call, same round: ${
      range(onRow.cpu.map((c, i) => (c - offRow.cpu[i]) * 1000), 0)
    } ns`,
  );
} finally {
  rawClient.close();
  await offClient.close();
  await onClient.close();
  await Promise.all([raw, off, on].map((s) => s.stop()));
}
