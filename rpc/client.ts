/**
 * The RPC client: a connection state machine with reconnection, a safe
 * retry policy, auto-batching and server push.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { dial, type DialOptions } from "../transport/dial.ts";
import type { Connection } from "../transport/connection.ts";
import type { HelloOptions } from "../transport/handshake.ts";
import { openSession } from "../transport/open_session.ts";
import type { Session, SessionLimits } from "../transport/session.ts";
import { CoalesceStream } from "./coalesce_stream.ts";
import type { Methods } from "./methods.ts";
import { activeTraceparent } from "./trace.ts";
import {
  type BatchCall,
  type BatchOutcome,
  type CallOptions,
  type PeerLimits,
  type PendingCall,
  type Push,
  RpcPeer,
} from "./peer.ts";

type Timer = ReturnType<typeof setTimeout>;

/** States of a client connection (the seed protocol's client state machine). */
export const ClientState = {
  /** No connection; calls wait for the next one or fail. */
  DISCONNECTED: "disconnected",
  /** Opening the socket. */
  CONNECTING: "connecting",
  /** Socket open, handshake not started. */
  CONNECTED: "connected",
  /** HELLO sent, waiting for HELLO_ACK. */
  AUTHENTICATING: "authenticating",
  /** Handshake done: calls flow. */
  READY: "ready",
  /** Closing on request; terminal once closed. */
  CLOSING: "closing",
} as const;

/** A client state. */
export type ClientState = typeof ClientState[keyof typeof ClientState];

/** Reconnection with exponential backoff and full jitter. */
export interface ReconnectOptions {
  /** First delay in ms. @default {100} */
  initialDelayMs?: number;
  /** Growth factor per attempt. @default {2} */
  factor?: number;
  /** Largest delay in ms. @default {30000} */
  maxDelayMs?: number;
  /** Attempts after a connection is lost (or the first one fails) before giving up. @default {5} */
  maxRetries?: number;
}

/** Options of {@linkcode connect}. */
export interface ClientOptions extends HelloOptions, PeerLimits, SessionLimits {
  /** Methods the server may call on this client (even call ids). */
  methods?: Methods;
  /** Reconnection policy, or `false` to fail everything when the connection drops. */
  reconnect?: ReconnectOptions | false;
  /**
   * Coalesce unary calls made in the same event-loop turn into one BATCH.
   * Calls with a signal or metadata are sent on their own; calls with
   * different timeouts go in different BATCHes.
   *
   * @default {false}
   */
  autoBatch?: boolean;
  /**
   * Calls held while (re)connecting; more fail with `resource_exhausted`.
   *
   * @default {1000}
   */
  maxQueuedCalls?: number;
  /**
   * Pushes (NOTIFY, BROADCAST) buffered for {@linkcode RpcClient.pushes}
   * when its reader falls behind; beyond it newer pushes are dropped and
   * counted (pushes are at-most-once, PROTOCOL.md 5).
   *
   * @default {1024}
   */
  maxBufferedPushes?: number;
  /**
   * Supplies a W3C `traceparent` per call made without one.
   *
   * @default {activeTraceparent} the active OpenTelemetry span's, if any
   */
  traceparent?: () => string | undefined;
  /** How long the handshake may take, in ms. @default {5000} */
  handshakeTimeoutMs?: number;
  /** Opens connections instead of dialing `target`, such as a memory pair's end. */
  dial?: () => Promise<Connection>;
}

const RECONNECT_DEFAULTS: Required<ReconnectOptions> = {
  initialDelayMs: 100,
  factor: 2,
  maxDelayMs: 30_000,
  maxRetries: 5,
};

interface Waiting {
  run(peer: RpcPeer): void;
  fail(error: StreamwireError): void;
}

interface Batched {
  method: string;
  params: unknown;
  timeout: number | undefined;
  idempotent: boolean;
  resolve(value: unknown): void;
  reject(error: StreamwireError): void;
}

/**
 * Full-jitter backoff delay for an attempt (0-based): a uniform random
 * delay between 0 and `min(maxDelayMs, initialDelayMs * factor^attempt)`.
 *
 * @param attempt Attempt number, from 0.
 * @param options Backoff parameters.
 * @returns Delay in ms.
 *
 * @example Usage
 * ```ts
 * import { backoffDelay } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const delay = backoffDelay(3, { initialDelayMs: 100, factor: 2, maxDelayMs: 30_000 });
 * assert.ok(delay >= 0 && delay <= 800);
 * ```
 */
