/**
 * RPC over the transport: a method registry, a peer per session that makes
 * and serves calls ({@linkcode RpcPeer}), a server ({@linkcode RpcServer})
 * and a reconnecting client ({@linkcode connect}) with unary, batch and
 * streaming calls, wrapped by {@linkcode Interceptor}s. A typed contract
 * ({@linkcode defineContract}) names each method's kind and types once for
 * both the server and its clients. Streaming calls are
 * `ReadableStream`s whose reads grant CREDIT, so a slow consumer slows its
 * producer end to end.
 *
 * The admin HTTP API is its own entry point, `@streamwire/streamwire/admin`,
 * and the demo application `@streamwire/streamwire/demo`: importing this
 * one loads neither.
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
export * from "./contract.ts";
export * from "./typed_client.ts";
export * from "./reflection.ts";
export * from "./health.ts";
export * from "./logger.ts";
export * from "./interceptor.ts";
export * from "./peer.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./coalesce_stream.ts";
export * from "./trace.ts";
export * from "./otel.ts";
export * from "./metrics.ts";
export * from "./dispatcher_stream.ts";
