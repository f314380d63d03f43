/**
 * CPU per pipelined unary call on each side, with calls/s against the raw
 * framed echo, client and server in separate processes:
 * `deno run -A tests/bench/cpu_per_call.ts [calls] [rounds]` (200,000 calls,
 * 3 rounds by default).
 *
 * The load of `unary_bench.ts` (64-byte params, 128 in flight, one
 * connection over loopback TCP), with the time each process spends: the
 * client's from `process.cpuUsage()`, the server child's from
 * `/proc/<pid>/stat` (user and system, all threads). On a machine where the
 * two processes mostly take turns, calls/s is close to one over the sum of
 * the two, so this says which side to look at. Linux only (`/proc`).
 *
 * @module
 */

import process from "node:process";
import { connect } from "../../rpc/mod.ts";
import { spawnServer } from "./_child.ts";
import { PAYLOAD, pipeline, RawClient } from "./_clients.ts";

const IN_FLIGHT = 128;
/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time of a process so far, in µs. */
function processCpu(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / TICKS_PER_SECOND);
}

const calls = Number(Deno.args[0] ?? 200_000);
const rounds = Number(Deno.args[1] ?? 3);
if (!Number.isInteger(calls) || calls < 10_000 || !Number.isInteger(rounds) || rounds < 1) {
  console.error("usage: cpu_per_call.ts [calls >= 10000] [rounds >= 1]");
  Deno.exit(2);
}

const [rawServer, rpcServer] = await Promise.all([
  spawnServer("_raw_echo_server.ts"),
  spawnServer("_rpc_server.ts"),
]);
const raw = await RawClient.connect(rawServer.port);
const rpc = await connect(`tcp://127.0.0.1:${rpcServer.port}`, { reconnect: false });
try {
  // Warm up both: compiled code, grown buffers.
  await pipeline(50_000, IN_FLIGHT, () => rpc.call("echo", PAYLOAD));
  for (let i = 0; i < 20; i++) await raw.pipelined(10_000, IN_FLIGHT);
  for (let round = 0; round < rounds; round++) {
    let started = performance.now();
    for (let done = 0; done < calls; done += 10_000) await raw.pipelined(10_000, IN_FLIGHT);
    const rawRate = calls / ((performance.now() - started) / 1000);
    const client = process.cpuUsage();
    const server = processCpu(rpcServer.pid);
    started = performance.now();
    await pipeline(calls, IN_FLIGHT, () => rpc.call("echo", PAYLOAD));
    const rate = calls / ((performance.now() - started) / 1000);
    const clientCpu = process.cpuUsage(client);
    const serverCpu = processCpu(rpcServer.pid) - server;
    console.log(
      `raw ${(rawRate / 1e6).toFixed(2)} M rt/s, streamwire ${(rate / 1e3).toFixed(0)} k calls/s ` +
        `(${(100 * rate / rawRate).toFixed(1)}% of raw); CPU per call: client ${
          ((clientCpu.user + clientCpu.system) / calls).toFixed(2)
        } µs, server ${(serverCpu / calls).toFixed(2)} µs`,
    );
  }
} finally {
  rpc.close();
  raw.close();
  await Promise.all([rawServer.stop(), rpcServer.stop()]);
}
