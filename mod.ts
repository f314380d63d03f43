/**
 * streamwire: a custom binary protocol and RPC over long-lived connections,
 * built from WHATWG streams.
 *
 * - `@streamwire/streamwire/codec`: frames, checksums, bounded compression,
 *   typed messages and payload codecs as `TransformStream`s; no sockets.
 * - `@streamwire/streamwire/transport`: TCP, TLS, Unix and in-memory
 *   connections, handshake, sessions, heartbeats, broadcast and graceful
 *   shutdown; no methods.
 * - `@streamwire/streamwire/rpc`: methods, interceptors, peers, server and
 *   a reconnecting client with unary, batch and streaming calls.
 *
 * This entry point re-exports those three layers and nothing else: the
 * other entry points are imported on their own, and loading the library
 * loads neither Hono nor the TOML parser.
 *
 * - `@streamwire/streamwire/admin`: the admin HTTP API (Hono).
 * - `@streamwire/streamwire/demo`: the demo application's methods.
 * - `@streamwire/streamwire/cli`: configuration (TOML) and the server runner.
 *
 * @example Serve and call
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({
 *   methods: new Methods().unary("add", ([a, b]: [number, number]) => a + b),
 * });
 * const client = await connect(server.listen({ port: 0 }));
 * assert.equal(await client.call("add", [2, 40]), 42);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export * from "./codec/mod.ts";
export * from "./transport/mod.ts";
export * from "./rpc/mod.ts";
