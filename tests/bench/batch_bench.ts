/**
 * One BATCH of 100 calls against the same 100 calls sent separately, with
 * client and server in separate processes, over loopback TCP, 64-byte
 * params: `deno bench -A tests/bench/batch_bench.ts`.
 *
 * Group "batch", 10 rounds of 100 `echo` calls (1,000 calls) per
 * iteration: baseline the 100 calls pipelined (all 100 in flight, each its
 * own REQUEST), then `client.batch()` of the 100, then the 100 awaited one
 * after another.
 *
 * Figures: docs/PERFORMANCE.md, section RPC.
 *
 * @module
 */

import { connect } from "../../rpc/mod.ts";
import { spawnServer } from "./_child.ts";
import { PAYLOAD, pipeline } from "./_clients.ts";

const ROUNDS = 10;
const CALLS = 100;

const rpcServer = await spawnServer("_rpc_server.ts");
const rpc = await connect(`tcp://127.0.0.1:${rpcServer.port}`, { reconnect: false });
const calls = Array.from({ length: CALLS }, () => ({ method: "echo", params: PAYLOAD }));

globalThis.addEventListener("unload", () => rpc.close());

Deno.bench({
  group: "batch",
  name: "100 calls pipelined, x10",
  baseline: true,
  n: 100,
  warmup: 5,
  async fn() {
    for (let i = 0; i < ROUNDS; i++) {
      await pipeline(CALLS, CALLS, () => rpc.call("echo", PAYLOAD));
    }
  },
});

Deno.bench({
  group: "batch",
  name: "one BATCH of 100 calls, x10",
  n: 100,
  warmup: 5,
  async fn() {
    for (let i = 0; i < ROUNDS; i++) {
      const outcomes = await rpc.batch(calls);
      if (outcomes.length !== CALLS || !outcomes.every((o) => o.ok)) {
        throw new Error(
          `BATCH gave '${outcomes.filter((o) => o.ok).length}' results of '${CALLS}'`,
        );
      }
    }
  },
});

Deno.bench({
  group: "batch",
  name: "100 calls one at a time, x10",
  n: 10,
  warmup: 2,
  async fn() {
    for (let i = 0; i < ROUNDS; i++) await pipeline(CALLS, 1, () => rpc.call("echo", PAYLOAD));
  },
});
