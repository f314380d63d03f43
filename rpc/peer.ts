/**
 * Both ends of RPC over one session: the calls this side makes and the calls
 * it serves, unary, batch and streaming (PROTOCOL.md 3).
 *
 * @module
 */

import { FrameType } from "../codec/constants.ts";
import type { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import { DEFAULT_WINDOW } from "../transport/handshake.ts";
import type { Session } from "../transport/session.ts";
import { Caller, provideCallerAccess } from "./_caller.ts";
import { Dispatcher, type DispatcherOptions, logError } from "./_dispatcher.ts";
import { Outgoing } from "./_outgoing.ts";
import type { Interceptor } from "./interceptor.ts";
import type { Methods } from "./methods.ts";

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
   * Entries in one BATCH; a larger batch is refused whole with
   * `resource_exhausted`, from its declared count, before any entry is built.
   *
   * @default {1024}
   */
  maxBatchSize?: number;
  /**
   * Longest time a served unary call or batch may run, in ms, applied when
   * the caller sends no deadline or a longer one. Streams are not bounded
   * by it: a stream has a deadline only if its caller sends one.
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
   * Timeout of unary and batch calls made without one, in ms. Streams made
   * without one have none.
   *
   * @default {30000}
   */
  defaultTimeoutMs?: number;
}

/** Per-call options of the calling side. */
export interface CallOptions {
  /**
   * Milliseconds to wait, sent to the callee as the `timeout` extension;
   * it also bounds the wait for a connection. Unary calls and batches
   * default to `defaultTimeoutMs`, streams to no deadline.
   */
  timeout?: number;
  /** Aborting it cancels the call (CANCEL is sent) and rejects with `cancelled`. */
  signal?: AbortSignal;
  /** Metadata entries; names are lowercase ASCII. */
  metadata?: Record<string, string> | readonly [string, string][];
  /** W3C `traceparent` to send; otherwise an interceptor such as `traceContext()` may set one. */
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

/** Where an error reported to `onError` happened. */
export interface ErrorInfo {
  /** Method of the call, or the NOTIFY's or BROADCAST's. */
  method: string;
  /** The session of the call. */
  session: Session;
  /** Call id; 0 for NOTIFY and BROADCAST. */
  id: number;
}

/** Options of {@linkcode RpcPeer}. */
export interface RpcPeerOptions extends PeerLimits {
  /** Methods this side serves; without it every call is `unimplemented`. */
  methods?: Methods;
  /** Receives NOTIFY for unregistered methods and every BROADCAST; what it throws goes to `onError`. */
  onPush?: (push: Push) => void;
  /**
   * Wrap every call this peer makes and every call it serves, first one
   * outermost; `call.side` tells them apart (see {@linkcode Interceptor}).
   */
  interceptors?: Interceptor[];
  /**
   * Receives what failed on this side without reaching the other as it was:
   * errors thrown by handlers or interceptors that are not
   * `StreamwireError`s (the caller gets code 2 `unknown` and a generic
   * message, never the thrown message or its `code`), failures of NOTIFY
   * handlers, and whatever `onPush` throws.
   *
   * @default {logs with console.error}
   */
  onError?: (error: unknown, info: ErrorInfo) => void;
}

const DEFAULTS: Required<PeerLimits> = {
  maxConcurrentCalls: 100,
  maxBatchSize: 1024,
  maxDeadlineMs: 300_000,
  maxPendingCalls: 10_000,
  defaultTimeoutMs: 30_000,
};

/** The limits of `options`, defaults filled in. */
function limitsOf(options: PeerLimits): Required<PeerLimits> {
  const limits = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof PeerLimits)[]) {
    if (options[key] !== undefined) limits[key] = options[key]!;
  }
  return limits;
}

/** What peers made with the same options object share (a server passes one to all its peers). */
interface Shared {
  limits: Required<PeerLimits>;
  /** Dispatcher options for the default window. */
  dispatcher: DispatcherOptions;
}

