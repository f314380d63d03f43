/**
 * The RPC server: a transport {@linkcode Server} whose sessions each get an
 * {@linkcode RpcPeer} dispatching to registered methods.
 *
 * @module
 */

import { getCodec } from "../codec/payload_codec.ts";
import type { Connection, Listener } from "../transport/connection.ts";
import { listen, type ListenOptions } from "../transport/listen.ts";
import {
  type BroadcastOptions,
  type BroadcastResult,
  Server,
  type ServerOptions,
} from "../transport/server.ts";
import type { Session } from "../transport/session.ts";
import type { Interceptor } from "./interceptor.ts";
import type { Methods } from "./methods.ts";
import { withReflection } from "./reflection.ts";
import { RpcMetrics, type RpcMetricsOptions } from "./metrics.ts";
import type { OpenTelemetryOptions } from "./otel.ts";
import { servedInterceptors } from "./_otel_server.ts";
import { Health, withHealth } from "./health.ts";
import { asLogger, jsonLogger, type LogFunction, type Logger } from "./logger.ts";
import { logClosed, logFailure, logOpened } from "./_log.ts";
import {
  type ErrorInfo,
  type PeerLimits,
  type Push,
  RpcPeer,
  type RpcPeerOptions,
} from "./peer.ts";
import { StreamwireError } from "../codec/error.ts";
import { Status } from "../codec/constants.ts";

/** Options of {@linkcode RpcServer}. */
export interface RpcServerOptions extends Omit<ServerOptions, "handler">, PeerLimits {
  /** The methods served. */
  methods: Methods;
  /**
   * Serve `reflection.list`, which lists the methods and their kinds
   * (see {@linkcode withReflection}); the `streamwire call` command uses it.
   *
   * @default {true}
   */
  reflection?: boolean;
  /**
   * Serve `health.check` and `health.watch` (see {@linkcode withHealth}),
   * answered from {@linkcode RpcServer.health}: this {@linkcode Health}, a
   * fresh one for `true`, none for `false`.
   *
   * @default {true}
   */
  health?: boolean | Health;
  /**
   * Where the server logs: one line per session opened and closed (with
   * its counters and close reason), one per failure that `onError` would
   * get (unless `onError` is given), and the admin API's audit lines. An
   * object with `debug`, `info`, `warn` and `error`, or one function.
   *
   * @default {jsonLogger({ level: "warn" }): failures only, as JSON lines on stderr}
   */
  logger?: Logger | LogFunction;
  /**
   * Receives NOTIFY for unregistered methods, with the sending session;
   * what it throws goes to `onError`.
   */
  onPush?: (session: Session, push: Push) => void;
  /**
   * Wrap every call the server serves (`call.side` is `"callee"`) and every
   * call it makes to a client through {@linkcode RpcServer.peer}
   * (`"caller"`), first one outermost.
   */
  interceptors?: Interceptor[];
  /**
   * Count served calls by method and status, their durations and those in
   * flight, into {@linkcode RpcServer.metrics} (the admin API's `/metrics`
   * reads them), where each handler runs. `false` turns it off.
   *
   * @default {true}
   */
  metrics?: boolean | RpcMetricsOptions;
  /**
   * Trace and measure served calls with OpenTelemetry
   * ({@linkcode openTelemetry}), an interceptor before `interceptors`;
   * options name the providers, `false` turns it off.
   *
   * @default {on, with the global providers, if a global tracer provider is registered when the server is made}
   */
  telemetry?: boolean | OpenTelemetryOptions;
  /**
   * Receives what fails unseen by clients: errors thrown by handlers or
   * interceptors that are not `StreamwireError`s (the client gets code 2
   * `unknown` and a generic message naming the method), failures of NOTIFY
   * handlers, and whatever `onPush` throws.
   *
   * @default {an `error` line through `logger`, with the error's message and stack}
   */
  onError?: (error: unknown, info: ErrorInfo) => void;
}

