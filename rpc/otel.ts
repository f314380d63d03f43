/**
 * OpenTelemetry for calls: {@linkcode openTelemetry} is an interceptor that
 * makes a span per call, on either side, and records call durations, named
 * after the OpenTelemetry RPC semantic conventions. A client's span and the
 * server's span of the same call share one trace through the `traceparent`
 * extension (PROTOCOL.md 1.2).
 *
 * @module
 */

import {
  type Attributes,
  type Context as OtelContext,
  context,
  createTraceState,
  type Histogram,
  isSpanContextValid,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { Status } from "../codec/constants.ts";
import { statusName, StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import type { Call, Interceptor } from "./interceptor.ts";
import type { BatchOutcome } from "./peer.ts";
import { activeTraceparent, parseTraceparent } from "./trace.ts";

/**
 * An OpenTelemetry tracer provider: `@opentelemetry/api`'s `TracerProvider`,
 * as an SDK's `BasicTracerProvider` or the global one is. Typed by shape
 * here so that the public API names no type of another package.
 */
export interface TracerProviderLike {
  /** Returns a `Tracer` of `@opentelemetry/api`. */
  getTracer(name: string, version?: string): object;
}

/** An OpenTelemetry meter provider: `@opentelemetry/api`'s `MeterProvider`, by shape. */
export interface MeterProviderLike {
  /** Returns a `Meter` of `@opentelemetry/api`. */
  getMeter(name: string, version?: string): object;
}

/** Options of {@linkcode openTelemetry}. */
export interface OpenTelemetryOptions {
  /**
   * Where spans go.
   *
   * @default {trace.getTracerProvider(), the global one of `@opentelemetry/api`}
   */
  tracerProvider?: TracerProviderLike;
  /**
   * Where the call duration histograms go.
   *
   * @default {metrics.getMeterProvider(), the global one of `@opentelemetry/api`}
   */
  meterProvider?: MeterProviderLike;
  /**
   * The server calls go to, for `server.address` and `server.port` of the
   * calling side: the target given to `connect`, such as
   * `"tcp://db.internal:5555"`. The serving side reads its session's local address.
   */
  server?: string | URL;
}

/** The instrumentation scope's name. */
const SCOPE = "@streamwire/streamwire";
/** `rpc.system.name` of every span and data point. */
const SYSTEM = "streamwire";
/**
 * Histogram boundaries in seconds, those the RPC semantic conventions advise
 * for `rpc.*.call.duration`.
 */
const BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * Status codes that mark a served call's span as failed: the others are the
 * caller's doing (a bad argument, a missing permission), not the server's,
 * as the semantic conventions say of gRPC server spans.
 */
const SERVER_FAULTS: ReadonlySet<number> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

const STREAMS: ReadonlySet<string> = new Set(["server_stream", "client_stream", "bidi"]);

/** One side's instruments. */
interface Instruments {
  tracer: Tracer;
  duration: Histogram;
  kind: SpanKind;
}

/**
 * An interceptor that traces and measures every call it wraps, on the side
 * that makes it (a `CLIENT` span, histogram `rpc.client.call.duration`) and
 * on the side that serves it (a `SERVER` span, `rpc.server.call.duration`),
 * so one factory serves both lists.
 *
 * The calling side's span is a child of the active span (or of the call's
 * own `traceparent`, if one was set), and its `traceparent` is what the
 * call sends; the serving side's span is a child of the `traceparent`
 * received, and is the active span while the handler runs. Neither needs
 * {@linkcode traceContext} beside it.
 *
 * Spans are named after the method, with `rpc.system.name` `streamwire`,
 * `rpc.method`, `rpc.status_code` (the status name: `ok`,
 * `resource_exhausted`, …), `error.type` on failure, and `server.address`
 * and `server.port` where known. A stream is one span from open to its
 * end, with events `rpc.stream.start` and `rpc.stream.end`. A calling
 * side's `batch()` is one span named `batch` with `streamwire.batch.size`
 * and `streamwire.batch.failed`; the serving side makes one span per entry,
 * each a child of that span. Durations are in seconds, with the same
 * attributes except the span-only ones.
 *
 * A served call's span is marked as an error only for the codes that are
 * the server's fault (`unknown`, `deadline_exceeded`, `unimplemented`,
 * `internal`, `unavailable`, `data_loss`); a calling side's, for any failure.
 *
 * @param options Providers (the global ones by default) and the calling side's server.
 * @returns The interceptor.
 *
 * @example One trace across a client and a server
 * ```ts
 * import { connect, Methods, openTelemetry, RpcServer } from "@streamwire/streamwire/rpc";
 * import {
 *   BasicTracerProvider,
 *   InMemorySpanExporter,
 *   SimpleSpanProcessor,
 * } from "@opentelemetry/sdk-trace-base";
 * import assert from "node:assert/strict";
 *
 * const exporter = new InMemorySpanExporter();
 * const tracerProvider = new BasicTracerProvider({
 *   spanProcessors: [new SimpleSpanProcessor(exporter)],
 * });
 * const server = new RpcServer({
 *   methods: new Methods().unary("echo", (p) => p),
 *   interceptors: [openTelemetry({ tracerProvider })],
 * });
 * const addr = server.listen({ port: 0 });
 * const client = await connect(addr, {
 *   interceptors: [openTelemetry({ tracerProvider, server: addr })],
 * });
 * assert.equal(await client.call("echo", 1), 1);
 * await client.close();
 * await server.shutdown();
 *
 * const [served, made] = exporter.getFinishedSpans();
 * assert.equal(made.name, "echo");
 * assert.equal(served.spanContext().traceId, made.spanContext().traceId);
 * assert.equal(served.parentSpanContext?.spanId, made.spanContext().spanId);
 * assert.equal(served.attributes["rpc.status_code"], "ok");
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Interceptor {
  let sides: { caller: Instruments; callee: Instruments } | undefined;
  // Providers are looked up at the first call, so one registered after the
  // interceptor was made (as an SDK's start-up often is) is the one used.
  const instruments = () => {
    const tracers = (options.tracerProvider ?? trace.getTracerProvider()) as TracerProvider;
    const meters = (options.meterProvider ?? metrics.getMeterProvider()) as MeterProvider;
    const tracer = tracers.getTracer(SCOPE);
    const meter = meters.getMeter(SCOPE);
    const histogram = (side: string) =>
      meter.createHistogram(`rpc.${side}.call.duration`, {
        description: `Duration of calls ${
          side === "client" ? "made" : "served"
        }, until the last response`,
        unit: "s",
        advice: { explicitBucketBoundaries: BOUNDARIES },
      });
    return {
      caller: { tracer, duration: histogram("client"), kind: SpanKind.CLIENT },
      callee: { tracer, duration: histogram("server"), kind: SpanKind.SERVER },
    };
  };
  const target = options.server === undefined ? {} : addressAttributes(String(options.server));
  return (next) => (call) => {
    sides ??= instruments();
    const caller = call.side === "caller";
    const side = caller ? sides.caller : sides.callee;
    const attributes: Attributes = {
      "rpc.system.name": SYSTEM,
      ...(caller ? target : sessionAttributes(call.context?.session)),
    };
    if (call.kind !== "batch") attributes["rpc.method"] = call.method;
    const parent = parentContext(call, caller);
    const span = side.tracer.startSpan(
      call.kind === "batch" ? "batch" : call.method,
      { kind: side.kind, attributes },
      parent,
    );
    const stream = STREAMS.has(call.kind);
    if (stream) span.addEvent("rpc.stream.start");
    if (call.kind === "batch") {
      span.setAttribute("streamwire.batch.size", (call.params as unknown[]).length);
    }
    if (caller) {
      const spanContext = span.spanContext();
      if (isSpanContextValid(spanContext)) {
        const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
        call.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
        const state = spanContext.traceState?.serialize();
        if (state) call.tracestate = state;
      }
    }
    const started = performance.now();
    const done = (code: number, error?: unknown) => {
      const name = statusName(code);
      attributes["rpc.status_code"] = name;
      if (code !== Status.OK) attributes["error.type"] = name;
      side.duration.record((performance.now() - started) / 1000, attributes);
      span.setAttributes(attributes);
      if (stream) span.addEvent("rpc.stream.end", { "rpc.status_code": name });
      if (code !== Status.OK && (caller || SERVER_FAULTS.has(code))) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
      }
      span.end();
    };
    let result: Promise<unknown>;
    try {
      result = context.with(trace.setSpan(parent, span), next, undefined, call);
    } catch (error) {
      result = Promise.reject(error);
    }
    return result.then(
      (result) => {
        if (call.kind === "batch") batchOutcome(span, result as BatchOutcome[]);
        done(Status.OK);
        return result;
      },
      (error) => {
        done(error instanceof StreamwireError ? error.code : Status.UNKNOWN, error);
        throw error;
      },
    );
  };
}

/**
 * Whether a tracer provider is registered with `@opentelemetry/api`, as an
 * SDK's start-up or Deno's built-in export (`OTEL_DENO=true`) does;
 * `RpcServer` traces the calls it serves by default when one is.
 *
 * @returns True if the global tracer provider is not the no-op one.
 *
 * @example Usage
 * ```ts
 * import { hasGlobalTracerProvider } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof hasGlobalTracerProvider(), "boolean");
 * ```
 */
export function hasGlobalTracerProvider(): boolean {
  const global = trace.getTracerProvider();
  const noop = new ProxyTracerProvider().getDelegate();
  return (global instanceof ProxyTracerProvider ? global.getDelegate() : global) !== noop;
}

/** The context a call's span starts in: the caller's span, or this side's active one. */
function parentContext(call: Call, caller: boolean): OtelContext {
  const active = context.active();
  // A calling side whose traceparent is the active span's (traceContext()
  // set it) keeps the active context; one set otherwise becomes the parent.
  if (caller && (call.traceparent === undefined || call.traceparent === activeTraceparent())) {
    return active;
  }
  const parsed = parseTraceparent(call.traceparent);
  if (parsed === undefined) return caller ? active : trace.deleteSpan(active);
  return trace.setSpanContext(active, {
    traceId: parsed.traceId,
    spanId: parsed.parentId,
    traceFlags: parsed.flags,
    isRemote: true,
    traceState: call.tracestate ? createTraceState(call.tracestate) : undefined,
  });
}

function batchOutcome(span: Span, outcomes: BatchOutcome[]): void {
  let failed = 0;
  for (const outcome of outcomes) if (!outcome.ok) failed++;
  span.setAttribute("streamwire.batch.failed", failed);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const bySession = new WeakMap<Session, Attributes>();

/** `server.address` and `server.port` of a served call: its session's local address. */
function sessionAttributes(session: Session | undefined): Attributes {
  if (session === undefined) return {};
  let attributes = bySession.get(session);
  if (attributes === undefined) {
    attributes = addressAttributes(session.conn.localAddr);
    bySession.set(session, attributes);
  }
  return attributes;
}

/** `server.address` and `server.port` of an address in URL form (`tcp://host:port`, `unix:///path`). */
function addressAttributes(address: string): Attributes {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return {};
  }
  if (url.protocol === "unix:") return { "server.address": url.pathname };
  if (url.hostname === "" || url.protocol === "memory:") return {};
  const attributes: Attributes = { "server.address": url.hostname.replace(/^\[(.*)\]$/, "$1") };
  if (url.port !== "") attributes["server.port"] = Number(url.port);
  return attributes;
}
