/**
 * Interceptors: functions that wrap every call a peer makes or serves, in
 * the shape connect-es made familiar, `(next) => async (call) => next(call)`.
 *
 * @module
 */

import type { CallContext } from "./methods.ts";

/**
 * What a call is, from the side that sees it. On the calling side,
 * {@linkcode RpcPeer.stream} is `server_stream`, `upload` is
 * `client_stream`, `duplex` is `bidi` and a whole `batch()` is one call of
 * kind `batch`; on the serving side the kind is the method's, and each
 * entry of a received BATCH is a `unary` call of its own.
 */
export type CallKind = "unary" | "batch" | "server_stream" | "client_stream" | "bidi" | "notify";

/** A call as interceptors see it. */
export interface Call {
  /** `caller` when this side makes the call, `callee` when it serves it. */
  readonly side: "caller" | "callee";
  /** What kind of call it is. */
  readonly kind: CallKind;
  /** Method name; empty for a calling side's `batch`. */
  readonly method: string;
  /**
   * Params. Calling side: the value about to be encoded (a `batch` holds its
   * {@linkcode BatchCall} list), which an interceptor may replace. Serving
   * side: the decoded params the handler receives (`ctx.params` for streams).
   */
  params: unknown;
  /**
   * Request metadata in wire order. Calling side: sent in the extension
   * block, so entries pushed here reach the callee. Serving side: what the
   * caller sent; entries pushed here are seen by the handler in `ctx.metadata`.
   */
  readonly metadata: [string, string][];
  /** W3C `traceparent`: to send (calling side), or the caller's (serving side). */
  traceparent: string | undefined;
  /** W3C `tracestate`: to send, or the caller's. */
  tracestate: string | undefined;
  /**
   * Milliseconds the caller waits: sent as the `timeout` extension, or the
   * one received. Undefined for a stream without a deadline.
   */
  timeout: number | undefined;
  /**
   * Calling side: the caller's signal, if any. Serving side: the handler's
   * `ctx.signal`, which fires on CANCEL, deadline or disconnect.
   */
  readonly signal: AbortSignal | undefined;
  /** Serving side: the context the handler receives (session, deadline, id). */
  readonly context: CallContext | undefined;
}

/**
 * Runs the rest of the chain. Resolves with the result (a `batch` with its
 * {@linkcode BatchOutcome}s, `client_stream` with its one value), once a
 * stream has finished for the streaming kinds, and rejects with the error
 * the call failed with.
 */
export type Next = (call: Call) => Promise<unknown>;

/**
 * Wraps `next`. Interceptors apply in list order: the first one is the
 * outermost. One may read and change the call before `next`, reject it by
 * throwing (a {@linkcode StreamwireError} keeps its code), and see the
 * result, the error and the time `next` took.
 *
 * Each list applies to the calls its owner makes and to those it serves;
 * `call.side` tells them apart.
 *
 * @example A calling-side interceptor that adds metadata and measures calls
 * ```ts
 * import { connect, type Interceptor, Methods, RpcServer, traceContext } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const log: { call: string; ms: number; ok: boolean }[] = [];
 * const timing: Interceptor = (next) => async (call) => {
 *   if (call.side === "caller") call.metadata.push(["x-client", "docs"]);
 *   const started = performance.now();
 *   let ok = false;
 *   try {
 *     const result = await next(call);
 *     ok = true;
 *     return result;
 *   } finally {
 *     log.push({ call: `${call.kind} ${call.method}`, ms: performance.now() - started, ok });
 *   }
 * };
 * const server = new RpcServer({
 *   methods: new Methods().unary("who", (_p, ctx) => ctx.metadata),
 * });
 * // Listing interceptors replaces the default list: keep traceContext() to
 * // go on sending the active span's traceparent.
 * const client = await connect(server.listen({ port: 0 }), {
 *   interceptors: [traceContext(), timing],
 * });
 * assert.deepEqual(await client.call("who"), [["x-client", "docs"]]);
 * assert.equal(log[0].call, "unary who");
 * assert.ok(log[0].ok && log[0].ms >= 0);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @example A serving-side interceptor that refuses calls without a token
 * ```ts
 * import { connect, type Interceptor, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import { Status, StreamwireError } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const auth: Interceptor = (next) => (call) => {
 *   if (call.side !== "callee") return next(call);
 *   const token = call.metadata.find(([name]) => name === "authorization")?.[1];
 *   if (token !== "Bearer s3cret") {
 *     throw new StreamwireError(Status.UNAUTHENTICATED, `No valid token for '${call.method}'`);
 *   }
 *   call.metadata.push(["x-user", "ada"]); // the handler sees it in ctx.metadata
 *   return next(call);
 * };
 * const server = new RpcServer({
 *   methods: new Methods().unary("me", (_p, ctx) => ctx.metadata.find(([n]) => n === "x-user")?.[1]),
 *   interceptors: [auth],
 * });
 * const client = await connect(server.listen({ port: 0 }));
 * await assert.rejects(client.call("me"), { codeName: "unauthenticated" });
 * const metadata = { authorization: "Bearer s3cret" };
 * assert.equal(await client.call("me", undefined, { metadata }), "ada");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export type Interceptor = (next: Next) => Next;