/**
 * Serves methods over any number of listeners or connections.
 *
 * @example Usage
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const addr = server.listen({ port: 0 });
 * const client = await connect(addr);
 * assert.equal(await client.call("echo", "hi"), "hi");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export class RpcServer {
  /** The transport server underneath: sessions, topics, broadcast, metrics. */
  readonly transport: Server;
  /** The methods served. */
  readonly methods: Methods;
  /** The health `health.check` and `health.watch` tell, unless turned off. */
  readonly health: Health | undefined;
  /** Where this server logs (`logger`, wrapped so that it never throws). */
  readonly logger: Logger;
  /** Counters of served calls, unless the `metrics` option is false. */
  readonly metrics: RpcMetrics | undefined;
  #shuttingDown = false;
  #peers = new WeakMap<Session, RpcPeer>();
  #serving: Promise<void>[] = [];

  /**
   * Creates the server.
   *
   * @param options Methods, transport options and call limits.
   */
  constructor(options: RpcServerOptions) {
    this.methods = options.methods;
    const onPush = options.onPush;
    const logger = this.logger = asLogger(options.logger ?? jsonLogger({ level: "warn" }));
    const health = this.health = options.health === false
      ? undefined
      : options.health instanceof Health
      ? options.health
      : new Health();
    const withBuiltIns = health === undefined
      ? options.methods
      : withHealth(options.methods, health);
    const served = options.reflection === false ? withBuiltIns : withReflection(withBuiltIns);
    const metrics = this.metrics = options.metrics === false
      ? undefined
      : new RpcMetrics(options.metrics === true ? {} : options.metrics);
    const interceptors = servedInterceptors(options.interceptors, options.telemetry);
    const counted = metrics === undefined ? served : metrics.wrap(served);
    const onError = options.onError ??
      ((error: unknown, info: ErrorInfo) => logFailure(logger, error, info));
    // One options object for every peer, so that they share what they derive from it.
    const peerOptions: RpcPeerOptions = {
      ...options,
      methods: counted,
      onPush: undefined,
      onError,
      interceptors,
    };
    this.transport = new Server({
      ...options,
      // A BATCH over maxBatchSize is refused from its count: its entries are never built.
      maxBatchEntries: options.maxBatchEntries ?? options.maxBatchSize,
      handler: {
        open: (session) => {
          this.#peers.set(
            session,
            new RpcPeer(
              session,
              onPush === undefined
                ? peerOptions
                : { ...peerOptions, onPush: (push) => onPush(session, push) },
            ),
          );
          logOpened(logger, session);
        },
        message: (session, message) => this.#peers.get(session)?.handle(message),
        drain: (session) => this.#peers.get(session)?.drain() ?? Promise.resolve(),
        close: (session, reason) => {
          this.#peers.get(session)?.close(
            reason ?? new StreamwireError(Status.UNAVAILABLE, "Connection closed"),
          );
          this.#peers.delete(session);
          metrics?.closed(session, reason);
          logClosed(logger, session, reason, this.#shuttingDown);
        },
      },
    });
  }

  /**
   * The RPC peer of a session, to call the client back (even call ids).
   *
   * @param session A session of this server.
   * @returns Its peer, once the handshake completed.
   */
  peer(session: Session): RpcPeer | undefined {
    return this.#peers.get(session);
  }

  /**
   * Listens and serves in the background.
   *
   * @param options Where to listen; see {@linkcode listen}.
   * @returns The bound address in URL form, with the real port.
   */
  listen(options: ListenOptions | string | URL): string {
    const listener = listen(options);
    this.#serving.push(this.transport.serve(listener));
    return listener.addr;
  }

  /**
   * Serves an existing listener in the background.
   *
   * @param listener Any listener.
   * @returns Resolves when the listener closes.
   */
  serve(listener: Listener): Promise<void> {
    const serving = this.transport.serve(listener);
    this.#serving.push(serving);
    return serving;
  }

  /**
   * Serves one connection, such as one end of a {@linkcode memoryPair}.
   *
   * @param conn The connection.
   * @returns The session, or undefined if refused.
   */
  accept(conn: Connection): Session | undefined {
    return this.transport.accept(conn);
  }

  /**
   * Sends a BROADCAST whose params are `value`, encoded once per codec in use.
   *
   * @param method Method (topic) of the call entry.
   * @param value Params.
   * @param options Topic and exclusion.
   * @returns Deliveries and slow consumers dropped.
   */
  broadcast(method: string, value: unknown, options: BroadcastOptions = {}): BroadcastResult {
    return this.transport.broadcast(method, (codec) => getCodec(codec).encode(value), options);
  }

  /**
   * Graceful shutdown: health turns `NOT_SERVING` (watchers are sent it
   * first), then GOAWAY, drain in-flight calls up to the deadline, close.
   *
   * @param options Drain deadline in ms.
   * @returns Resolves once everything is closed.
   */
  async shutdown(options: { deadlineMs?: number } = {}): Promise<void> {
    this.#shuttingDown = true;
    const health = this.health;
    if (health !== undefined) {
      // Before GOAWAY: each watcher's NOT_SERVING is queued on its session
      // once this resolves, and the GOAWAY queued after it follows it out.
      // Without watchers, accepting ends at once, in this call.
      const told = health.shutdown();
      if (health.watchers > 0) await told;
    }
    await this.transport.shutdown(options);
    await Promise.allSettled(this.#serving);
  }
}
