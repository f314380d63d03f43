/**
 * Unary calls with client and server in separate processes, over loopback
 * TCP, one connection, 64-byte params, against a raw framed echo in the same
 * run: `deno bench -A tests/bench/unary_bench.ts`.
 *
 * Every server runs in a child process (`_*_server.ts`, one core each for
 * client and server on a 2-core machine); this process is the client.
 *
 * - group "unary pipelined": 10,000 calls per iteration, 128 in flight;
 *   baseline the raw echo (u32 length + payload, plain read/write loops,
 *   all frames of a read answered in one write), then streamwire `echo`,
 *   JSON-RPC 2.0 over the global WebSocket, and grpc-js.
 * - group "unary ping-pong": 1,000 calls per iteration, one at a time:
 *   the same without gRPC; time per iteration / 1,000 is the latency.
 *
 * Figures: docs/PERFORMANCE.md, section RPC.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { connect } from "../../rpc/mod.ts";
import { spawnServer } from "./_child.ts";
import { PAYLOAD, PAYLOAD_TEXT, pipeline, RawClient, WsJsonRpcClient } from "./_clients.ts";
import { GRPC_SERVICE } from "./_grpc_server.ts";

const PIPELINED_CALLS = 10_000;
const IN_FLIGHT = 128;
const PING_PONG_CALLS = 1_000;

const [rawServer, rpcServer, wsServer, grpcServer] = await Promise.all([
  spawnServer("_raw_echo_server.ts"),
  spawnServer("_rpc_server.ts"),
  spawnServer("_ws_jsonrpc_server.ts"),
  spawnServer("_grpc_server.ts"),
]);
const raw = await RawClient.connect(rawServer.port);
const rpc = await connect(`tcp://127.0.0.1:${rpcServer.port}`, { reconnect: false });
const ws = await WsJsonRpcClient.open(wsServer.port);
const GrpcClient = grpc.makeGenericClientConstructor(GRPC_SERVICE, "Echo");
const grpcClient = new GrpcClient(
  `127.0.0.1:${grpcServer.port}`,
  grpc.credentials.createInsecure(),
) as grpc.Client & Record<string, CallableFunction>;
const grpcParams = Buffer.from(PAYLOAD);
const grpcEcho = () =>
  new Promise<Buffer>((resolve, reject) =>
    grpcClient.echo(
      grpcParams,
      (error: Error | null, value: Buffer) => error ? reject(error) : resolve(value),
    )
  );

// The gRPC client is left open: closing it sends GOAWAY, which can abort the
// node:http2 server in Deno 2.9.6 (nghttp2 assertion in find_stream_on_goaway_func).
globalThis.addEventListener("unload", () => {
  raw.close();
  ws.close();
  rpc.close();
});

Deno.bench({
  group: "unary pipelined",
  name: "raw framed echo, 10,000 round trips, 128 in flight",
  baseline: true,
  n: 100,
  warmup: 10,
  async fn() {
    await raw.pipelined(PIPELINED_CALLS, IN_FLIGHT);
  },
});

Deno.bench({
  group: "unary pipelined",
  name: "streamwire echo, 10,000 calls, 128 in flight",
  n: 20,
  warmup: 5,
  async fn() {
    await pipeline(PIPELINED_CALLS, IN_FLIGHT, () => rpc.call("echo", PAYLOAD));
  },
});

Deno.bench({
  group: "unary pipelined",
  name: "JSON-RPC over WebSocket, 10,000 calls, 128 in flight",
  n: 10,
  warmup: 3,
  async fn() {
    await pipeline(PIPELINED_CALLS, IN_FLIGHT, () => ws.call("echo", PAYLOAD_TEXT));
  },
});

Deno.bench({
  group: "unary pipelined",
  name: "grpc-js echo, 10,000 calls, 128 in flight",
  // Two measured iterations, the fewest deno bench runs: one takes seconds.
  n: 1,
  warmup: 0,
  async fn() {
    await pipeline(PIPELINED_CALLS, IN_FLIGHT, grpcEcho);
  },
});

Deno.bench({
  group: "unary ping-pong",
  name: "raw framed echo, 1,000 round trips, 1 in flight",
  baseline: true,
  n: 10,
  warmup: 2,
  async fn() {
    await raw.pingPong(PING_PONG_CALLS);
  },
});

Deno.bench({
  group: "unary ping-pong",
  name: "streamwire echo, 1,000 calls, 1 in flight",
  n: 10,
  warmup: 2,
  async fn() {
    await pipeline(PING_PONG_CALLS, 1, () => rpc.call("echo", PAYLOAD));
  },
});

Deno.bench({
  group: "unary ping-pong",
  name: "JSON-RPC over WebSocket, 1,000 calls, 1 in flight",
  n: 10,
  warmup: 2,
  async fn() {
    await pipeline(PING_PONG_CALLS, 1, () => ws.call("echo", PAYLOAD_TEXT));
  },
});
