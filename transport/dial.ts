/**
 * Opening a connection over TCP, TLS or a Unix socket.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, ConnectionOptions } from "./connection.ts";
import {
  type Endpoint,
  type EndpointOptions,
  formatEndpoint,
  netError,
  readCaCerts,
  toEndpoint,
} from "./_address.ts";
import { checkReadSizes, SocketConnection } from "./_socket_connection.ts";
import { dialQuic, isQuic, type QuicDialOptions } from "./quic.ts";
import { dialWebSocketOver } from "./_websocket_client.ts";
import { isWebSocketTarget } from "./_websocket_frames.ts";
import type { WebSocketDialTarget } from "./websocket_dial.ts";

export { type EndpointOptions, parseAddress, type SocketTransport } from "./_address.ts";

/** Options of {@linkcode dial}. */
export interface DialOptions extends ConnectionOptions {
  /**
   * The socket kind; `"quic"` dials with {@linkcode dialQuic}.
   *
   * @default {"tcp"}
   */
  transport?: "tcp" | "tls" | "unix" | "quic";
  /**
   * The host to connect to (tcp, tls); for tls also the name the server's
   * certificate must carry.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to connect to (tcp, tls).
   *
   * @default {9000}
   */
  port?: number;
  /** The socket file (unix); required for unix. */
  path?: string;
  /**
   * Extra root certificates in PEM (tls), trusted in addition to the
   * built-in ones: for a private CA or a self-signed server.
   */
  caCerts?: string[];
  /** Path of a PEM file of extra root certificates (tls), read when connecting. */
  caFile?: string;
  /**
   * Bound in milliseconds on opening the connection: the TCP (or Unix)
   * connect and, for tls, the handshake. It stops a dial from hanging on a
   * peer that drops the SYN, or accepts and then never answers the TLS
   * ClientHello (a plain TCP port, a stalled server). Once the connection
   * is open it no longer applies. Past it the dial rejects with
   * `deadline_exceeded`. `Infinity` (or anything from 2^31 ms, about 24.8
   * days) sets no bound: the dial waits as long as the OS does.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Aborting it gives up on the dial: it rejects with `cancelled`. Once the
   * dial has resolved, the signal no longer affects the connection.
   */
  signal?: AbortSignal;
}

/** Default of {@linkcode DialOptions.timeoutMs}: ample for a slow handshake far away. */
const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest delay a timer takes (2^31 - 1 ms); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkTimeout(timeoutMs: number | undefined): number {
  const value = timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof value !== "number" || !(value > 0)) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `timeoutMs '${value}' must be a positive number of milliseconds`,
    );
  }
  return value;
}

const MAKE_CERT = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes " +
  "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 " +
  "-addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem";

/**
 * What to do about a certificate the TLS client refused. rustls refuses a
 * CA certificate as the server's own, which is what a plain
 * `openssl req -x509` makes, so that case says how to make one it accepts.
 */
function certificateHint(error: unknown): string | undefined {
  const text = error instanceof Error ? error.message : "";
  if (text.includes("CaUsedAsEndEntity")) {
    return "the server's certificate is a CA certificate, as a plain 'openssl req -x509' " +
      `makes; make the server one that is not, naming its host: ${MAKE_CERT}`;
  }
  if (text.includes("NotValidForName")) {
    return "the server's certificate does not name this host; add it to the certificate's " +
      `subjectAltName, for example: ${MAKE_CERT}`;
  }
  if (text.includes("UnknownIssuer")) {
    return "the server's certificate is not signed by a trusted root; for a self-signed one, " +
      "pass it as caFile (--ca-file)";
  }
  if (text.includes("Expired")) return "the server's certificate has expired";
  return undefined;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/**
 * Waits for a socket being connected, or for `stop`, whichever comes first.
 * A connect cannot be cancelled, so a socket that arrives after `stop` is
 * closed as soon as it does.
 */
function connected<T extends Deno.Conn>(connecting: Promise<T>, stop: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onStop = () => {
      connecting.then(closeQuietly, () => {});
      reject(stop.reason);
    };
    if (stop.aborted) return onStop();
    stop.addEventListener("abort", onStop, { once: true });
    connecting.then(resolve, reject).finally(() => stop.removeEventListener("abort", onStop));
  });
}

async function open(
  endpoint: Endpoint,
  options: DialOptions,
  stop: AbortSignal,
): Promise<Deno.Conn> {
  switch (endpoint.transport) {
    case "unix":
      return await connected(Deno.connect({ transport: "unix", path: endpoint.path }), stop);
    case "tls": {
      const certs = await readCaCerts(options);
      stop.throwIfAborted();
      const conn = await connected(
        Deno.connectTls({ hostname: endpoint.hostname, port: endpoint.port, caCerts: certs }),
        stop,
      );
      // Closing the connection is what ends a handshake in flight. Deno
      // then releases the resource at once, but its TLS task keeps the TCP
      // socket until the peer answers or closes it.
      const onStop = () => closeQuietly(conn);
      stop.addEventListener("abort", onStop, { once: true });
      try {
        stop.throwIfAborted();
        // Certificate problems surface here rather than at the first read.
        await conn.handshake();
        stop.throwIfAborted();
      } catch (error) {
        closeQuietly(conn);
        throw stop.aborted ? stop.reason : error;
      } finally {
        stop.removeEventListener("abort", onStop);
      }
      return conn;
    }
    default:
      return await connected(
        Deno.connect({ hostname: endpoint.hostname, port: endpoint.port }),
        stop,
      );
  }
}

