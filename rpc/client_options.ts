/**
 * Options and states of the RPC client ({@linkcode RpcClient} in `client.ts`).
 *
 * @module
 */

import type { Connection } from "../transport/connection.ts";
import type { HelloOptions } from "../transport/handshake.ts";
import type { SessionLimits, SessionStages } from "../transport/session.ts";
import type { ReconnectOptions } from "./_backoff.ts";
import type { Interceptor } from "./interceptor.ts";
import type { Methods } from "./methods.ts";
import type { ErrorInfo, PeerLimits } from "./peer.ts";

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

/** Options of `connect()` and `RpcClient`. */
export interface ClientOptions extends HelloOptions, PeerLimits, SessionLimits {
  /** Methods the server may call on this client (even call ids). */
  methods?: Methods;
  /**
   * The user's own inbound stages (a tap, metrics, decryption), or a
   * function making a fresh set per connection for stages that keep state.
   */
  inbound?: SessionStages | (() => SessionStages);
  /** The user's own outbound stages, or a function making them per connection. */
  outbound?: SessionStages | (() => SessionStages);
  /** Reconnection policy, or `false` to fail everything when the connection drops. */
  reconnect?: ReconnectOptions | false;
  /**
   * Wrap every call the client makes (`call.side` is `"caller"`) and every
   * call it serves from `methods` (`"callee"`), first one outermost. A list
   * given here replaces the default: include `traceContext()` to keep
   * sending the active span's `traceparent`, or leave it out (`[]`) to send
   * none.
   *
   * @default {[traceContext()]}
   */
  interceptors?: Interceptor[];
  /**
   * Receives what fails on this side unseen by the server: errors of the
   * methods it serves that are not `StreamwireError`s, and whatever a
   * `RpcClient.subscribe` callback throws.
   *
   * @default {logs with console.error}
   */
  onError?: (error: unknown, info: ErrorInfo) => void;
  /**
   * Coalesce unary calls made in the same event-loop turn into one BATCH.
   * Calls with a signal, metadata or trace context are sent on their own;
   * calls with different timeouts go in different BATCHes.
   *
   * @default {false}
   */
  autoBatch?: boolean;
  /**
   * Calls (of every kind) waiting for a connection while the client
   * connects or reconnects; more fail with `resource_exhausted`.
   *
   * @default {1000}
   */
  maxQueuedCalls?: number;
  /**
   * Pushes (NOTIFY, BROADCAST) buffered for `RpcClient.pushes`
   * when its reader falls behind; beyond it newer pushes are dropped and
   * counted (pushes are at-most-once, PROTOCOL.md 5).
   *
   * @default {1024}
   */
  maxBufferedPushes?: number;
  /** How long the handshake may take, in ms. @default {5000} */
  handshakeTimeoutMs?: number;
  /** Opens connections instead of dialing `target`, such as a memory pair's end. */
  dial?: () => Promise<Connection>;
}
