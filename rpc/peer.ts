/**
 * Both ends of RPC over one session: the calls this side makes and the calls
 * it serves, unary, batch and streaming (PROTOCOL.md 3).
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { BatchResultEntry, CallEntry, Extensions, Message } from "../codec/message.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import { DEFAULT_WINDOW } from "../transport/handshake.ts";
import { type Session, SessionState } from "../transport/session.ts";
import { Deadlines } from "./_deadlines.ts";
import { CreditGate, Inbox } from "./_flow.ts";
import type { CallContext, MethodEntry, Methods } from "./methods.ts";

type Timer = ReturnType<typeof setTimeout>;

/** Bounds of an {@linkcode RpcPeer}; each stops one way a peer could exhaust this side. */
export interface PeerLimits {
  /**
   * Calls served at once on this connection (a batch or a stream counts as
   * one). Calls beyond it are answered `resource_exhausted` at once, never
   * queued.
   *
   * @default {100}
   */
  maxConcurrentCalls?: number;
  /**
   * Entries in one BATCH; a larger batch is refused whole with `resource_exhausted`.
   *
   * @default {1024}
   */
  maxBatchSize?: number;
  /**
   * Longest time a served call may run, in ms, applied when the caller sends
   * no deadline or a longer one.
   *
   * @default {300000}
   */
  maxDeadlineMs?: number;
  /**
   * Calls this side may have waiting for an answer; further calls fail with
   * `resource_exhausted` instead of growing the pending map.
   *
   * @default {10000}
   */
  maxPendingCalls?: number;
  /**
   * Timeout of calls made without one, in ms.
   *
   * @default {30000}
   */
  defaultTimeoutMs?: number;
}

/** Per-call options of the calling side. */
export interface CallOptions {
  /** Milliseconds to wait; sent to the callee as the `timeout` extension. */
  timeout?: number;
  /** Aborting it cancels the call (CANCEL is sent) and rejects with `cancelled`. */
  signal?: AbortSignal;
  /** Metadata entries; names are lowercase ASCII. */
  metadata?: Record<string, string> | readonly [string, string][];
  /** W3C `traceparent` to send; see {@linkcode RpcPeerOptions.traceparent}. */
  traceparent?: string;
  /** W3C `tracestate` to send. */
  tracestate?: string;
  /** Safe to retry after a lost connection even if it may have run. */
  idempotent?: boolean;
}

/** One call of a {@linkcode RpcPeer.batch}. */
export interface BatchCall {
  /** Method name. */
  method: string;
  /** Params, encoded with the session's codec. */
  params?: unknown;
}

/** Outcome of one batch entry. */
export type BatchOutcome =
  | { ok: true; value: unknown }
  | { ok: false; error: StreamwireError };

/** A NOTIFY or BROADCAST pushed by the peer. */
export interface Push {
  /** Frame type: NOTIFY or BROADCAST. */
  type: typeof FrameType.NOTIFY | typeof FrameType.BROADCAST;
  /** Method, or topic for a BROADCAST. */
  method: string;
  /** Decoded params. */
  params: unknown;
}

/** Options of {@linkcode RpcPeer}. */
export interface RpcPeerOptions extends PeerLimits {
  /** Methods this side serves; without it every call is `unimplemented`. */
  methods?: Methods;
  /** Receives NOTIFY for unregistered methods and every BROADCAST. */
  onPush?: (push: Push) => void;
  /** Supplies a `traceparent` for calls made without one, such as the active span's. */
  traceparent?: () => string | undefined;
}

/** A unary or batch call waiting for its answer; a reconnecting client may resend it. */
export interface PendingCall {
  /** Call id on the current connection. */
  id: number;
  /** REQUEST or BATCH as sent (params already encoded). */
  message: Message & { type: typeof FrameType.REQUEST | typeof FrameType.BATCH };
  /** The caller marked it safe to retry. */
  idempotent: boolean;
  /** Absolute deadline in ms since epoch. */
  deadline: number;
  /** Settles the caller's promise. */
  resolve(value: unknown): void;
  /** Fails the caller's promise. */
  reject(error: StreamwireError): void;
  /** Cancellation signal of the caller. */
  signal: AbortSignal | undefined;
  /** Codec the params in `message` are encoded with. */
  codec?: PayloadCodec["name"];
}

interface Pending extends PendingCall {
  /** Key in the deadline wheel, if the call has a timeout. */
  timer: number | undefined;
  timeout: number;
  onAbort: (() => void) | undefined;
}

interface StreamCall {
  inbox: Inbox<unknown>;
  gate: CreditGate;
  done: boolean;
  onEnd?: () => void;
}

interface Inbound {
  id: number;
  controller: AbortController | undefined;
  /** Key in the deadline wheel, once armed. */
  timer: number | undefined;
  inbox?: Inbox<unknown>;
  gate?: CreditGate;
  cancelled: boolean;
}

const DEFAULTS: Required<PeerLimits> = {
  maxConcurrentCalls: 100,
  maxBatchSize: 1024,
  maxDeadlineMs: 300_000,
  maxPendingCalls: 10_000,
  defaultTimeoutMs: 30_000,
};

