// The calling API shared by RpcPeer and RpcClient: each call goes through
// the interceptors, then to a Caller, at once (a peer) or once connected
// (a reconnecting client).

import { Caller, type OpenStream } from "./_caller.ts";
import { ignore } from "./_flow.ts";
import { intercept, traceSupplier } from "./_intercept.ts";
import { StreamPort } from "./_port.ts";
import type { Call, CallKind, Interceptor, Next } from "./interceptor.ts";
import type { BatchCall, BatchOutcome, CallOptions } from "./peer.ts";

/** Where calls go once intercepted. */
export interface Route {
  /**
   * The caller to send on: now, or once there is one.
   *
   * @param call The call, for its signal and method.
   * @param deadline When to stop waiting (ms since epoch), or Infinity.
   * @param signal A second reason to stop waiting, such as a stream's reader giving up.
   */
  caller(call: Call, deadline: number, signal?: AbortSignal): Caller | Promise<Caller>;
  /** The caller to send on now, if there is one: the common case, without a deadline to compute. */
  current?(): Caller | undefined;
  /** Sends a unary call some other way (auto-batching), or returns undefined. */
  unary?(call: Call, idempotent: boolean): Promise<unknown> | undefined;
}

/** A call made by this side, as its interceptors see it. */
class OutgoingCall implements Call {
  readonly side = "caller" as const;
  readonly kind: CallKind;
  readonly method: string;
  params: unknown;
  traceparent: string | undefined;
  tracestate: string | undefined;
  timeout: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly context = undefined;

  constructor(
    kind: CallKind,
    method: string,
    params: unknown,
    options: CallOptions,
    timeout: number | undefined,
  ) {
    this.kind = kind;
    this.method = method;
    this.params = params;
    const metadata = options.metadata;
    if (metadata !== undefined) {
      this.#metadata = Array.isArray(metadata)
        ? [...metadata as [string, string][]]
        : Object.entries(metadata);
    }
    this.traceparent = options.traceparent;
    this.tracestate = options.tracestate;
    this.timeout = timeout;
    this.signal = options.signal;
  }

  /** Made on first use: most calls carry none. */
  #metadata: [string, string][] | undefined;

  get metadata(): [string, string][] {
    return this.#metadata ??= [];
  }

  /** Entries in `metadata`, without making it. */
  get metadataCount(): number {
    return this.#metadata?.length ?? 0;
  }
}

/** Absolute deadline of a timeout in ms, Infinity for none. */
function deadlineOf(timeout: number | undefined, now: number): number {
  return timeout !== undefined && timeout > 0 ? now + timeout : Infinity;
}

/** The time left until `deadline`, or `timeout` itself if no time was spent waiting. */
function left(timeout: number | undefined, deadline: number): number | undefined {
  if (deadline === Infinity) return timeout;
  return Math.max(1, Math.ceil(deadline - Date.now()));
}

/** Makes calls: unary, batch, NOTIFY and the three kinds of streams. */
export class Outgoing {
  #interceptors: readonly Interceptor[];
  #defaultTimeoutMs: number;
  #route: Route;

  constructor(interceptors: readonly Interceptor[], defaultTimeoutMs: number, route: Route) {
    this.#interceptors = interceptors;
    this.#defaultTimeoutMs = defaultTimeoutMs;
    this.#route = route;
  }

  call(method: string, params: unknown, options: CallOptions): Promise<unknown> {
    const timeout = options.timeout ?? this.#defaultTimeoutMs;
    const idempotent = options.idempotent ?? false;
    const call = new OutgoingCall("unary", method, params, options, timeout);
    const interceptors = this.#interceptors;
    // No chain of closures per call for the default list or none (#run's inline case).
    const supplier = interceptors.length === 1 ? traceSupplier(interceptors[0]) : undefined;
    if (supplier === undefined && interceptors.length > 0) {
      return intercept(interceptors, call, (c) => this.#unary(c, idempotent));
    }
    try {
      if (supplier !== undefined && call.traceparent === undefined) call.traceparent = supplier();
      return this.#unary(call, idempotent);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  notify(method: string, params: unknown, options: CallOptions): Promise<void> {
    return this.#run(
      new OutgoingCall("notify", method, params, options, options.timeout),
      (c) => this.#on(c, c.timeout, (caller) => caller.notify(c)),
    ) as Promise<void>;
  }

  batch(calls: readonly BatchCall[], options: CallOptions): Promise<BatchOutcome[]> {
    const timeout = options.timeout ?? this.#defaultTimeoutMs;
    const idempotent = options.idempotent ?? false;
    return this.#run(
      new OutgoingCall("batch", "", calls, options, timeout),
      (c) => {
        const timeout = c.timeout ?? this.#defaultTimeoutMs;
        return this.#on(c, timeout, (caller, left) => caller.batch(c, idempotent, left!));
      },
    ) as Promise<BatchOutcome[]>;
  }

