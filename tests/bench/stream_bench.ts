/**
 * Server-stream throughput with client and server in separate processes,
 * over loopback TCP: `deno bench -A tests/bench/stream_bench.ts`.
 *
 * Group "server stream", 100,000 messages per iteration: baseline a child
 * process pushing 100,000 frames of a u32 length and a 5-byte payload in
 * plain writes of 64 KiB, read here by a plain read loop that counts them;
 * then streamwire's demo `count` read through its `ReadableStream` (default
 * window), and grpc-js streaming 5-byte messages.
 * Messages per second = 100,000 / time per iteration.
 *
 * Figures: docs/PERFORMANCE.md, section RPC.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { connect } from "../../rpc/mod.ts";
import { spawnServer } from "./_child.ts";
import { RawClient } from "./_clients.ts";
import { GRPC_SERVICE } from "./_grpc_server.ts";

const MESSAGES = 100_000;

const [pushServer, rpcServer, grpcServer] = await Promise.all([
  spawnServer("_raw_push_server.ts"),
  spawnServer("_rpc_server.ts"),
  spawnServer("_grpc_server.ts"),
]);
const raw = await RawClient.connect(pushServer.port);
const rpc = await connect(`tcp://127.0.0.1:${rpcServer.port}`, { reconnect: false });
const GrpcClient = grpc.makeGenericClientConstructor(GRPC_SERVICE, "Echo");
const grpcClient = new GrpcClient(
  `127.0.0.1:${grpcServer.port}`,
  grpc.credentials.createInsecure(),
) as grpc.Client & Record<string, CallableFunction>;

// The gRPC client is left open: closing it sends GOAWAY, which can abort the
// node:http2 server in Deno 2.9.6 (nghttp2 assertion in find_stream_on_goaway_func).
globalThis.addEventListener("unload", () => {
  raw.close();
  rpc.close();
});

Deno.bench({
  group: "server stream",
  name: "raw frames pushed by a plain write loop, 100,000 messages",
  baseline: true,
  n: 100,
  warmup: 5,
  async fn() {
    await raw.pull(MESSAGES);
  },
});

Deno.bench({
  group: "server stream",
  name: "streamwire count, 100,000 messages",
  n: 20,
  warmup: 3,
  async fn() {
    const reader = rpc.stream("count", MESSAGES).getReader();
    let received = 0;
    while (!(await reader.read()).done) received++;
    if (received !== MESSAGES) throw new Error(`Received '${received}' of '${MESSAGES}'`);
  },
});

Deno.bench({
  group: "server stream",
  name: "grpc-js server stream, 100,000 messages",
  // Two measured iterations, the fewest deno bench runs: one takes seconds.
  n: 1,
  warmup: 0,
  async fn() {
    const request = Buffer.alloc(4);
    request.writeUInt32BE(MESSAGES);
    const call = grpcClient.count(request) as grpc.ClientReadableStream<Buffer>;
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      call.on("data", () => received++);
      call.on("error", reject);
      call.on("end", resolve);
    });
    if (received !== MESSAGES) throw new Error(`Received '${received}' of '${MESSAGES}'`);
  },
});