const SHARED = new WeakMap<RpcPeerOptions, Shared>();

function dispatcherOptions(
  options: RpcPeerOptions,
  limits: Required<PeerLimits>,
  window: number,
): DispatcherOptions {
  return {
    methods: options.methods,
    interceptors: options.interceptors ?? [],
    onPush: options.onPush,
    onError: options.onError ?? logError,
    maxConcurrentCalls: limits.maxConcurrentCalls,
    maxBatchSize: limits.maxBatchSize,
    maxDeadlineMs: limits.maxDeadlineMs,
    window,
  };
}

/** Options read once per options object, not once per session. */
function sharedOf(options: RpcPeerOptions): Shared {
  let shared = SHARED.get(options);
  if (shared === undefined) {
    const limits = limitsOf(options);
    shared = { limits, dispatcher: dispatcherOptions(options, limits, DEFAULT_WINDOW) };
    SHARED.set(options, shared);
  }
  return shared;
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
  // The calling side is made on first use: most server peers never call.
  #caller: Caller | undefined;
  // Made with the first call served: an idle session holds neither side.
  #dispatcher: Dispatcher | undefined;
  #outgoing: Outgoing | undefined;
  #options: RpcPeerOptions;
  #limits: Required<PeerLimits>;
  #closedWith: StreamwireError | undefined;
  /** Low bit of the call ids this side allocates. */
  #parity: number;

  static {
    provideCallerAccess((peer) => peer.#callerNow());
  }

  /**
   * Serves and makes calls over an established session.
   *
   * @param session A session after the handshake.
   * @param options Methods, limits, interceptors and push handling.
   */
  constructor(session: Session, options: RpcPeerOptions = {}) {
    this.session = session;
    this.codec = getCodec(session.codec);
    this.#options = options;
    this.#limits = sharedOf(options).limits;
    this.#parity = session.role === "client" ? 1 : 0;
  }

  #serving(): Dispatcher {
    let dispatcher = this.#dispatcher;
    if (dispatcher === undefined) {
      const options = this.#options;
      const window = this.window;
      dispatcher = this.#dispatcher = new Dispatcher(
        this.session,
        this.codec,
        window === DEFAULT_WINDOW
          ? sharedOf(options).dispatcher
          : dispatcherOptions(options, this.#limits, window),
      );
      if (this.#closedWith !== undefined) dispatcher.close(this.#closedWith);
    }
    return dispatcher;
  }

  #callerNow(): Caller {
    let caller = this.#caller;
    if (caller === undefined) {
      caller = this.#caller = new Caller(this.session, this.codec, this.#limits, this.window);
      if (this.#closedWith !== undefined) caller.close(this.#closedWith);
    }
    return caller;
  }

  get #out(): Outgoing {
    if (this.#outgoing === undefined) {
      const caller = this.#callerNow();
      this.#outgoing = new Outgoing(
        this.#options.interceptors ?? [],
        this.#limits.defaultTimeoutMs,
        { caller: () => caller, current: () => caller },
      );
    }
    return this.#outgoing;
  }

  /** NOTIFYs dropped because `maxConcurrentCalls` handlers were already running. */
  get droppedNotifications(): number {
    return this.#dispatcher?.droppedNotifications ?? 0;
  }

  /** Calls being served. */
  get inflight(): number {
    return this.#dispatcher?.inflight ?? 0;
  }

  /** Calls made and not yet answered (unary, batch and streams). */
  get pending(): number {
    return this.#caller?.pending ?? 0;
  }

  /** Streaming window of the session. */
  get window(): number {
    return this.session.settings?.window ?? DEFAULT_WINDOW;
  }

  /**
   * Feeds one call-level message the session read. Never throws: a failure
   * goes to the call it concerns, or to `onError`.
   *
   * @param message A message, in wire order.
   */
  handle(message: Message): void {
    try {
      switch (message.type) {
        case FrameType.REQUEST:
          return this.#serving().request(message);
        case FrameType.BATCH:
          return this.#serving().batch(message);
        case FrameType.OPEN:
          return this.#serving().open(message);
        case FrameType.NOTIFY:
        case FrameType.BROADCAST:
          return this.#serving().push(message);
        case FrameType.RESPONSE:
        case FrameType.BATCH_RESULT:
          return this.#callerNow().frame(message);
        case FrameType.DATA:
        case FrameType.END:
        case FrameType.CREDIT:
        case FrameType.CANCEL:
        case FrameType.ERROR:
          // The id's parity tells a call this side made from one it serves.
          if ((message.seq & 1) === this.#parity) return this.#callerNow().frame(message);
          return this.#serving().frame(message);
      }
    } catch (error) {
      try {
        (this.#options.onError ?? logError)(error, {
          method: "",
          session: this.session,
          id: message.seq,
        });
      } catch { /* the connection and the other calls go on */ }
    }
  }

  /**
   * Calls a unary method.
   *
   * @param method Method name.
   * @param params Params, encoded with the session's codec.
   * @param options Timeout, cancellation, metadata.
   * @returns The decoded result.
   * @throws {StreamwireError} The callee's error, or `deadline_exceeded`,
   *   `cancelled`, `unavailable` (connection lost), `resource_exhausted`
   *   (too many pending, or the call is larger than maxFrame).
   */
  call(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    return this.#out.call(method, params, options);
  }

  /**
   * Sends a NOTIFY: the method runs, nothing is answered.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Metadata and trace context.
   * @returns Resolves once the NOTIFY is queued for sending.
   */
  notify(method: string, params?: unknown, options: CallOptions = {}): Promise<void> {
    return this.#out.notify(method, params, options);
  }

  /**
   * Sends several calls in one BATCH frame.
   *
   * @param calls The calls.
   * @param options Timeout (for the whole batch), cancellation, metadata.
   * @returns One outcome per call, in order; one failing entry does not fail the others.
   */
  batch(calls: readonly BatchCall[], options: CallOptions = {}): Promise<BatchOutcome[]> {
    return this.#out.batch(calls, options);
  }

  /**
   * Opens a server-streaming call. Failures to open it (such as params the
   * codec cannot encode) fail the returned stream.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Timeout (of the whole stream; none by default), cancellation, metadata.
   * @returns The results; reading grants CREDIT, `cancel()` sends CANCEL.
   */
  stream(method: string, params?: unknown, options: CallOptions = {}): ReadableStream<unknown> {
    return this.#out.stream(method, params, options);
  }

  /**
   * Opens a client-streaming call. The callee may answer before it has read
   * all the input: the answer stands and the rest is not sent.
   *
   * @param method Method name.
   * @param input Values to send; read only as fast as the callee grants CREDIT.
   * @param options Timeout (none by default), cancellation, metadata, and
   *   `params` of the OPEN.
   * @returns The single result.
   */
  upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options: CallOptions & { params?: unknown } = {},
  ): Promise<unknown> {
    return this.#out.upload(method, input, options);
  }

  /**
   * Opens a bidirectional call.
   *
   * @param method Method name.
   * @param params Params of the OPEN.
   * @param options Timeout (none by default), cancellation, metadata.
   * @returns `readable` of results and `writable` of values to send
   *   (closing it sends END, aborting it CANCEL).
   */
  duplex(
    method: string,
    params?: unknown,
    options: CallOptions = {},
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    return this.#out.duplex(method, params, options);
  }

  /**
   * Fails everything: pending calls reject, served calls are aborted,
   * streams error. Called when the session closes.
   *
   * @param reason The error to fail with.
   */
  close(reason: StreamwireError): void {
    this.#closedWith ??= reason;
    this.#caller?.close(reason);
    this.#dispatcher?.close(reason);
  }

  /**
   * Resolves once no served call is in flight.
   *
   * @returns A promise for the moment the last served call finishes.
   */
  drain(): Promise<void> {
    return this.#dispatcher?.drain() ?? Promise.resolve();
  }
}
