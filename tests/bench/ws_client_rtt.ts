/**
 * Round trip of one streamwire call at a time over WebSocket, by params
 * size, with streamwire's own Deno client (`dial("ws://…")`, one write per
 * message, Nagle's algorithm off) and with Deno's global WebSocket
 * (`dialWebSocket`), the server in a child process (`_ws_rpc_server.ts`):
 * `deno run -A tests/bench/ws_client_rtt.ts`. The global client writes a
 * message over 1 KiB as two writes with Nagle on, so such calls wait for a
 * delayed ACK (tests/bench/ws_nagle.ts shows the same with JSON-RPC).
 *
 * @module
 */

import { connect, type RpcClient } from "../../rpc/mod.ts";
import { dialWebSocket } from "../../transport/mod.ts";
import { spawnServer } from "./_child.ts";

const SIZES = [64, 1024, 10 * 1024];

async function median(client: RpcClient, size: number, rounds: number): Promise<string> {
  const params = "x".repeat(size);
  for (let i = 0; i < Math.ceil(rounds / 10); i++) await client.call("echo", params);
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await client.call("echo", params);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return `${(times[times.length >> 1] * 1000).toFixed(0)} µs`;
}

const server = await spawnServer("_ws_rpc_server.ts");
const url = `ws://127.0.0.1:${server.port}/`;
const own = await connect(url, { reconnect: false });
const global = await connect(url, { reconnect: false, dial: () => dialWebSocket(url) });
try {
  console.log("median round trip of one echo call, 1 in flight:");
  for (const size of SIZES) {
    console.log(
      `  params ${size} B: own Deno client ${await median(own, size, 200)}, ` +
        `global WebSocket ${await median(global, size, size > 1000 ? 40 : 200)}`,
    );
  }
} finally {
  await own.close();
  await global.close();
  await server.stop();
}