const MAX_ID = 0xffffffff;
const EMPTY = new Uint8Array(0);
const NO_METADATA: readonly [string, string][] = Object.freeze([]);
const UTF8 = new TextDecoder();
const UTF8_OUT = new TextEncoder();

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}

function extOf(
  options: CallOptions,
  timeoutMs: number | undefined,
  traceparent: string | undefined,
): Extensions {
  const ext: Extensions = {};
  if (timeoutMs !== undefined) ext.timeoutMs = timeoutMs;
  if (traceparent !== undefined) ext.traceparent = traceparent;
  if (options.tracestate !== undefined) ext.tracestate = options.tracestate;
  if (options.metadata !== undefined) {
    ext.metadata = Array.isArray(options.metadata)
      ? [...options.metadata as [string, string][]]
      : Object.entries(options.metadata);
  }
  return ext;
}

/** The {@linkcode CallContext} of a served call; `signal` is created on first use. */
class Context implements CallContext {
  readonly method: string;
  readonly id: number;
  readonly params: unknown;
  readonly session: Session;
  readonly metadata: readonly [string, string][];
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly deadline: number;
  #inbound: Inbound;

  constructor(
    id: number,
    method: string,
    params: unknown,
    session: Session,
    ext: Extensions | undefined,
    deadline: number,
    inbound: Inbound,
  ) {
    this.method = method;
    this.id = id;
    this.params = params;
    this.session = session;
    this.metadata = ext?.metadata ?? NO_METADATA;
    this.traceparent = ext?.traceparent;
    this.tracestate = ext?.tracestate;
    this.deadline = deadline;
    this.#inbound = inbound;
  }

