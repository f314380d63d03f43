/**
 * streamwire: a custom binary protocol and RPC over long-lived connections,
 * built from WHATWG streams.
 *
 * - `@streamwire/streamwire/codec`: frames, checksums, bounded compression,
 *   typed messages and payload codecs as `TransformStream`s; no sockets.
 * - `@streamwire/streamwire/transport`: TCP, TLS, Unix and in-memory
 *   connections, handshake, sessions, heartbeats, broadcast and graceful
 *   shutdown; no methods.
 * - `@streamwire/streamwire/rpc`: methods, dispatcher, server and a
 *   reconnecting client with unary, batch and streaming calls.
 * - `@streamwire/streamwire/cli`: configuration and the server runner.
 *
 * This entry point re-exports all four layers.
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
export * from "./cli/mod.ts";
