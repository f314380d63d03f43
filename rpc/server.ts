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
import { type ErrorInfo, type PeerLimits, type Push, RpcPeer } from "./peer.ts";
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
   * Receives what fails unseen by clients: errors thrown by handlers or
   * interceptors that are not `StreamwireError`s (the client gets code 2
   * `unknown` and a generic message naming the method), failures of NOTIFY
   * handlers, and whatever `onPush` throws.
   *
   * @default {logs with console.error}
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
    const served = options.reflection === false ? options.methods : withReflection(options.methods);
    this.transport = new Server({
      ...options,
      // A BATCH over maxBatchSize is refused from its count: its entries are never built.
      maxBatchEntries: options.maxBatchEntries ?? options.maxBatchSize,
      handler: {
        open: (session) => {
          this.#peers.set(
            session,
            new RpcPeer(session, {
              ...options,
              methods: served,
              onPush: onPush && ((push) => onPush(session, push)),
            }),
          );
        },
        message: (session, message) => this.#peers.get(session)?.handle(message),
        drain: (session) => this.#peers.get(session)?.drain() ?? Promise.resolve(),
        close: (session, reason) => {
          this.#peers.get(session)?.close(
            reason ?? new StreamwireError(Status.UNAVAILABLE, "Connection closed"),
          );
          this.#peers.delete(session);
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
   * Graceful shutdown: GOAWAY, drain in-flight calls up to the deadline, close.
   *
   * @param options Drain deadline in ms.
   * @returns Resolves once everything is closed.
   */
  async shutdown(options: { deadlineMs?: number } = {}): Promise<void> {
    await this.transport.shutdown(options);
    await Promise.allSettled(this.#serving);
  }
}