  get signal(): AbortSignal {
    // Most unary handlers never look at it.
    return (this.#inbound.controller ??= new AbortController()).signal;
  }
}

/**
 * RPC over one session, in both directions: client sessions use odd call
 * ids, server sessions even ones, so either side can call the other.
 *
 * Served calls run concurrently up to `maxConcurrentCalls`; their handlers
 * get an `AbortSignal` that fires on CANCEL, deadline or disconnect.
 * Streaming calls use credit flow control: DATA is sent only against CREDIT,
 * and CREDIT is granted as the receiving `ReadableStream` is read.
 *
 * @example Call the client back from a handler
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server: RpcServer = new RpcServer({
 *   methods: new Methods().unary("whoami", async (_params, ctx) => {
 *     // The server's peer of this session calls a method the client serves.
 *     return await server.peer(ctx.session)!.call("name");
 *   }),
 * });
 * const client = await connect(server.listen({ port: 0 }), {
 *   methods: new Methods().unary("name", () => "ada"),
 * });
 * assert.equal(await client.call("whoami"), "ada");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export class RpcPeer {
  /** The session underneath. */
  readonly session: Session;
  /** Payload codec negotiated for the session. */
  readonly codec: PayloadCodec;
  #methods: Methods | undefined;
  #limits: Required<PeerLimits>;
  #onPush: ((push: Push) => void) | undefined;
  #traceparent: (() => string | undefined) | undefined;
  #nextId: number;
  #pending = new Map<number, Pending>();
  #streams = new Map<number, StreamCall>();
  #inbound = new Map<number, Inbound>();
  #drainWaiters: (() => void)[] = [];
  /** NOTIFY handlers still running (their results are dropped); bounded with the calls. */
  #notifications = new Set<Inbound>();
  #closed: StreamwireError | undefined;
  #callDeadlines = new Deadlines<Pending>((call) =>
    this.#forget(call, Status.DEADLINE_EXCEEDED, `Call exceeded '${call.timeout}' ms`)
  );
  #inboundDeadlines = new Deadlines<Inbound>((inbound) => this.#inboundExpired(inbound));
  #defaultExt: Extensions;

  /**
   * Serves and makes calls over an established session.
   *
   * @param session A session after the handshake.
   * @param options Methods, limits and push handling.
   */
  constructor(session: Session, options: RpcPeerOptions = {}) {
    this.session = session;
    this.codec = getCodec(session.codec);
    this.#methods = options.methods;
    this.#onPush = options.onPush;
    this.#traceparent = options.traceparent;
    this.#limits = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof PeerLimits)[]) {
      if (options[key] !== undefined) this.#limits[key] = options[key]!;
    }
    this.#nextId = session.role === "client" ? 1 : 2;
    this.#defaultExt = Object.freeze({ timeoutMs: this.#limits.defaultTimeoutMs });
  }

  /** NOTIFYs dropped because `maxConcurrentCalls` handlers were already running. */
  droppedNotifications = 0;

  /** Calls being served. */
  get inflight(): number {
    return this.#inbound.size;
  }

  /** Calls made and not yet answered (unary, batch and streams). */
  get pending(): number {
    return this.#pending.size + this.#streams.size;
  }

  /** Streaming window of the session. */
  get window(): number {
    return this.session.settings?.window ?? DEFAULT_WINDOW;
  }

  /**
   * Feeds the call-level messages the session read.
   *
   * @param messages Messages of one read.
   */
  handle(messages: readonly Message[]): void {
    // One message per call from the session; kept as a list for callers with several.
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      switch (m.type) {
        case FrameType.REQUEST:
          this.#serveUnary(m.seq, m, m.ext);
          break;
        case FrameType.RESPONSE:
          this.#settle(m.seq, m.data);
          break;
        case FrameType.NOTIFY:
        case FrameType.BROADCAST:
          this.#push(m.type, m);
          break;
        case FrameType.BATCH:
          this.#serveBatch(m.seq, m.entries, m.ext);
          break;
        case FrameType.BATCH_RESULT:
          this.#settleBatch(m.seq, m.results);
          break;
        case FrameType.OPEN:
          this.#serveStream(m.seq, m, m.ext);
          break;
        case FrameType.DATA:
        case FrameType.END:
        case FrameType.CREDIT:
        case FrameType.CANCEL:
        case FrameType.ERROR:
          this.#streamFrame(m);
          break;
      }
    }
  }

  // -------------------------------------------------------------------------
  // Calling side

  /**
   * Calls a unary method.
   *
   * @param method Method name.
   * @param params Params, encoded with the session's codec.
   * @param options Timeout, cancellation, metadata.
   * @returns The decoded result.
   * @throws {StreamwireError} The callee's error, or `deadline_exceeded`,
   *   `cancelled`, `unavailable` (connection lost), `resource_exhausted` (too many pending).
   */
  call(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    const timeout = options.timeout ?? this.#limits.defaultTimeoutMs;
    let encoded: Uint8Array;
    try {
      encoded = this.#encode(params);
    } catch (error) {
      // Reject rather than throw: callers (and the auto-batcher) only handle rejections.
      return Promise.reject(StreamwireError.from(error));
    }
    return this.#request(
      { type: FrameType.REQUEST, seq: 0, method, params: encoded },
      timeout,
      options,
    );
  }

  /**
   * Sends a NOTIFY: the method runs, nothing is answered.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Metadata and trace context.
   */
  notify(method: string, params?: unknown, options: CallOptions = {}): void {
    this.#assertOpen();
    const traceparent = options.traceparent ?? this.#traceparent?.();
    const ext = options.metadata || traceparent || options.tracestate
      ? extOf(options, undefined, traceparent)
      : undefined;
    this.#emit({
      type: FrameType.NOTIFY,
      seq: 0,
      method,
      params: this.#encode(params),
      ...(ext ? { ext } : {}),
    });
  }

  /**
   * Sends several calls in one BATCH frame.
   *
   * @param calls The calls.
   * @param options Timeout (for the whole batch), cancellation, metadata.
   * @returns One outcome per call, in order; one failing entry does not fail the others.
   */
  async batch(calls: readonly BatchCall[], options: CallOptions = {}): Promise<BatchOutcome[]> {
    const entries: CallEntry[] = [];
    // Params the codec cannot encode fail their own entry, locally; the others are sent.
    const failed: BatchOutcome[] = [];
    for (let i = 0; i < calls.length; i++) {
      try {
        entries.push({ method: calls[i].method, params: this.#encode(calls[i].params) });
      } catch (error) {
        failed[i] = { ok: false, error: StreamwireError.from(error) };
      }
    }
    if (failed.length > 0 && entries.length === 0) return failed;
    const timeout = options.timeout ?? this.#limits.defaultTimeoutMs;
    const outcomes = await this.#request(
      { type: FrameType.BATCH, seq: 0, entries },
      timeout,
      options,
    ) as BatchOutcome[];
    if (failed.length === 0) return outcomes;
    let sent = 0;
    return calls.map((_, i) => failed[i] ?? outcomes[sent++]);
  }

  /**
   * Opens a server-streaming call.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Timeout (of the whole stream), cancellation, metadata.
   * @returns The results; reading grants CREDIT, `cancel()` sends CANCEL.
   */
  stream(method: string, params?: unknown, options: CallOptions = {}): ReadableStream<unknown> {
    const { readable, writable } = this.duplex(method, params, options);
    writable.close().catch(() => {});
    return readable;
  }

  /**
   * Opens a client-streaming call.
   *
   * @param method Method name.
   * @param input Values to send; read only as fast as the callee grants CREDIT.
   * @param options Timeout, cancellation, metadata; `params` of the OPEN are empty.
   * @returns The single result.
   */
  async upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options: CallOptions & { params?: unknown } = {},
  ): Promise<unknown> {
    const { readable, writable } = this.duplex(method, options.params, options);
    const source = input instanceof ReadableStream ? input : ReadableStream.from(input);
    // The callee answers with one value; keep only the last, so a callee
    // that streams instead cannot make this side buffer without bound.
    const reading = (async () => {
      let result: unknown;
      for await (const value of readable) result = value;
      return result;
    })();
    const [result] = await Promise.all([reading, source.pipeTo(writable)]);
    return result;
  }

  /**
   * Opens a bidirectional call.
   *
   * @param method Method name.
   * @param params Params of the OPEN.
   * @param options Timeout, cancellation, metadata.
   * @returns `readable` of results and `writable` of values to send
   *   (closing it sends END, aborting it CANCEL).
   */
  duplex(
    method: string,
    params?: unknown,
    options: CallOptions = {},
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    this.#assertOpen();
    if (options.signal?.aborted) {
      throw new StreamwireError(Status.CANCELLED, `Call '${method}' cancelled before it was sent`);
    }
    // Encoded before anything is registered: a failure leaves nothing behind.
    const encoded = this.#encode(params);
    const id = this.#allocateId();
    const timeout = Math.max(0, options.timeout ?? this.#limits.maxDeadlineMs);
    const traceparent = options.traceparent ?? this.#traceparent?.();
    const session = this.session;
    let timer: Timer | undefined;
    const finish = () => {
      call.done = true;
      this.#streams.delete(id);
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const cancel = (error: StreamwireError) => {
      if (call.done) return;
      session.send({ type: FrameType.CANCEL, seq: id, code: error.code, message: error.message });
      call.inbox.error(error);
      call.gate.close(error);
      finish();
    };
    const onAbort = () =>
      cancel(new StreamwireError(Status.CANCELLED, `Call '${method}' cancelled by the caller`));
    const call: StreamCall = {
      inbox: new Inbox<unknown>(
        this.window,
        (n) => session.send({ type: FrameType.CREDIT, seq: id, credit: n }),
        () => {
          if (!call.done) {
            cancel(new StreamwireError(Status.CANCELLED, "Stream cancelled by its reader"));
          }
        },
      ),
      gate: new CreditGate(this.window),
      done: false,
    };
    call.onEnd = finish;
    this.#streams.set(id, call);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout > 0) {
      timer = setTimeout(
        () =>
          cancel(
            new StreamwireError(
              Status.DEADLINE_EXCEEDED,
              `Call '${method}' exceeded '${timeout}' ms`,
            ),
          ),
        timeout,
      );
    }
    this.#emit({
      type: FrameType.OPEN,
      seq: id,
      method,
      params: encoded,
      ext: extOf(options, timeout, traceparent),
    });
    const codec = this.codec;
    const writable = new WritableStream<unknown>({
      write: async (value) => {
        if (call.done) throw new StreamwireError(Status.CANCELLED, `Call '${method}' is finished`);
        await call.gate.take();
        await session.write({ type: FrameType.DATA, seq: id, data: codec.encode(value) });
      },
      close: () => {
        if (!call.done) session.send({ type: FrameType.END, seq: id });
      },
      abort: (reason) => {
        cancel(
          reason instanceof StreamwireError
            ? reason
            : new StreamwireError(Status.CANCELLED, `Upload aborted: ${String(reason)}`),
        );
      },
    }, { highWaterMark: 1 });
    return { readable: call.inbox.readable, writable };
  }

  /**
   * Removes the unary and batch calls still waiting for an answer without
   * failing them, so a reconnecting client can resend or fail each one.
   *
   * @returns The calls, oldest first.
   */
  takePending(): PendingCall[] {
    const calls = [...this.#pending.values()];
    this.#callDeadlines.clear();
    for (const call of calls) {
      if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    }
    this.#pending.clear();
    return calls;
  }

  /**
   * Sends a call taken from another peer's {@linkcode RpcPeer.takePending} on
   * this one, with a new id and the time it has left.
   *
   * @param call The call.
   */
  resend(call: PendingCall): void {
    const remaining = call.deadline - Date.now();
    if (remaining <= 0) {
      call.reject(
        new StreamwireError(Status.DEADLINE_EXCEEDED, "Deadline passed before resending"),
      );
      return;
    }
    let message = call.message;
    if (call.codec !== undefined && call.codec !== this.codec.name) {
      // The new connection negotiated another codec: re-encode the params.
      const from = getCodec(call.codec);
      const recode = (bytes: Uint8Array) =>
        bytes.length === 0 ? bytes : this.codec.encode(from.decode(bytes));
      try {
        message = message.type === FrameType.REQUEST
          ? { ...message, params: recode(message.params) }
          : {
            ...message,
            entries: message.entries.map((e) => ({ ...e, params: recode(e.params) })),
          };
      } catch (error) {
        call.reject(StreamwireError.from(error));
        return;
      }
    }
    const ext = { ...message.ext, timeoutMs: remaining };
    this.#request({ ...message, ext }, remaining, { signal: call.signal }, call)
      .catch(() => {});
  }

  /**
   * Fails everything: pending calls reject, served calls are aborted,
   * streams error. Called when the session closes.
   *
   * @param reason The error to fail with.
   */
  close(reason: StreamwireError): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#callDeadlines.clear();
    for (const call of this.#pending.values()) {
      if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
      call.reject(reason);
    }
    this.#pending.clear();
    for (const call of this.#streams.values()) {
      call.inbox.error(reason);
      call.gate.close(reason);
      call.onEnd?.();
    }
    this.#streams.clear();
    for (const id of [...this.#inbound.keys()]) this.#abortInbound(id, reason);
    for (const notification of this.#notifications) notification.controller?.abort(reason);
    this.#notifications.clear();
    this.#inboundDeadlines.clear();
    this.#wakeDrain();
  }

  /**
   * Resolves once no served call is in flight.
   *
   * @returns A promise for the moment the last served call finishes.
   */
  drain(): Promise<void> {
    if (this.#inbound.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Sends, waiting for room in the session's queue when it is full: nothing is dropped while it lives. */
  #emit(message: Message): Promise<void> | undefined {
    if (this.session.send(message)) return undefined;
    return this.session.write(message);
  }

  #assertOpen(): void {
    if (this.#closed) throw this.#closed;
    if (this.session.state === SessionState.CLOSED) {
      throw new StreamwireError(Status.UNAVAILABLE, "Session is closed");
    }
  }

  #encode(value: unknown): Uint8Array {
    if (value === undefined) return EMPTY;
    return this.codec.encode(value);
  }

  #decode(bytes: Uint8Array): unknown {
    return bytes.length === 0 ? undefined : this.codec.decode(bytes);
  }

  #allocateId(): number {
    const limit = this.#pending.size + this.#streams.size;
    if (limit >= this.#limits.maxPendingCalls) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Too many calls in flight: maxPendingCalls '${this.#limits.maxPendingCalls}'`,
      );
    }
    // Ids keep this side's parity, wrap past 2^32-1, skip 0 and ids in flight.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id + 2 > MAX_ID ? (id & 1 ? 1 : 2) : id + 2;
      if (!this.#pending.has(id) && !this.#streams.has(id)) return id;
    }
  }

  #request(
    message: Message & { type: typeof FrameType.REQUEST | typeof FrameType.BATCH },
    timeout: number,
    options: CallOptions,
    previous?: PendingCall,
  ): Promise<unknown> {
    let id: number;
    try {
      this.#assertOpen();
      if (options.signal?.aborted) {
        throw new StreamwireError(Status.CANCELLED, "Call cancelled before it was sent");
      }
      id = this.#allocateId();
    } catch (error) {
      const e = StreamwireError.from(error);
      if (previous) {
        previous.reject(e);
        return Promise.resolve();
      }
      return Promise.reject(e);
    }
    // `message` is always a fresh object of the caller's: completed in place, not copied.
    message.seq = id;
    message.ext ??= this.#extOf(options, timeout);
    if (previous !== undefined) {
      this.#register(message, timeout, options, previous.resolve, previous.reject, previous);
      return Promise.resolve();
    }
    return new Promise<unknown>((resolve, reject) =>
      this.#register(message, timeout, options, resolve, reject, undefined)
    );
  }

  /** The extension block of a call; one shared object for calls with only the default timeout. */
  #extOf(options: CallOptions, timeout: number): Extensions {
    const traceparent = options.traceparent ?? this.#traceparent?.();
    if (
      traceparent === undefined && options.tracestate === undefined &&
      options.metadata === undefined
    ) {
      if (timeout === this.#limits.defaultTimeoutMs) return this.#defaultExt;
      return { timeoutMs: timeout };
    }
    return extOf(options, timeout, traceparent);
  }

  #register(
    message: PendingCall["message"],
    timeout: number,
    options: CallOptions,
    resolve: (value: unknown) => void,
    reject: (error: StreamwireError) => void,
    previous: PendingCall | undefined,
  ): void {
    const id = message.seq;
    const call: Pending = {
      id,
      message,
      idempotent: previous?.idempotent ?? options.idempotent ?? false,
      deadline: previous?.deadline ?? Date.now() + timeout,
      resolve,
      reject,
      signal: options.signal,
      codec: this.codec.name,
      timer: undefined,
      timeout,
      onAbort: undefined,
    };
    if (timeout > 0) call.timer = this.#callDeadlines.add(call, call.deadline);
    if (options.signal) {
      call.onAbort = () => this.#forget(call, Status.CANCELLED, "Call cancelled by the caller");
      options.signal.addEventListener("abort", call.onAbort, { once: true });
    }
    this.#pending.set(id, call);
    try {
      this.#emit(message)?.catch((error) => this.#take(id)?.reject(StreamwireError.from(error)));
    } catch (error) {
      this.#take(id)?.reject(StreamwireError.from(error));
    }
  }

  /** Fails a pending call locally and tells the callee to stop. */
  #forget(call: Pending, code: number, message: string): void {
    if (this.#pending.get(call.id) !== call) return;
    this.#pending.delete(call.id);
    if (call.timer !== undefined) this.#callDeadlines.remove(call, call.timer);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    this.session.send({ type: FrameType.CANCEL, seq: call.id, code, message });
    call.reject(new StreamwireError(code, message));
  }

  #take(id: number): Pending | undefined {
    const call = this.#pending.get(id);
    if (call === undefined) return undefined;
    this.#pending.delete(id);
    if (call.timer !== undefined) this.#callDeadlines.remove(call, call.timer);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    return call;
  }

  #settle(id: number, data: Uint8Array): void {
    const call = this.#take(id);
    if (call === undefined) return; // late answer to a call already timed out or cancelled
    try {
      call.resolve(this.#decode(data));
    } catch (error) {
      call.reject(StreamwireError.from(error));
    }
  }

  #settleBatch(id: number, results: BatchResultEntry[]): void {
    const call = this.#take(id);
    if (call === undefined) return;
    const outcomes: BatchOutcome[] = results.map((r) => {
      if (r.code !== 0) {
        return { ok: false, error: new StreamwireError(r.code, UTF8.decode(r.data)) };
      }
      try {
        return { ok: true, value: this.#decode(r.data) };
      } catch (error) {
        return { ok: false, error: StreamwireError.from(error) };
      }
    });
    call.resolve(outcomes);
  }

  #push(
    type: typeof FrameType.NOTIFY | typeof FrameType.BROADCAST,
    m: CallEntry & { ext?: Extensions },
  ): void {
    if (type === FrameType.NOTIFY) {
      const entry = this.#methods?.get(m.method);
      if (entry?.kind === "unary") {
        // At most once, never answered: failures stay on this side, and a
        // NOTIFY beyond the concurrency limit is dropped (and counted)
        // rather than started, so a flood cannot pile up handlers.
        if (this.#inbound.size + this.#notifications.size >= this.#limits.maxConcurrentCalls) {
          this.droppedNotifications++;
          return;
        }
        const detached: Inbound = {
          id: 0,
          controller: undefined,
          timer: undefined,
          cancelled: false,
        };
        try {
          const params = this.#decode(m.params);
          const result = entry.handler(params, this.#context(0, m.method, params, m.ext, detached));
          if (isThenable(result)) {
            this.#notifications.add(detached);
            Promise.resolve(result).catch(() => {}).finally(() =>
              this.#notifications.delete(detached)
            );
          }
        } catch { /* NOTIFY is never answered */ }
        return;
      }
    }
    if (this.#onPush === undefined) return;
    let params: unknown;
    try {
      params = this.#decode(m.params);
    } catch {
      return;
    }
    this.#onPush({ type, method: m.method, params });
  }

  // -------------------------------------------------------------------------
  // Serving side

  #context(
    id: number,
    method: string,
    params: unknown,
    ext: Extensions | undefined,
    inbound: Inbound,
  ): CallContext {
    const maxDeadline = this.#limits.maxDeadlineMs;
    const timeout = ext?.timeoutMs !== undefined && ext.timeoutMs > 0
      ? Math.min(ext.timeoutMs, maxDeadline)
      : maxDeadline;
    return new Context(id, method, params, this.session, ext, Date.now() + timeout, inbound);
  }

  /** Checks concurrency and GOAWAY; answers ERROR and returns false if the call may not start. */
  #admit(id: number): boolean {
    const goaway = this.session.goawayLastId;
    if (goaway !== undefined && id > goaway) {
      this.#fail(
        id,
        new StreamwireError(
          Status.UNAVAILABLE,
          `Shutting down: call '${id}' is above lastId '${goaway}'`,
        ),
      );
      return false;
    }
    if (this.#inbound.size >= this.#limits.maxConcurrentCalls) {
      this.#fail(
        id,
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Too many concurrent calls: maxConcurrentCalls '${this.#limits.maxConcurrentCalls}'`,
        ),
      );
      return false;
    }
    if (this.#inbound.has(id)) {
      this.#fail(
        id,
        new StreamwireError(Status.ALREADY_EXISTS, `Call id '${id}' is already in flight`),
      );
      return false;
    }
    return true;
  }

  #lookup(method: string, kind: "unary" | "stream"): MethodEntry {
    const entry = this.#methods?.get(method);
    if (entry === undefined) {
      throw new StreamwireError(Status.UNIMPLEMENTED, `Unknown method '${method}'`);
    }
    if ((kind === "unary") !== (entry.kind === "unary")) {
      throw new StreamwireError(
        Status.UNIMPLEMENTED,
        kind === "unary"
          ? `Method '${method}' is a ${entry.kind} method: open it with OPEN`
          : `Method '${method}' is unary: call it with REQUEST`,
      );
    }
    return entry;
  }

  #params(bytes: Uint8Array, method: string): unknown {
    try {
      return this.#decode(bytes);
    } catch (error) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Params of '${method}' do not decode as ${this.codec.name}: ${(error as Error).message}`,
      );
    }
  }

  #fail(id: number, error: StreamwireError): void {
    this.#emit({ type: FrameType.ERROR, seq: id, code: error.code, message: error.message })
      ?.catch(() => {});
  }

  #respond(id: number, value: unknown): void {
    let data: Uint8Array;
    try {
      data = this.#encode(value);
    } catch (error) {
      this.#fail(
        id,
        new StreamwireError(Status.INTERNAL, `Result not encodable: ${(error as Error).message}`),
      );
      return;
    }
    try {
      this.#emit({ type: FrameType.RESPONSE, seq: id, data })?.catch(() => {});
    } catch (error) {
      this.#fail(id, StreamwireError.from(error));
    }
  }

  #serveUnary(id: number, m: CallEntry, ext: Extensions | undefined): void {
    if (!this.#admit(id)) return;
    let result: unknown;
    let ctx: CallContext;
    const inbound: Inbound = { id, controller: undefined, timer: undefined, cancelled: false };
    try {
      const entry = this.#lookup(m.method, "unary");
      const params = this.#params(m.params, m.method);
      ctx = this.#context(id, m.method, params, ext, inbound);
      result = (entry.handler as (p: unknown, c: CallContext) => unknown)(params, ctx);
    } catch (error) {
      this.#fail(id, StreamwireError.from(error));
      return;
    }
    if (!isThenable(result)) {
      // Finished synchronously: nothing could cancel it, so it is never tracked.
      this.#respond(id, result);
      return;
    }
    // Tracked from here: CANCEL, the deadline and shutdown reach it, and it counts as in flight.
    this.#inbound.set(id, inbound);
    this.#armDeadline(id, inbound, ctx.deadline);
    Promise.resolve(result).then(
      (value) => {
        if (this.#finishInbound(id, inbound)) this.#respond(id, value);
      },
      (error) => {
        if (this.#finishInbound(id, inbound)) this.#fail(id, StreamwireError.from(error));
      },
    );
  }

  #armDeadline(_id: number, inbound: Inbound, deadline: number): void {
    inbound.timer = this.#inboundDeadlines.add(inbound, deadline);
  }

  #inboundExpired(inbound: Inbound): void {
    const id = inbound.id;
    if (this.#inbound.get(id) !== inbound) return;
    inbound.timer = undefined;
    const error = new StreamwireError(
      Status.DEADLINE_EXCEEDED,
      `Deadline of call '${id}' exceeded`,
    );
    this.#abortInbound(id, error);
    this.#fail(id, error);
  }

  /** Removes a served call; false if it was already cancelled or aborted (send nothing). */
  #finishInbound(id: number, inbound: Inbound): boolean {
    if (this.#inbound.get(id) === inbound) {
      this.#inbound.delete(id);
      if (inbound.timer !== undefined) this.#inboundDeadlines.remove(inbound, inbound.timer);
      if (this.#inbound.size === 0) this.#wakeDrain();
    }
    return !inbound.cancelled;
  }

  #abortInbound(id: number, reason: StreamwireError): void {
    const inbound = this.#inbound.get(id);
    if (inbound === undefined) return;
    inbound.cancelled = true;
    this.#inbound.delete(id);
    if (inbound.timer !== undefined) this.#inboundDeadlines.remove(inbound, inbound.timer);
    inbound.controller?.abort(reason);
    inbound.inbox?.error(reason);
    inbound.gate?.close(reason);
    if (this.#inbound.size === 0) this.#wakeDrain();
  }

  #wakeDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #serveBatch(id: number, entries: CallEntry[], ext: Extensions | undefined): void {
    if (!this.#admit(id)) return;
    if (entries.length > this.#limits.maxBatchSize) {
      this.#fail(
        id,
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Batch of '${entries.length}' entries exceeds maxBatchSize '${this.#limits.maxBatchSize}'`,
        ),
      );
      return;
    }
    const inbound: Inbound = { id, controller: undefined, timer: undefined, cancelled: false };
    this.#inbound.set(id, inbound);
    const results: BatchResultEntry[] = new Array(entries.length);
    const failure = (error: unknown): BatchResultEntry => {
      const e = StreamwireError.from(error);
      return { code: e.code === 0 ? Status.UNKNOWN : e.code, data: UTF8_OUT.encode(e.message) };
    };
    const success = (value: unknown): BatchResultEntry => {
      try {
        return { code: 0, data: this.#encode(value) };
      } catch (error) {
        return failure(
          new StreamwireError(Status.INTERNAL, `Result not encodable: ${(error as Error).message}`),
        );
      }
    };
    let deadline = 0;
    // Entries start in order; asynchronous ones run concurrently, at most
    // maxConcurrentCalls at a time; results keep request order.
    const limit = this.#limits.maxConcurrentCalls;
    let next = 0;
    let running = 0;
    let remaining = entries.length;
    const finish = () => {
      if (this.#finishInbound(id, inbound)) {
        try {
          this.#emit({ type: FrameType.BATCH_RESULT, seq: id, results })?.catch(() => {});
        } catch (error) {
          this.#fail(id, StreamwireError.from(error));
        }
      }
    };
    const start = (): void => {
      while (next < entries.length && running < limit && !inbound.cancelled) {
        const i = next++;
        const entry = entries[i];
        let result: unknown;
        try {
          const method = this.#lookup(entry.method, "unary");
          const params = this.#params(entry.params, entry.method);
          const ctx = this.#context(id, entry.method, params, ext, inbound);
          deadline ||= ctx.deadline;
          result = (method.handler as (p: unknown, c: CallContext) => unknown)(params, ctx);
        } catch (error) {
          results[i] = failure(error);
          remaining--;
          continue;
        }
        if (!isThenable(result)) {
          results[i] = success(result);
          remaining--;
          continue;
        }
        if (inbound.timer === undefined) this.#armDeadline(id, inbound, deadline);
        running++;
        Promise.resolve(result).then(
          (value) => (results[i] = success(value)),
          (error) => (results[i] = failure(error)),
        ).finally(() => {
          running--;
          remaining--;
          if (remaining === 0) finish();
          else start();
        });
      }
    };
    start();
    if (remaining === 0) finish();
  }

  #serveStream(id: number, m: CallEntry, ext: Extensions | undefined): void {
    if (!this.#admit(id)) return;
    const session = this.session;
    const inbound: Inbound = {
      id,
      controller: undefined,
      timer: undefined,
      cancelled: false,
      gate: new CreditGate(this.window),
    };
    let entry: MethodEntry;
    let ctx: CallContext;
    try {
      entry = this.#lookup(m.method, "stream");
      const params = this.#params(m.params, m.method);
      ctx = this.#context(id, m.method, params, ext, inbound);
    } catch (error) {
      this.#fail(id, StreamwireError.from(error));
      return;
    }
    if (entry.kind === "client_stream" || entry.kind === "bidi") {
      inbound.inbox = new Inbox<unknown>(
        this.window,
        (n) => session.send({ type: FrameType.CREDIT, seq: id, credit: n }),
        () => {},
      );
    }
    this.#inbound.set(id, inbound);
    this.#armDeadline(id, inbound, ctx.deadline);
    const run = async () => {
      switch (entry.kind) {
        case "server_stream":
          return await this.#produce(id, inbound, entry.handler(ctx.params, ctx));
        case "bidi":
          return await this.#produce(id, inbound, entry.handler(inbound.inbox!.readable, ctx));
        case "client_stream": {
          const value = await entry.handler(inbound.inbox!.readable, ctx);
          if (inbound.cancelled) return;
          await inbound.gate!.take();
          await session.write({ type: FrameType.DATA, seq: id, data: this.#encode(value) });
          return;
        }
      }
    };
    run().then(
      () => {
        if (this.#finishInbound(id, inbound)) session.send({ type: FrameType.END, seq: id });
      },
      (error) => {
        if (this.#finishInbound(id, inbound)) this.#fail(id, StreamwireError.from(error));
      },
    );
  }

  /** Sends each value of `output` as DATA, against credit, until done or cancelled. */
  async #produce(
    id: number,
    inbound: Inbound,
    output: ReadableStream<unknown> | AsyncIterable<unknown> | Iterable<unknown>,
  ): Promise<void> {
    const session = this.session;
    const gate = inbound.gate!;
    const codec = this.codec;
    // Credit and queue room are awaited only when exhausted, so a producer
    // with values at hand sends a whole window in one synchronous run and
    // the session writes it as one chunk.
    const send = (value: unknown): boolean => {
      if (inbound.cancelled) return false;
      const message = { type: FrameType.DATA, seq: id, data: codec.encode(value) } as const;
      if (!session.send(message)) session.write(message).catch(() => {});
      return true;
    };
    const room = async (): Promise<boolean> => {
      if (!gate.tryTake()) await gate.take();
      if (!session.writable) await session.ready();
      return !inbound.cancelled;
    };
    if (output instanceof ReadableStream) {
      const reader = output.getReader();
      try {
        while (!inbound.cancelled) {
          const { value, done } = await reader.read();
          if (done || !(await room()) || !send(value)) break;
        }
      } finally {
        if (inbound.cancelled) reader.cancel(inbound.controller?.signal.reason).catch(() => {});
        reader.releaseLock();
      }
      return;
    }
    if (!(Symbol.asyncIterator in output)) {
      const iterator = (output as Iterable<unknown>)[Symbol.iterator]();
      try {
        while (!inbound.cancelled) {
          const step = iterator.next();
          if (step.done) break;
          if (gate.credit <= 0 || !session.writable) {
            if (!(await room())) break;
          } else gate.tryTake();
          if (!send(step.value)) break;
        }
      } finally {
        if (inbound.cancelled) iterator.return?.();
      }
      return;
    }
    const iterator = (output as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    try {
      while (!inbound.cancelled) {
        const step = await iterator.next();
        if (step.done || !(await room()) || !send(step.value)) break;
      }
    } finally {
      if (inbound.cancelled) await iterator.return?.();
    }
  }

  #streamFrame(m: Message): void {
    const id = m.seq;
    const ours = (id & 1) === (this.session.role === "client" ? 1 : 0);
    if (ours) {
      // A call this side made.
      const call = this.#streams.get(id);
      if (call === undefined) {
        if (m.type === FrameType.ERROR) {
          const pending = this.#take(id);
          pending?.reject(new StreamwireError(m.code, m.message));
        }
        return;
      }
      switch (m.type) {
        case FrameType.DATA:
          try {
            call.inbox.push(this.#decode(m.data));
          } catch (error) {
            const e = StreamwireError.from(error);
            this.session.send({
              type: FrameType.CANCEL,
              seq: id,
              code: e.code,
              message: e.message,
            });
            call.inbox.error(e);
            call.gate.close(e);
            call.onEnd?.();
          }
          break;
        case FrameType.END:
          call.inbox.end();
          call.gate.close(new StreamwireError(Status.CANCELLED, "Call finished"));
          call.onEnd?.();
          break;
        case FrameType.CREDIT:
          call.gate.grant(m.credit);
          break;
        case FrameType.ERROR: {
          const e = new StreamwireError(m.code, m.message);
          call.inbox.error(e);
          call.gate.close(e);
          call.onEnd?.();
          break;
        }
      }
      return;
    }
    // A call this side serves.
    const inbound = this.#inbound.get(id);
    if (inbound === undefined) return; // late frame of a finished or cancelled call
    switch (m.type) {
      case FrameType.DATA:
        if (inbound.inbox === undefined) return;
        try {
          inbound.inbox.push(this.#decode(m.data));
        } catch (error) {
          const e = StreamwireError.from(error);
          this.#abortInbound(id, e);
          this.#fail(id, e);
        }
        break;
      case FrameType.END:
        inbound.inbox?.end();
        break;
      case FrameType.CREDIT:
        inbound.gate?.grant(m.credit);
        break;
      case FrameType.CANCEL:
      case FrameType.ERROR:
        // The caller stopped waiting: stop, and send nothing more for this id.
        this.#abortInbound(
          id,
          new StreamwireError(
            m.code === 0 ? Status.CANCELLED : m.code,
            m.message || "Cancelled by the caller",
          ),
        );
        break;
    }
  }
}
