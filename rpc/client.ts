/**
 * The RPC client: a connection state machine with reconnection, a safe
 * retry policy, interceptors, auto-batching and server push.
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { dial, type DialOptions } from "../transport/dial.ts";
import type { Connection } from "../transport/connection.ts";
import { openSession } from "../transport/open_session.ts";
import type { Session } from "../transport/session.ts";
import { AutoBatcher, sendBatched } from "./_autobatch.ts";
import { type Caller, callerOf, type Pending } from "./_caller.ts";
import { logError } from "./_dispatcher.ts";
import { Outgoing } from "./_outgoing.ts";
import { Waiting } from "./_waiting.ts";
import type { Contract, ContractShape, TypedClient } from "./contract.ts";
import type { Call, Interceptor } from "./interceptor.ts";
import {
  type BatchCall,
  type BatchOutcome,
  type CallOptions,
  type ErrorInfo,
  type Push,
  RpcPeer,
} from "./peer.ts";
import { traceContext } from "./trace.ts";
import { typedClient } from "./typed_client.ts";
import { backoffDelay, RECONNECT_DEFAULTS, type ReconnectOptions } from "./_backoff.ts";
import { type ClientOptions, ClientState } from "./client_options.ts";

export { backoffDelay, type ReconnectOptions };
export { type ClientOptions, ClientState } from "./client_options.ts";

type Timer = ReturnType<typeof setTimeout>;

/**
 * A client of one server address, reconnecting as needed.
 *
 * While the client connects or reconnects, every kind of call waits for
 * the connection, up to `maxQueuedCalls` of them, each within its own
 * timeout and signal; all fail alike once the client gives up or closes.
 * Streams are returned at once and attach when the call is sent.
 *
 * Retry policy: after a lost connection, a call is sent again only if it is
 * safe: it was never sent, the server's GOAWAY showed it was above `lastId`
 * (not processed: such calls are moved to the next connection as soon as
 * the GOAWAY arrives), or it was marked `idempotent`. Every other call
 * fails with `unavailable`; none is dropped silently.
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
  #interceptors: Interceptor[];
  #onError: (error: unknown, info: ErrorInfo) => void;
  #peer: RpcPeer | undefined;
  /** The calling side of `#peer`. */
  #caller: Caller | undefined;
  #session: Session | undefined;
  #waiting = new Waiting();
  #closing = false;
  /** Why the client stopped reconnecting; later calls fail with it instead of waiting forever. */
  #gaveUp: StreamwireError | undefined;
  #retryTimer: Timer | undefined;
  #ready: { promise: Promise<void>; resolve(): void; reject(e: StreamwireError): void } | undefined;
  #subscribers = new Map<string, Set<(params: unknown, push: Push) => void>>();
  #pushController: ReadableStreamDefaultController<Push> | undefined;
  #pushes: ReadableStream<Push> | undefined;
  #batcher: AutoBatcher | undefined;
  /** Calls through the interceptors, then to the current connection or the next. */
  #outgoing: Outgoing;
  /** Calls already intercepted (auto-batched ones), straight to a connection. */
  #direct: Outgoing;

  /**
   * Creates a client; {@linkcode RpcClient.start} (or {@linkcode connect}) connects it.
   *
   * @param open Opens a new connection to the server.
   * @param options Handshake offer, limits, interceptors, reconnection and push handling.
   */
  constructor(open: () => Promise<Connection>, options: ClientOptions = {}) {
    super();
    this.#open = open;
    this.#options = options;
    this.#interceptors = options.interceptors ?? [traceContext()];
    this.#onError = options.onError ?? logError;
    const defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    const caller = (c: Call, deadline: number, signal?: AbortSignal) =>
      this.#callerFor(c, deadline, signal);
    if (options.autoBatch) {
      this.#batcher = new AutoBatcher(
        options.maxBatchSize ?? 1024,
        options.maxPendingCalls ?? 10_000,
        (calls) => sendBatched(this.#direct, calls),
      );
    }
    const current = () => this.#current();
    this.#outgoing = new Outgoing(this.#interceptors, defaultTimeoutMs, {
      caller,
      current,
      unary: this.#batcher && ((c, idempotent) => this.#autoBatch(c, idempotent)),
    });
    this.#direct = new Outgoing([], defaultTimeoutMs, { caller, current });
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
    return this.#outgoing.call(method, params, options);
  }

  /**
   * Sends a NOTIFY (never answered).
   *
   * @param method Method name.
   * @param params Params.
   * @param options Metadata; a timeout or signal bounds the wait for a connection.
   * @returns Resolves once the NOTIFY is queued for sending.
   */
  notify(method: string, params?: unknown, options: CallOptions = {}): Promise<void> {
    return this.#outgoing.notify(method, params, options);
  }

  /**
   * Sends calls in one BATCH frame.
   *
   * @param calls The calls.
   * @param options Timeout and signal for the whole batch.
   * @returns One outcome per call, in order.
   */
  batch(calls: readonly BatchCall[], options: CallOptions = {}): Promise<BatchOutcome[]> {
    return this.#outgoing.batch(calls, options);
  }

  /**
   * Opens a server stream; reading grants CREDIT, cancelling sends CANCEL.
   * A failure to open it, at once or after waiting for a connection,
   * fails the returned stream.
   *
   * @param method Method name.
   * @param params Params.
   * @param options Timeout (none by default), signal, metadata.
   * @returns The results.
   */
  stream(method: string, params?: unknown, options: CallOptions = {}): ReadableStream<unknown> {
    return this.#outgoing.stream(method, params, options);
  }

  /**
   * Client-streaming call. The server may answer before it has read all
   * the input: the answer stands and the rest is not sent.
   *
   * @param method Method name.
   * @param input Values to send.
   * @param options Timeout (none by default), signal, metadata, `params` of the OPEN.
   * @returns The result.
   */
  upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options: CallOptions & { params?: unknown } = {},
  ): Promise<unknown> {
    return this.#outgoing.upload(method, input, options);
  }

  /**
   * Bidirectional call.
   *
   * @param method Method name.
   * @param params Params of the OPEN.
   * @param options Timeout (none by default), signal, metadata.
   * @returns Readable of results and writable of values.
   */
  duplex(
    method: string,
    params?: unknown,
    options: CallOptions = {},
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    return this.#outgoing.duplex(method, params, options);
  }

  /**
   * A typed client of `contract` over this client: one function per
   * method, at the method's path (`api.chat.join(params)`), options last.
   *
   * @typeParam S The contract's shape.
   * @param contract Made by `defineContract`.
   * @returns The typed client.
   */
  typed<S extends ContractShape>(contract: Contract<S>): TypedClient<S> {
    return typedClient(this, contract);
  }

  /**
   * Calls `callback` for every BROADCAST on `topic`. What it throws goes to
   * `onError`; the connection and other callbacks are not affected.
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
    this.#waiting.fail(error);
    this.#ready?.reject(error);
    await this.#batcher?.close();
    this.#peer?.close(error);
    await this.#session?.close();
    try {
      this.#pushController?.close();
    } catch { /* already closed */ }
    this.#setState(ClientState.DISCONNECTED);
  }

  #setState(to: ClientState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { from, to } }));
  }

  /** The caller new calls go to, if there is one now: ready and not told to go away. */
  #current(): Caller | undefined {
    if (this.#state !== ClientState.READY || this.#session?.peerGoaway !== undefined) {
      return undefined;
    }
    return this.#caller;
  }

  /** The caller of the current connection, or a promise of the next one's. */
  #callerFor(c: Call, deadline: number, signal?: AbortSignal): Caller | Promise<Caller> {
    const caller = this.#current();
    if (caller !== undefined) return caller;
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const limit = this.#options.maxQueuedCalls ?? 1000;
    if (this.#waiting.size >= limit) {
      return Promise.reject(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Too many calls waiting for a connection: maxQueuedCalls '${limit}'`,
        ),
      );
    }
    return new Promise((resolve, reject) =>
      this.#waiting.add({
        method: c.method,
        deadline,
        signals: [c.signal, signal],
        run: (peer) => resolve(callerOf(peer)),
        fail: reject,
      })
    );
  }

  /** Why a call cannot wait for a connection, if it cannot. */
  #refusal(): StreamwireError | undefined {
    if (this.#closing) return new StreamwireError(Status.CANCELLED, "Client closed");
    return this.#gaveUp;
  }

  /** Moves a call that was not processed to the next connection. */
  #requeue(call: Pending): void {
    this.#waiting.add({
      method: call.message.type === FrameType.REQUEST ? call.message.method : "",
      deadline: call.deadline,
      signals: [call.signal],
      run: (peer) => callerOf(peer).resend(call),
      fail: (error) => call.reject(error),
    });
  }

  /** Auto-batching: a call without its own signal, metadata or trace context joins this turn's BATCH. */
  #autoBatch(c: Call, idempotent: boolean): Promise<unknown> | undefined {
    if (
      c.signal !== undefined || c.metadata.length > 0 || c.traceparent !== undefined ||
      c.tracestate !== undefined || this.#current() === undefined
    ) return undefined;
    return this.#batcher!.add(c, idempotent);
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
      const options = this.#options;
      session = await openSession(conn, {
        ...options,
        inbound: typeof options.inbound === "function" ? options.inbound() : options.inbound,
        outbound: typeof options.outbound === "function" ? options.outbound() : options.outbound,
        maxBatchEntries: options.maxBatchEntries ?? options.maxBatchSize,
        handler: {
          // The peer exists from the handshake on, so a NOTIFY or BROADCAST
          // read together with HELLO_ACK reaches it.
          open: (s) => {
            peer = new RpcPeer(s, {
              ...options,
              interceptors: this.#interceptors,
              onError: this.#onError,
              onPush: (push) => this.#deliver(s, push),
            });
          },
          message: (_s, message) => peer?.handle(message),
          goaway: (_s, message) => {
            // Calls above lastId were not processed (PROTOCOL.md 5): they go
            // to the next connection, and the ERROR that refuses them here
            // is ignored. Calls at or below it finish here.
            if (peer === undefined || options.reconnect === false) return;
            for (const call of callerOf(peer).takePending(message.lastId)) this.#requeue(call);
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
    this.#peer = peer!;
    this.#caller = callerOf(peer!);
    this.#setState(ClientState.READY);
    this.#ready?.resolve();
    if (session.peerGoaway !== undefined) return; // told to go away at once: wait for the next
    this.#waiting.run(this.#peer);
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
      this.#waiting.fail(error);
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
    this.#caller = undefined;
    this.#session = undefined;
    const error = new StreamwireError(
      Status.UNAVAILABLE,
      `Connection lost${reason ? `: ${reason.message}` : ""}`,
      { cause: reason },
    );
    const orphans = callerOf(peer).takePending();
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
      this.#waiting.fail(error);
    }
  }

  #deliver(session: Session, push: Push): void {
    const subscribers = this.#subscribers.get(push.method);
    if (subscribers) {
      for (const callback of subscribers) {
        try {
          callback(push.params, push);
        } catch (error) {
          // A subscriber's failure is its own: the others and the connection go on.
          try {
            this.#onError(error, { method: push.method, session, id: 0 });
          } catch { /* nor does a failing logger stop them */ }
        }
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
}

/**
 * Connects to a server and resolves once the handshake completes.
 *
 * @param target `tcp://host:port`, `tls://host:port`, `unix:///path`, or
 *   transport options; ignored when `options.dial` is given.
 * @param options Handshake offer, limits, interceptors, reconnection and push handling.
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