export function backoffDelay(attempt: number, options: ReconnectOptions = {}): number {
  const o = { ...RECONNECT_DEFAULTS, ...options };
  const cap = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** attempt);
  return Math.random() * cap;
}

/**
 * A client of one server address, reconnecting as needed.
 *
 * Retry policy: after a lost connection, a call is sent again only if it is
 * safe: it was never sent, the server's GOAWAY showed it was above `lastId`
 * (not processed), or it was marked `idempotent`. Every other call fails
 * with `unavailable`; none is dropped silently.
 *
 * Emits `statechange` events (`CustomEvent` with `{ from, to }`).
 *
 * @example Follow the connection state
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const client = await connect(server.listen({ port: 0 }), { reconnect: false });
 * assert.equal(client.state, "ready");
 * const states: string[] = [];
 * client.addEventListener("statechange", (e) => states.push((e as CustomEvent).detail.to));
 * await client.close();
 * assert.deepEqual(states, ["closing", "disconnected"]);
 * await server.shutdown();
 * ```
 */
export class RpcClient extends EventTarget {
  /** Pushes dropped because {@linkcode RpcClient.pushes} was not read fast enough. */
  droppedPushes = 0;
  #state: ClientState = ClientState.DISCONNECTED;
  #options: ClientOptions;
  #open: () => Promise<Connection>;
  #peer: RpcPeer | undefined;
  #session: Session | undefined;
  #waiting: Waiting[] = [];
  #closing = false;
  #draining = false;
  /** Why the client stopped reconnecting; later calls fail with it instead of waiting forever. */
  #gaveUp: StreamwireError | undefined;
  #retryTimer: Timer | undefined;
  #ready: { promise: Promise<void>; resolve(): void; reject(e: StreamwireError): void } | undefined;
  #subscribers = new Map<string, Set<(params: unknown, push: Push) => void>>();
  #pushController: ReadableStreamDefaultController<Push> | undefined;
  #pushes: ReadableStream<Push> | undefined;
  #batcher: WritableStreamDefaultWriter<Batched> | undefined;
  /** Auto-batched calls not yet settled; bounded by `maxPendingCalls`. */
  #batched = 0;

  /**
   * Creates a client; {@linkcode RpcClient.start} (or {@linkcode connect}) connects it.
   *
   * @param open Opens a new connection to the server.
   * @param options Handshake offer, limits, reconnection and push handling.
   */
  constructor(open: () => Promise<Connection>, options: ClientOptions = {}) {
    super();
    this.#open = open;
    this.#options = options;
    if (options.autoBatch) this.#batcher = this.#createBatcher();
  }

  /** Current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** The current session, when connected. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** Calls waiting for an answer on the current connection. */
  get pending(): number {
    return this.#peer?.pending ?? 0;
  }

  /**
   * Server pushes (NOTIFY and BROADCAST) as one stream, created on first
   * use. A slow reader loses the pushes that arrive beyond `maxBufferedPushes`
   * (counted in {@linkcode RpcClient.droppedPushes}).
   */
  get pushes(): ReadableStream<Push> {
    this.#pushes ??= new ReadableStream<Push>({
      start: (controller) => {
        this.#pushController = controller;
      },
      cancel: () => {
        this.#pushController = undefined;
      },
    }, { highWaterMark: this.#options.maxBufferedPushes ?? 1024 });
    return this.#pushes;
  }

  /**
   * Connects, retrying with backoff, until the first handshake completes.
   *
   * @returns Resolves when ready.
   * @throws {StreamwireError} `unavailable` once the retries are used up.
   */
  start(): Promise<void> {
    if (this.#ready === undefined) {
      let resolve!: () => void, reject!: (e: StreamwireError) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.#ready = { promise, resolve, reject };
      this.#connect(0);
    }
    return this.#ready.promise;
  }