/**
 * Connects over TCP, TLS or a Unix socket. For TLS the handshake is done
 * before the promise resolves, so certificate errors reject it. The connect
 * and the handshake together are bounded by `timeoutMs` (10 s by default)
 * and can be given up with `signal`; a socket that connects after either is
 * closed at once.
 *
 * @param options Where and how to connect, or a URL: `tcp://127.0.0.1:9000`,
 * `tls://example.com:9443`, `unix:///run/app.sock`; `quic://…` and
 * `transport: "quic"` go to {@linkcode dialQuic}; `ws://host:port/path`,
 * `wss://…` or `{ url, ...WebSocketDialOptions }` open a WebSocket with
 * streamwire's own client (docs/PROTOCOL.md, "WebSocket").
 * @returns The open connection.
 * @throws {StreamwireError} `invalid_argument` for a bad URL or option,
 * `permission_denied` without the permission, `unavailable` when the peer
 * cannot be reached or the TLS handshake fails, `deadline_exceeded` past
 * `timeoutMs`, `cancelled` when `signal` is aborted.
 *
 * @example Connect to a listener by its address
 * ```ts
 * import { dial, listen } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = listen({ port: 0 });
 * const client = await dial(listener.addr);
 * assert.equal(client.transport, "tcp");
 * assert.equal(client.remoteAddr, listener.addr);
 * client.close();
 * listener.close();
 * await client.closed;
 * ```
 *
 * @example Nobody listening
 * ```ts
 * import { dial, listen } from "@streamwire/streamwire/transport";
 * import { Status, StreamwireError } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const listener = listen({ port: 0 });
 * listener.close();
 * await assert.rejects(dial(listener.addr), (error) => {
 *   assert.ok(error instanceof StreamwireError);
 *   assert.equal(error.code, Status.UNAVAILABLE);
 *   return true;
 * });
 * ```
 *
 * @example Give up with a signal
 * ```ts
 * import { dial } from "@streamwire/streamwire/transport";
 * import { Status } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * controller.abort();
 * await assert.rejects(
 *   dial({ port: 9000, signal: controller.signal, timeoutMs: 5000 }),
 *   { code: Status.CANCELLED },
 * );
 * ```
 */
export async function dial(
  options: DialOptions | WebSocketDialTarget | string | URL,
): Promise<Connection> {
  // WebSocket: streamwire's own RFC 6455 client over a socket dialled here.
  if (isWebSocketTarget(options)) {
    return await dialWebSocketOver(options as WebSocketDialTarget | string | URL, dial);
  }
  // QUIC (experimental) has a module of its own.
  if (isQuic(options)) return await dialQuic(options as QuicDialOptions | string | URL);
  const endpoint = toEndpoint(options as EndpointOptions | string | URL);
  const settings: DialOptions = typeof options === "string" || options instanceof URL
    ? {}
    : options as DialOptions;
  const connectionOptions: ConnectionOptions = {
    ...checkReadSizes(settings),
    allowHalfOpen: settings.allowHalfOpen ?? false,
  };
  const timeoutMs = checkTimeout(settings.timeoutMs);
  const where = formatEndpoint(endpoint);
  const signal = settings.signal;
  const cancelled = () =>
    new StreamwireError(Status.CANCELLED, `Dial to '${where}' was cancelled`, {
      cause: signal?.reason,
    });
  if (signal?.aborted) throw cancelled();
  // One signal for both ways of giving up, its reason the error to reject with.
  const stop = new AbortController();
  const onAbort = () => stop.abort(cancelled());
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeoutMs > MAX_TIMER_MS ? undefined : setTimeout(() => {
    stop.abort(
      new StreamwireError(
        Status.DEADLINE_EXCEEDED,
        `Dial to '${where}' did not complete within timeoutMs '${timeoutMs}'`,
      ),
    );
  }, timeoutMs);
  let conn: Deno.Conn;
  try {
    conn = await open(endpoint, settings, stop.signal);
    // Given up on while the last step resolved: it is given up on.
    if (stop.signal.aborted) {
      closeQuietly(conn);
      throw stop.signal.reason;
    }
  } catch (error) {
    if (error instanceof StreamwireError) throw error;
    const hint = certificateHint(error);
    throw netError(error, `Cannot connect to '${where}'${hint ? ` (${hint})` : ""}`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  return new SocketConnection(conn, endpoint.transport, connectionOptions);
}
