/**
 * Accepting connections over TCP, TLS or a Unix socket.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, ConnectionOptions, Listener } from "./connection.ts";
import {
  type Endpoint,
  type EndpointOptions,
  formatAddr,
  formatEndpoint,
  netError,
  readPem,
  type SocketTransport,
  toEndpoint,
} from "./_address.ts";
import { checkReadSizes, SocketConnection } from "./_socket_connection.ts";
import { isQuic, listenQuic, type QuicListenOptions } from "./quic.ts";
import { isWebSocketTarget } from "./_websocket_frames.ts";
import { listenWebSocket, type WebSocketListenOptions } from "./websocket_listen.ts";

/** Options of {@linkcode listen}. */
export interface ListenOptions extends ConnectionOptions {
  /**
   * The socket kind; `"quic"` listens with {@linkcode listenQuic}.
   *
   * @default {"tcp"}
   */
  transport?: "tcp" | "tls" | "unix" | "quic";
  /**
   * The address to bind (tcp, tls). Loopback by default, so that nothing is
   * exposed to the network by accident; `"0.0.0.0"` listens everywhere.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to bind (tcp, tls); `0` picks a free port, which
   * {@linkcode Listener.addr} then reports.
   *
   * @default {9000}
   */
  port?: number;
  /**
   * The socket file (unix); required for unix, made absolute against the
   * working directory. Closing the listener removes it.
   */
  path?: string;
  /** Certificate chain in PEM (tls); `certFile` reads it from a file instead. */
  cert?: string;
  /** Private key in PEM (tls); `keyFile` reads it from a file instead. */
  key?: string;
  /** Path of the PEM certificate chain (tls), read when listening. */
  certFile?: string;
  /** Path of the PEM private key (tls), read when listening. */
  keyFile?: string;
}

/** First pause after a failed accept, doubled up to {@linkcode MAX_ACCEPT_DELAY}. */
const MIN_ACCEPT_DELAY = 5;
/** Longest pause between accept retries (ms): running out of descriptors is usually brief. */
const MAX_ACCEPT_DELAY = 1000;

function open(endpoint: Endpoint, options: ListenOptions): Deno.Listener {
  switch (endpoint.transport) {
    case "unix":
      return Deno.listen({ transport: "unix", path: endpoint.path });
    case "tls": {
      const cert = readPem(options, "cert", "tls");
      const key = readPem(options, "key", "tls");
      return Deno.listenTls({ hostname: endpoint.hostname, port: endpoint.port, cert, key });
    }
    default:
      return Deno.listen({ hostname: endpoint.hostname, port: endpoint.port });
  }
}

/** A `Deno.Listener` whose iteration yields {@linkcode Connection}s. */
class SocketListener implements Listener {
  readonly addr: string;
  #listener: Deno.Listener;
  #transport: SocketTransport;
  #options: ConnectionOptions;
  #closed = false;
  #wakeSleepers = new Set<() => void>();
  #socketPath: string;

  constructor(listener: Deno.Listener, endpoint: Endpoint, options: ConnectionOptions) {
    this.#listener = listener;
    this.#transport = endpoint.transport;
    this.#socketPath = endpoint.path;
    this.#options = options;
    this.addr = formatAddr(endpoint.transport, listener.addr);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    let delay = 0;
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (
          this.#closed || error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted
        ) return;
        // EMFILE, ECONNABORTED and the like: the listener still works, so
        // back off a little and accept again (as Go's net/http does).
        delay = Math.min(Math.max(delay * 2, MIN_ACCEPT_DELAY), MAX_ACCEPT_DELAY);
        await this.#sleep(delay);
        continue;
      }
      delay = 0;
      let connection: SocketConnection;
      try {
        connection = new SocketConnection(conn, this.#transport, this.#options);
      } catch {
        // The options were checked by listen(): only a broken socket lands here.
        conn.close();
        continue;
      }
      yield connection;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    if (this.#socketPath) {
      // The socket file is ours: remove it, so that the path can be listened
      // on again (as Go's UnixListener does).
      try {
        Deno.removeSync(this.#socketPath);
      } catch {
        // Gone already, or not ours to remove.
      }
    }
    for (const wake of this.#wakeSleepers) wake();
  }

  /** A pause that close() cuts short, leaving no timer behind. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakeSleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakeSleepers.add(wake);
    });
  }
}

/**
 * Listens for connections over TCP, TLS or a Unix socket.
 *
 * @param options Where and how to listen, or a URL: `tcp://127.0.0.1:9000`,
 * `tls://0.0.0.0:9443` (then `cert` and `key` need the options object),
 * `unix:///run/app.sock`; `quic://…` and `transport: "quic"` go to
 * {@linkcode listenQuic}; `ws://host:port/path`, `wss://…` (then `cert` and
 * `key` need the options object) or `{ url, ...WebSocketListenOptions }`
 * go to {@linkcode listenWebSocket}.
 * @returns A listener: iterate it for connections, close it to stop.
 * @throws {StreamwireError} `invalid_argument` for a bad URL or option,
 * `permission_denied` without the permission, `already_exists` when the
 * address is in use, `unavailable` when it cannot be bound otherwise.
 *
 * @example Echo server over TCP
 * ```ts
 * import { dial, listen } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * assert.match(listener.addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
 * const served = (async () => {
 *   for await (const conn of listener) {
 *     await conn.readable.pipeTo(conn.writable);
 *     return;
 *   }
 * })();
 *
 * const client = await dial(listener.addr);
 * const writer = client.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close();
 * const reply = await new Response(client.readable).text();
 * assert.equal(reply, "hello");
 * await served;
 * listener.close();
 * await client.closed;
 * ```
 *
 * @example A bad URL
 * ```ts
 * import { listen } from "@streamwire/streamwire/transport";
 * import { StreamwireError } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => listen("http://localhost:80"), StreamwireError);
 * ```
 */
export function listen(options: ListenOptions | WebSocketListenOptions | string | URL): Listener {
  // WebSocket: sessions upgraded by an HTTP server of their own.
  if (isWebSocketTarget(options)) {
    return listenWebSocket(options as WebSocketListenOptions | string | URL);
  }
  // QUIC (experimental) has a module of its own.
  if (isQuic(options)) return listenQuic(options as QuicListenOptions | string | URL);
  const endpoint = toEndpoint(options as EndpointOptions | string | URL);
  const settings: ListenOptions = typeof options === "string" || options instanceof URL
    ? {}
    : options as ListenOptions;
  const connectionOptions: ConnectionOptions = {
    ...checkReadSizes(settings),
    allowHalfOpen: settings.allowHalfOpen ?? false,
  };
  let listener: Deno.Listener;
  try {
    listener = open(endpoint, settings);
  } catch (error) {
    if (error instanceof StreamwireError) throw error;
    const where = formatEndpoint(endpoint);
    if (error instanceof Deno.errors.AddrInUse) {
      throw netError(error, `Cannot listen on '${where}'`, Status.ALREADY_EXISTS);
    }
    if (error instanceof Deno.errors.InvalidData || error instanceof TypeError) {
      throw netError(error, `Cannot listen on '${where}'`, Status.INVALID_ARGUMENT);
    }
    throw netError(error, `Cannot listen on '${where}'`);
  }
  return new SocketListener(listener, endpoint, connectionOptions);
}