  /**
   * Calls a unary method.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Timeout, signal, metadata, idempotency.
   * @returns The result.
   */
  call(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    if (
      this.#batcher && this.#state === ClientState.READY && !this.#draining &&
      options.signal === undefined && options.metadata === undefined &&
      options.tracestate === undefined && this.#traceparentOf(options) === undefined
    ) {
      // A BATCH carries one extension block, so calls with their own trace
      // context, metadata or signal go out on their own.
      const limit = this.#options.maxPendingCalls ?? 10_000;
      if (this.#batched >= limit) {
        return Promise.reject(
          new StreamwireError(
            Status.RESOURCE_EXHAUSTED,
            `Too many calls waiting to be batched: maxPendingCalls '${limit}'`,
          ),
        );
      }
      this.#batched++;
      const settled = () => this.#batched--;
      return new Promise((resolve, reject) => {
        this.#batcher!.write({
          method,
          params,
          timeout: options.timeout,
          idempotent: options.idempotent ?? false,
          resolve,
          reject,
        }).catch(reject);
      }).finally(settled);
    }
    const peer = this.#peer;
    if (peer !== undefined && this.#state === ClientState.READY && !this.#draining) {
      return peer.call(method, params, options);
    }
    return this.#withPeer((peer) => peer.call(method, params, options));
  }

  /**
   * Sends a NOTIFY (never answered).
   *
   * @param method Method name.
   * @param params Params.
   * @param options Metadata.
   */
  notify(method: string, params?: unknown, options: CallOptions = {}): void {
    this.#peerNow().notify(method, params, options);
  }

  /**
   * Sends calls in one BATCH frame.
   *
   * @param calls The calls.
   * @param options Timeout and signal for the whole batch.
   * @returns One outcome per call, in order.
   */
  batch(calls: readonly BatchCall[], options: CallOptions = {}): Promise<BatchOutcome[]> {
    return this.#withPeer((peer) => peer.batch(calls, options)) as Promise<BatchOutcome[]>;
  }

  /**
   * Opens a server stream; reading grants CREDIT, cancelling sends CANCEL.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Timeout, signal, metadata.
   * @returns The results.
   */
  stream(method: string, params?: unknown, options: CallOptions = {}): ReadableStream<unknown> {
    return this.#peerNow().stream(method, params, options);
  }

  /**
   * Client-streaming call.
   *
   * @param method Method name.
   * @param input Values to send.
   * @param options Timeout, signal, metadata.
   * @returns The result.
   */
  upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options: CallOptions = {},
  ): Promise<unknown> {
    return this.#withPeer((peer) => peer.upload(method, input, options));
  }

  /**
   * Bidirectional call.
   *
   * @param method Method name.
   * @param params Params of the OPEN.
   * @param options Timeout, signal, metadata.
   * @returns Readable of results and writable of values.
   */
  duplex(
    method: string,
    params?: unknown,
    options: CallOptions = {},
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    return this.#peerNow().duplex(method, params, options);
  }

  /**
   * Calls `callback` for every BROADCAST on `topic`.
   *
   * @param topic Topic (the BROADCAST's method).
   * @param callback Receives the decoded params.
   * @returns A function that unsubscribes.
   */
  subscribe(topic: string, callback: (params: unknown, push: Push) => void): () => void {
    let set = this.#subscribers.get(topic);
    if (set === undefined) this.#subscribers.set(topic, set = new Set());
    set.add(callback);
    return () => {
      set.delete(callback);
      if (set.size === 0) this.#subscribers.delete(topic);
    };
  }

  /**
   * Closes the client: waiting calls fail with `cancelled`, the session
   * closes, no reconnection follows.
   *
   * @returns Resolves once closed.
   */
  async close(): Promise<void> {
    if (this.#closing) return await this.#session?.closed;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    this.#setState(ClientState.CLOSING);
    const error = new StreamwireError(Status.CANCELLED, "Client closed");
    this.#failWaiting(error);
    this.#ready?.reject(error);
    await this.#batcher?.close().catch(() => {});
    this.#peer?.close(error);
    await this.#session?.close();
    try {
      this.#pushController?.close();
    } catch { /* already closed */ }
    this.#setState(ClientState.DISCONNECTED);
  }

  /** The traceparent a call would carry: its own, or the supplier's (the active span's). */
  #traceparentOf(options: CallOptions): string | undefined {
    return options.traceparent ?? (this.#options.traceparent ?? activeTraceparent)();
  }

  #setState(to: ClientState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { from, to } }));
  }

  #peerNow(): RpcPeer {
    if (this.#peer === undefined || this.#state !== ClientState.READY || this.#draining) {
      throw new StreamwireError(Status.UNAVAILABLE, `Client is ${this.#state}, not ready`);
    }
    return this.#peer;
  }

  /** Runs `fn` on the current peer, or queues it until the next connection is ready. */
  #withPeer(fn: (peer: RpcPeer) => Promise<unknown>): Promise<unknown> {
    if (this.#peer !== undefined && this.#state === ClientState.READY && !this.#draining) {
      return fn(this.#peer);
    }
    if (this.#closing) {
      return Promise.reject(new StreamwireError(Status.CANCELLED, "Client closed"));
    }
    if (this.#gaveUp !== undefined) return Promise.reject(this.#gaveUp);
    const limit = this.#options.maxQueuedCalls ?? 1000;
    if (this.#waiting.length >= limit) {
      return Promise.reject(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Too many calls waiting for a connection: maxQueuedCalls '${limit}'`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({
        run: (peer) => fn(peer).then(resolve, reject),
        fail: reject,
      });
    });
  }

  #failWaiting(error: StreamwireError): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.fail(error);
  }

  async #connect(attempt: number): Promise<void> {
    if (this.#closing) return;
    this.#setState(ClientState.CONNECTING);
    let session: Session;
    let peer: RpcPeer | undefined;
    try {
      const conn = await this.#open();
      if (this.#closing) {
        conn.close();
        return;
      }
      this.#setState(ClientState.CONNECTED);
      this.#setState(ClientState.AUTHENTICATING);
      session = await openSession(conn, {
        ...this.#options,
        handler: {
          // The peer exists from the handshake on, so a NOTIFY or BROADCAST
          // read together with HELLO_ACK reaches it.
          open: (s) => {
            peer = new RpcPeer(s, {
              ...this.#options,
              traceparent: this.#options.traceparent ?? activeTraceparent,
              onPush: (push) => this.#deliver(push),
            });
          },
          message: (_s, message) => peer?.handle([message]),
          goaway: () => {
            // Calls at or below lastId finish here; new ones wait for the next connection.
            this.#draining = true;
          },
          close: (s, reason) => this.#lost(s, reason),
        },
      });
    } catch (error) {
      const e = StreamwireError.from(error);
      // A refused handshake (bad token, no common codec) will not get better by retrying.
      const fatal = e.code === Status.UNAUTHENTICATED || e.code === Status.UNIMPLEMENTED ||
        e.code === Status.INVALID_ARGUMENT;
      this.#retry(attempt, fatal ? e : undefined, e);
      return;
    }
    if (this.#closing) {
      await session.close();
      return;
    }
    this.#session = session;
    this.#draining = false;
    this.#peer = peer!;
    this.#setState(ClientState.READY);
    this.#ready?.resolve();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.run(this.#peer);
  }

  #retry(attempt: number, fatal: StreamwireError | undefined, cause: StreamwireError): void {
    const policy = this.#options.reconnect;
    const retries = policy === false ? 0 : (policy?.maxRetries ?? RECONNECT_DEFAULTS.maxRetries);
    if (fatal !== undefined || attempt >= retries || this.#closing) {
      const error = fatal ??
        new StreamwireError(
          Status.UNAVAILABLE,
          `Connection failed after '${attempt + 1}' attempt(s): ${cause.message}`,
          { cause },
        );
      this.#gaveUp = error;
      this.#setState(ClientState.DISCONNECTED);
      this.#failWaiting(error);
      this.#ready?.reject(error);
      return;
    }
    this.#setState(ClientState.DISCONNECTED);
    const delay = backoffDelay(attempt, policy || {});
    this.#retryTimer = setTimeout(() => this.#connect(attempt + 1), delay);
  }

  #lost(session: Session, reason: StreamwireError | undefined): void {
    if (session !== this.#session) return;
    const peer = this.#peer!;
    this.#peer = undefined;
    this.#session = undefined;
    const error = new StreamwireError(
      Status.UNAVAILABLE,
      `Connection lost${reason ? `: ${reason.message}` : ""}`,
      { cause: reason },
    );
    const orphans = peer.takePending();
    peer.close(error);
    if (this.#closing) {
      for (const call of orphans) call.reject(error);
      return;
    }
    this.#setState(ClientState.DISCONNECTED);
    const lastId = session.peerGoaway?.lastId;
    const reconnecting = this.#options.reconnect !== false;
    for (const call of orphans) {
      const unprocessed = lastId !== undefined && call.id > lastId;
      if (reconnecting && (unprocessed || call.idempotent)) this.#requeue(call);
      else call.reject(error);
    }
    this.#ready = undefined;
    if (reconnecting) {
      this.start();
    } else {
      this.#gaveUp = error;
      this.#failWaiting(error);
    }
  }

  #requeue(call: PendingCall): void {
    this.#waiting.push({ run: (peer) => peer.resend(call), fail: (e) => call.reject(e) });
  }

  #deliver(push: Push): void {
    const subscribers = this.#subscribers.get(push.method);
    if (subscribers) {
      for (const callback of subscribers) {
        try {
          callback(push.params, push);
        } catch { /* a subscriber's failure is its own */ }
      }
    }
    const controller = this.#pushController;
    if (controller !== undefined) {
      if ((controller.desiredSize ?? 0) <= 0) {
        this.droppedPushes++;
        return;
      }
      controller.enqueue(push);
    }
  }

  /** Auto-batching as a stream composition: calls, coalesced per turn, into BATCH frames. */
  #createBatcher(): WritableStreamDefaultWriter<Batched> {
    const coalesce = new CoalesceStream<Batched>({
      maxBatch: this.#options.maxBatchSize ?? 1024,
    });
    coalesce.readable.pipeTo(
      new WritableStream<Batched[]>({
        write: (group) => {
          // One BATCH per distinct timeout: a call must not fail at a
          // neighbour's shorter deadline (results arrive in one frame).
          const first = group[0].timeout;
          if (group.every((c) => c.timeout === first)) return this.#sendBatched(group);
          const byTimeout = new Map<number | undefined, Batched[]>();
          for (const c of group) {
            const same = byTimeout.get(c.timeout);
            if (same) same.push(c);
            else byTimeout.set(c.timeout, [c]);
          }
          for (const calls of byTimeout.values()) this.#sendBatched(calls);
        },
      }),
    ).catch(() => {});
    return coalesce.writable.getWriter();
  }

  /** Sends calls that share a timeout: alone as a REQUEST, else as one BATCH. */
  #sendBatched(calls: Batched[]): void {
    const timeout = calls[0].timeout;
    if (calls.length === 1) {
      const [c] = calls;
      this.#withPeer((peer) => peer.call(c.method, c.params, { timeout, idempotent: c.idempotent }))
        .then(c.resolve, c.reject);
      return;
    }
    this.batch(
      calls.map((c) => ({ method: c.method, params: c.params })),
      { timeout, idempotent: calls.every((c) => c.idempotent) },
    ).then(
      (outcomes) =>
        outcomes.forEach((o, i) => o.ok ? calls[i].resolve(o.value) : calls[i].reject(o.error)),
      (error) => calls.forEach((c) => c.reject(StreamwireError.from(error))),
    );
  }
}

/**
 * Connects to a server and resolves once the handshake completes.
 *
 * @param target `tcp://host:port`, `tls://host:port`, `unix:///path`, or
 *   transport options; ignored when `options.dial` is given.
 * @param options Handshake offer, limits, reconnection and push handling.
 * @returns A ready client.
 * @throws {StreamwireError} When no connection could be made within the retries.
 *
 * @example Usage
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({
 *   methods: new Methods().unary("add", (p) => (p as number[])[0] + (p as number[])[1]),
 * });
 * const client = await connect(server.listen({ port: 0 }), { codecs: ["json"] });
 * assert.equal(await client.call("add", [2, 40]), 42);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export async function connect(
  target: string | URL | DialOptions,
  options: ClientOptions = {},
): Promise<RpcClient> {
  const client = new RpcClient(options.dial ?? (() => dial(target)), options);
  await client.start();
  return client;
}
