/**
 * W3C Trace Context for calls (PROTOCOL.md 1.2): the {@linkcode traceContext}
 * interceptor sends the active OpenTelemetry span's `traceparent` with each
 * call (clients include it by default), and a served call finds its
 * caller's in `ctx.traceparent` to continue the trace.
 *
 * @module
 */

import { isSpanContextValid, trace } from "@opentelemetry/api";
import type { Interceptor } from "./interceptor.ts";
import { TRACE_SUPPLIER } from "./_intercept.ts";

/** The fields of a W3C `traceparent` header. */
export interface TraceParent {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits: the caller's span. */
  parentId: string;
  /** Trace flags; bit 0 is "sampled". */
  flags: number;
}

const PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The `traceparent` of the active OpenTelemetry span, if there is one. With
 * no OpenTelemetry SDK registered there never is, and nothing is sent.
 *
 * @returns A `traceparent` header value, or undefined.
 *
 * @example Usage
 * ```ts
 * import { activeTraceparent } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(activeTraceparent(), undefined); // no SDK, no active span
 * ```
 */
export function activeTraceparent(): string | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return undefined;
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/**
 * Parses a version-00 `traceparent`; all-zero ids are invalid (W3C Trace Context 3.2).
 *
 * @param header The header value.
 * @returns Its fields, or undefined if malformed.
 *
 * @example Usage
 * ```ts
 * import { parseTraceparent } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const parsed = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * assert.equal(parsed?.parentId, "00f067aa0ba902b7");
 * assert.equal(parseTraceparent("garbage"), undefined);
 * ```
 */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  const match = header === undefined ? null : PATTERN.exec(header);
  if (match === null) return undefined;
  const [, traceId, parentId, flags] = match;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { traceId, parentId, flags: parseInt(flags, 16) };
}

/**
 * A `traceparent` for a new span in the same trace as `parent`, for calls a
 * handler makes while serving a call: the trace continues across services.
 *
 * @param parent The caller's `traceparent`.
 * @returns A header with the same trace id and flags and a new span id, or
 *   undefined if `parent` is malformed.
 *
 * @example Usage
 * ```ts
 * import { childTraceparent, parseTraceparent } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
 * const child = parseTraceparent(childTraceparent(parent));
 * assert.equal(child?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
 * assert.notEqual(child?.parentId, "00f067aa0ba902b7");
 * ```
 */
export function childTraceparent(parent: string | undefined): string | undefined {
  const parsed = parseTraceparent(parent);
  if (parsed === undefined) return undefined;
  const id = new Uint8Array(8);
  do crypto.getRandomValues(id); while (id.every((b) => b === 0));
  const spanId = Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("");
  return `00-${parsed.traceId}-${spanId}-${parsed.flags.toString(16).padStart(2, "0")}`;
}

/**
 * An interceptor that gives each call this side makes a `traceparent`, when
 * it has none of its own: by default the active OpenTelemetry span's, so a
 * trace continues across services. Calls it serves are left as they are:
 * their handlers read the caller's in `ctx.traceparent`.
 *
 * A client ({@linkcode connect}) uses `[traceContext()]` when given no
 * `interceptors`; a list of its own replaces that default, so include
 * `traceContext()` in it to keep propagating, or leave it out to send none.
 *
 * @param supplier Returns the `traceparent` of the moment a call is made.
 * @returns The interceptor.
 *
 * @example Send a fixed traceparent, and read it on the serving side
 * ```ts
 * import { connect, Methods, RpcServer, traceContext } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
 * const server = new RpcServer({
 *   methods: new Methods().unary("trace", (_p, ctx) => ctx.traceparent),
 * });
 * const client = await connect(server.listen({ port: 0 }), {
 *   interceptors: [traceContext(() => tp)],
 * });
 * assert.equal(await client.call("trace"), tp);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export function traceContext(
  supplier: () => string | undefined = activeTraceparent,
): Interceptor {
  const interceptor: Interceptor = (next) => (call) => {
    if (call.side === "caller" && call.traceparent === undefined) {
      call.traceparent = supplier();
    }
    return next(call);
  };
  return Object.defineProperty(interceptor, TRACE_SUPPLIER, { value: supplier });
}