  stream(method: string, params: unknown, options: CallOptions): ReadableStream<unknown> {
    const port = new StreamPort();
    this.#run(
      new OutgoingCall("server_stream", method, params, options, options.timeout),
      (c) => this.#open(c, port, true),
    ).catch((error) => port.fail(error));
    return port.readable();
  }

  duplex(
    method: string,
    params: unknown,
    options: CallOptions,
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    const port = new StreamPort();
    this.#run(
      new OutgoingCall("bidi", method, params, options, options.timeout),
      (c) => this.#open(c, port, false),
    ).catch((error) => port.fail(error));
    return port.streams();
  }

  upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options: CallOptions & { params?: unknown },
  ): Promise<unknown> {
    return this.#run(
      new OutgoingCall("client_stream", method, options.params, options, options.timeout),
      (c) => this.#on(c, c.timeout, (caller, left) => upload(caller.open(c, left), input)),
    );
  }

  #run(call: Call, last: Next): Promise<unknown> {
    const interceptors = this.#interceptors;
    const supplier = interceptors.length === 1 ? traceSupplier(interceptors[0]) : undefined;
    if (supplier !== undefined) {
      // The default list, [traceContext()], done inline.
      try {
        if (call.traceparent === undefined) call.traceparent = supplier();
        return last(call);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (interceptors.length > 0) return intercept(interceptors, call, last);
    try {
      return last(call);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #unary(c: Call, idempotent: boolean): Promise<unknown> {
    const batched = this.#route.unary?.(c, idempotent);
    if (batched !== undefined) return batched;
    const timeout = c.timeout ?? this.#defaultTimeoutMs;
    // A ready connection: straight to it (Caller.unary rejects, never throws).
    const caller = this.#route.current?.();
    if (caller !== undefined) return caller.unary(c, idempotent, timeout);
    return this.#on(c, timeout, (caller, left) => caller.unary(c, idempotent, left!));
  }

  /** Runs `send` on the route's caller, now or once it has one, with the time left. */
  #on<T>(
    c: Call,
    timeout: number | undefined,
    send: (caller: Caller, left: number | undefined) => T | Promise<T>,
  ): Promise<T> {
    // A ready connection needs no deadline to wait against: the common case.
    let caller: Caller | Promise<Caller> | undefined = this.#route.current?.();
    let deadline = Infinity;
    if (caller === undefined) {
      deadline = deadlineOf(timeout, Date.now());
      caller = this.#route.caller(c, deadline);
    }
    if (caller instanceof Caller) {
      try {
        return Promise.resolve(send(caller, timeout));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Waiting for a connection: what is left of the timeout once there is one.
    return caller.then((caller) => send(caller, left(timeout, deadline)));
  }

  /** Opens a stream and attaches the port to it; resolves when the stream finishes. */
  #open(c: Call, port: StreamPort, serverStream: boolean): Promise<void> {
    const attach = (caller: Caller, timeout: number | undefined): Promise<void> => {
      const stream = caller.open(c, timeout);
      if (serverStream) stream.writable.close().catch(ignore);
      port.attach(stream.readable, serverStream ? undefined : stream.writable);
      return stream.finished;
    };
    const deadline = deadlineOf(c.timeout, Date.now());
    const caller = this.#route.caller(c, deadline, port.signal);
    if (caller instanceof Caller) return attach(caller, c.timeout);
    return caller.then((caller) => attach(caller, left(c.timeout, deadline)));
  }
}

/**
 * Sends `input` on a client-streaming call and resolves with the callee's
 * answer. The callee may answer before reading everything: the answer
 * stands, and the rest of the input is neither read nor sent.
 */
async function upload(
  stream: OpenStream,
  input: ReadableStream<unknown> | AsyncIterable<unknown>,
): Promise<unknown> {
  const source = input instanceof ReadableStream ? input : ReadableStream.from(input);
  const reader = source.getReader();
  const writer = stream.writable.getWriter();
  let failure: { error: unknown } | undefined;
  let finished = false;
  // Straight to the call rather than through the writable: a value queued
  // at once costs no promise of its own, so a window goes out in few writes.
  const pumping = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return stream.end();
      const sending = stream.send(value);
      if (sending !== undefined) await sending;
    }
  })().catch((error) => {
    // The input failed, or a value could not be sent: the call cannot complete.
    if (finished) return;
    failure = { error };
    writer.abort(error).catch(ignore);
  });
  try {
    // The callee answers with one value; keep only the last, so a callee
    // that streams instead cannot make this side buffer without bound.
    let result: unknown;
    for await (const value of stream.readable) result = value;
    return result;
  } catch (error) {
    throw failure !== undefined ? failure.error : error;
  } finally {
    finished = true;
    await reader.cancel().catch(ignore);
    await pumping;
  }
}
