/**
 * RPC over the transport: a method registry, a dispatcher per session
 * ({@linkcode RpcPeer}), a server ({@linkcode RpcServer}) and a reconnecting
 * client ({@linkcode connect}) with unary, batch and streaming calls.
 * Streaming calls are `ReadableStream`s whose reads grant CREDIT, so a slow
 * consumer slows its producer end to end.
 *
 * @example Call a method
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const client = await connect(server.listen({ port: 0 }));
 * assert.deepEqual(await client.call("echo", { hello: "world" }), { hello: "world" });
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export * from "./methods.ts";
export * from "./peer.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./coalesce_stream.ts";
export * from "./demo.ts";
export * from "./trace.ts";
export * from "./admin.ts";
