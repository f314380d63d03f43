/**
 * Connections, sessions and the server: the layer between the codec and
 * RPC. It moves bytes over TCP, TLS, Unix sockets or memory behind one small
 * {@linkcode Connection} interface, and runs protocol sessions over them. It
 * knows bytes and sessions, not methods.
 *
 * @example Bytes over an in-memory pair
 * ```ts
 * import { memoryPair } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = memoryPair();
 * const writer = a.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close();
 * assert.equal(await new Response(b.readable).text(), "ping");
 * await Promise.all([a.closed, b.closed]);
 * ```
 *
 * @module
 */

export * from "./connection.ts";
export * from "./listen.ts";
export * from "./dial.ts";
export * from "./quic.ts";
export * from "./websocket_listen.ts";
export * from "./websocket_dial.ts";
export * from "./memory.ts";
export * from "./handshake.ts";
export * from "./handshake_stream.ts";
export * from "./session.ts";
export * from "./open_session.ts";
export * from "./server.ts";
