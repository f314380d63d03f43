/**
 * Unary calls over WebSocket with client and server in separate processes,
 * one connection, the same 64-character string as params everywhere:
 * `deno bench -A tests/bench/ws_bench.ts`.
 *
 * - group "ws unary pipelined": 10,000 calls per iteration, 128 in flight;
 *   baseline JSON-RPC 2.0 over Deno's WebSocket (`_ws_jsonrpc_server.ts`,
 *   the global WebSocket as client), then streamwire over its WebSocket
 *   transport (`_ws_rpc_server.ts`) with streamwire's own Deno client and
 *   with the global WebSocket, and streamwire over TCP for reference.
 * - group "ws unary ping-pong": 1,000 calls, one at a time, the same rows.
 *
 * Figures: docs/PERFORMANCE.md, section RPC.
 *
 * @module
 */

import { connect } from "../../rpc/mod.ts";
import { dialWebSocket } from "../../transport/mod.ts";
import { spawnServer } from "./_child.ts";
import { PAYLOAD_TEXT, pipeline, WsJsonRpcClient } from "./_clients.ts";

const PIPELINED_CALLS = 10_000;
const IN_FLIGHT = 128;
const PING_PONG_CALLS = 1_000;

const [jsonServer, wsServer, tcpServer] = await Promise.all([
  spawnServer("_ws_jsonrpc_server.ts"),
  spawnServer("_ws_rpc_server.ts"),
  spawnServer("_rpc_server.ts"),
]);
const wsUrl = `ws://127.0.0.1:${wsServer.port}/`;
const json = await WsJsonRpcClient.open(jsonServer.port);
const own = await connect(wsUrl, { reconnect: false });
const global = await connect(wsUrl, { reconnect: false, dial: () => dialWebSocket(wsUrl) });
const tcp = await connect(`tcp://127.0.0.1:${tcpServer.port}`, { reconnect: false });

globalThis.addEventListener("unload", () => {
  json.close();
  own.close();
  global.close();
  tcp.close();
});

const rows = [
  { name: "JSON-RPC over Deno's WebSocket", call: () => json.call("echo", PAYLOAD_TEXT) },
  { name: "streamwire over ws, own Deno client", call: () => own.call("echo", PAYLOAD_TEXT) },
  { name: "streamwire over ws, global WebSocket", call: () => global.call("echo", PAYLOAD_TEXT) },
  { name: "streamwire over tcp", call: () => tcp.call("echo", PAYLOAD_TEXT) },
];

for (const [i, row] of rows.entries()) {
  Deno.bench({
    group: "ws unary pipelined",
    name: `${row.name}, 10,000 calls, 128 in flight`,
    baseline: i === 0,
    n: 20,
    warmup: 5,
    async fn() {
      await pipeline(PIPELINED_CALLS, IN_FLIGHT, row.call);
    },
  });
}

for (const [i, row] of rows.entries()) {
  Deno.bench({
    group: "ws unary ping-pong",
    name: `${row.name}, 1,000 calls, 1 in flight`,
    baseline: i === 0,
    n: 10,
    warmup: 2,
    async fn() {
      await pipeline(PING_PONG_CALLS, 1, row.call);
    },
  });
}
