/**
 * Accepting streamwire sessions over WebSocket: on a port of their own
 * ({@linkcode listenWebSocket}, which `listen("ws://…")` calls), or mounted
 * on an application's own HTTP server ({@linkcode webSocketHandler}). Either
 * way the result is a {@linkcode Listener} of {@linkcode Connection}s, served
 * like TCP ones. The mapping is in docs/PROTOCOL.md, section "WebSocket".
 *
 * @module
 */

import { DEFAULT_MAX_FRAME, HEADER_SIZE, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, Listener } from "./connection.ts";
import { tokensEqual } from "./handshake.ts";
import { hostUrl, netError, readPem } from "./_address.ts";
import { ApiChannel } from "./_websocket_api.ts";
import { WebSocketConnection } from "./_websocket_connection.ts";
import { SUBPROTOCOL } from "./_websocket_frames.ts";

export { SUBPROTOCOL };

/** Bounds of a WebSocket connection, each stopping a peer from making it hold more. */
export interface WebSocketLimits {
  /**
   * Largest frame body until the handshake names the negotiated one; a
   * message larger than maxFrame + 17 bytes is refused with ERROR 8 and
   * close code 1009. Give it the server's `maxFrame`.
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Bytes of received messages the session has not read yet. The WebSocket
   * API cannot pause a sender, so a peer that keeps sending while its
   * session does not read (its answers pile up unread) is refused past this
   * with ERROR 8 and close code 1008. One message is always taken.
   *
   * @default {4194304}
   */
  maxInboundBytes?: number;
  /**
   * Bytes the socket may hold unsent (`bufferedAmount`) before a write
   * waits for it to drain, so a peer that does not read holds at most this
   * plus one message here, and the session's own queue bound applies.
   *
   * @default {1048576}
   */
  maxBufferedAmount?: number;
}

/** Options of {@linkcode webSocketHandler}. */
export interface WebSocketHandlerOptions extends WebSocketLimits {
  /**
   * The URL path served; other paths get 404.
   *
   * @default {"/"}
   */
  path?: string;
  /**
   * Origins (`scheme://host[:port]`) whose pages may connect. A request
   * whose `Origin` header is not in the list gets 403; a request without
   * one (not from a browser) is let through. Unset, every origin may.
   */
  origins?: readonly string[];
  /**
   * A secret checked before the upgrade: from the `token` query parameter
   * (what a browser can send) or an `authorization: Bearer` header. A
   * request without it gets 401. Independent of the HELLO token.
   */
  token?: string;
  /**
   * Upgraded connections not yet taken by the listener's iteration; past
   * it requests get 503.
   *
   * @default {128}
   */
  backlog?: number;
  /** What {@linkcode Listener.addr} reports. @default {the path} */
  addr?: string;
}

/** Where the client is, as `Deno.serve` reports it (its handler's second argument). */
export interface RequestInfo {
  /** The peer's address (a TCP one has hostname and port). */
  remoteAddr?: { transport?: string; hostname?: string; port?: number };
}

/** A request handler and the listener of the sessions it upgrades. */
export interface WebSocketHandler {
  /**
   * Answers one HTTP request: 101 and a new connection on the listener, or
   * 404 (path), 426 (not a WebSocket upgrade), 403 (origin), 401 (token),
   * 400 (no `streamwire.v1` subprotocol offered), 503 (backlog full or
   * listener closed).
   *
   * @param request The request.
   * @param info Where it came from, for the connection's `remoteAddr`.
   * @returns The response.
   */
  handle(request: Request, info?: RequestInfo): Response;
  /** The connections upgraded by `handle`. */
  readonly listener: Listener;
}

/** Options of {@linkcode listenWebSocket}. */
export interface WebSocketListenOptions extends Omit<WebSocketHandlerOptions, "path" | "addr"> {
  /**
   * `ws://host:port/path` or `wss://host:port/path`; the path is the one
   * served. Port 0 picks a free one, which {@linkcode Listener.addr} reports.
   */
  url: string | URL;
  /** Certificate chain in PEM (wss); `certFile` reads it from a file instead. */
  cert?: string;
  /** Private key in PEM (wss); `keyFile` reads it from a file instead. */
  key?: string;
  /** Path of the PEM certificate chain (wss). */
  certFile?: string;
  /** Path of the PEM private key (wss). */
  keyFile?: string;
}

/** A {@linkcode Listener} on a port of its own. */
export interface WebSocketListener extends Listener {
  /**
   * Resolves once the port is released: after `close()`, when every
   * connection accepted from it has closed too (closing the HTTP server
   * earlier would cut them off, GOAWAY and all).
   */
  readonly closed: Promise<void>;
}

const DEFAULTS = {
  maxInboundBytes: 4 * 1024 * 1024,
  maxBufferedAmount: 1024 * 1024,
  backlog: 128,
} as const;

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

function positive(value: number | undefined, name: string, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw invalid(`${name} '${value}' must be a positive integer`);
  }
  return n;
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });
}

/** Accepted connections waiting for the iteration. */
class Backlog implements Listener {
  readonly addr: string;
  closed = false;
  #queue: Connection[] = [];
  #wake: (() => void) | undefined;
  #onClose: () => void;

  constructor(addr: string, onClose: () => void) {
    this.addr = addr;
    this.#onClose = onClose;
  }

  get size(): number {
    return this.#queue.length;
  }

  push(conn: Connection): void {
    this.#queue.push(conn);
    this.#notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (!this.closed) {
      const conn = this.#queue.shift();
      if (conn !== undefined) {
        yield conn;
        continue;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Upgraded but never taken: nobody will serve them.
    for (const conn of this.#queue.splice(0)) conn.close();
    this.#notify();
    this.#onClose();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The handler with a hook for the listener's own port. */
function makeHandler(
  options: WebSocketHandlerOptions,
  transport: "ws" | "wss",
  onIdle: () => void,
): WebSocketHandler {
  const path = options.path ?? "/";
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw invalid(`WebSocket path '${path}' must start with '/'`);
  }
  const maxFrame = positive(options.maxFrame, "maxFrame", DEFAULT_MAX_FRAME);
  const maxInboundBytes = positive(
    options.maxInboundBytes,
    "maxInboundBytes",
    DEFAULTS.maxInboundBytes,
  );
  const maxBufferedAmount = positive(
    options.maxBufferedAmount,
    "maxBufferedAmount",
    DEFAULTS.maxBufferedAmount,
  );
  const backlogSize = positive(options.backlog, "backlog", DEFAULTS.backlog);
  const origins = options.origins === undefined ? undefined : new Set(options.origins);
  const token = options.token;
  let live = 0;
  const listener = new Backlog(options.addr ?? path, () => {
    if (live === 0) onIdle();
  });
  const closedOne = () => {
    if (--live === 0 && listener.closed) onIdle();
  };

  const handle = (request: Request, info?: RequestInfo): Response => {
    const url = new URL(request.url);
    if (url.pathname !== path) return text(404, "Not found\n");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return text(426, `WebSocket only, subprotocol '${SUBPROTOCOL}'\n`, { upgrade: "websocket" });
    }
    if (listener.closed || listener.size >= backlogSize) {
      return text(503, "Not accepting connections\n");
    }
    const origin = request.headers.get("origin");
    if (origin !== null && origins !== undefined && !origins.has(origin)) {
      return text(403, `Origin '${origin}' is not allowed\n`);
    }
    if (token !== undefined) {
      const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
      const given = bearer ?? url.searchParams.get("token");
      if (given === null || !tokensEqual(given, token)) {
        return text(401, "Token required\n", { "www-authenticate": "Bearer" });
      }
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      return text(400, `Subprotocol '${SUBPROTOCOL}' required\n`);
    }
    // Read before the upgrade: the request is gone after it.
    const peer = info?.remoteAddr;
    let upgraded: { socket: WebSocket; response: Response };
    try {
      // No WebSocket-level pings: the session's heartbeats keep both sides alive.
      upgraded = Deno.upgradeWebSocket(request, { protocol: SUBPROTOCOL, idleTimeout: 0 });
    } catch (error) {
      return text(400, `Bad WebSocket upgrade: ${(error as Error).message}\n`);
    }
    const channel = new ApiChannel(upgraded.socket, {
      maxInboundBytes,
      maxBufferedAmount,
      maxMessage: maxFrame + HEADER_SIZE,
    });
    const host = peer?.hostname?.includes(":") ? `[${peer.hostname}]` : peer?.hostname;
    live++;
    listener.push(
      new WebSocketConnection(channel, {
        transport,
        localAddr: listener.addr,
        remoteAddr: host !== undefined
          ? `${transport}://${host}:${peer?.port}`
          : `${transport}://unknown`,
        maxFrame,
        onClose: closedOne,
      }),
    );
    return upgraded.response;
  };
  return { handle, listener };
}

/**
 * A handler to mount on an application's own HTTP server: each request it
 * upgrades becomes a connection of its `listener`, which an `RpcServer` or
 * a transport `Server` serves. Checks, in order: path (404), upgrade (426),
 * backlog (503), origin (403), token (401), subprotocol (400).
 *
 * @param options Path, origins, token and bounds.
 * @returns The handler and its listener.
 * @throws {StreamwireError} `invalid_argument` for a bad option.
 *
 * @example Mounted on a Hono app next to other routes
 * ```ts
 * import { Hono } from "hono";
 * import { webSocketHandler } from "@streamwire/streamwire/transport";
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const rpc = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const ws = webSocketHandler({ path: "/ws" });
 * rpc.serve(ws.listener);
 * const app = new Hono();
 * app.get("/health", (c) => c.text("ok"));
 * app.get("/ws", (c) => ws.handle(c.req.raw, c.env as Deno.ServeHandlerInfo));
 * const http = Deno.serve({ port: 0, onListen() {} }, app.fetch);
 *
 * const client = await connect(`ws://127.0.0.1:${http.addr.port}/ws`);
 * assert.equal(await client.call("echo", "hi"), "hi");
 * await client.close();
 * await rpc.shutdown();
 * await http.shutdown();
 * ```
 */
export function webSocketHandler(options: WebSocketHandlerOptions = {}): WebSocketHandler {
  return makeHandler(options, "ws", () => {});
}

/**
 * Listens for WebSocket sessions on a port of its own (`Deno.serve`), at
 * one path. `listen("ws://…")` and `RpcServer.listen("ws://…")` call it.
 *
 * @param options A `ws://` or `wss://` URL, or the URL with options.
 * @returns A listener: iterate it for connections, close it to stop.
 * @throws {StreamwireError} `invalid_argument` for a bad URL or option,
 *   `already_exists` when the port is in use, `permission_denied` without
 *   the permission, `unavailable` otherwise.
 *
 * @example TCP and WebSocket sessions on one server
 * ```ts
 * import { listenWebSocket } from "@streamwire/streamwire/transport";
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const tcp = server.listen({ port: 0 });
 * const listener = listenWebSocket({ url: "ws://127.0.0.1:0/rpc", origins: [] });
 * assert.match(listener.addr, /^ws:\/\/127\.0\.0\.1:\d+\/rpc$/);
 * server.serve(listener);
 * const viaWs = await connect(listener.addr);
 * const viaTcp = await connect(tcp);
 * assert.equal(await viaWs.call("echo", 1), 1);
 * assert.equal(await viaTcp.call("echo", 2), 2);
 * assert.equal(server.transport.sessionCount, 2);
 * await Promise.all([viaWs.close(), viaTcp.close()]);
 * await server.shutdown();
 * await listener.closed;
 * ```
 */
export function listenWebSocket(
  options: WebSocketListenOptions | string | URL,
): WebSocketListener {
  const settings: WebSocketListenOptions = typeof options === "string" || options instanceof URL
    ? { url: options }
    : options;
  const text = String(settings.url);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`Address '${text}' is not a URL such as 'ws://127.0.0.1:9002/'`);
  }
  const transport = url.protocol.slice(0, -1);
  if (transport !== "ws" && transport !== "wss") {
    throw invalid(`Address '${text}' has scheme '${transport}', expected ws or wss`);
  }
  if (url.username || url.password || url.search || url.hash || !url.hostname) {
    throw invalid(`Address '${text}' needs a host and no credentials, query or fragment`);
  }
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === "" ? (transport === "ws" ? 80 : 443) : Number(url.port);
  const tls = transport === "wss"
    ? { cert: readPem(settings, "cert", "wss"), key: readPem(settings, "key", "wss") }
    : {};
  const finished = Promise.withResolvers<void>();
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  const release = () => {
    // Shutting the HTTP server down also ends upgraded sockets still closing.
    server?.shutdown().then(finished.resolve, finished.resolve);
  };
  let handler: WebSocketHandler | undefined;
  try {
    server = Deno.serve({
      hostname,
      port,
      ...tls,
      onListen() {},
      onError: () => text500(),
    }, (request, info) => handler!.handle(request, info));
  } catch (error) {
    const where = `${transport}://${url.host}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw netError(error, `Cannot listen on '${where}'`, Status.ALREADY_EXISTS);
    }
    if (error instanceof Deno.errors.InvalidData || error instanceof TypeError) {
      throw netError(error, `Cannot listen on '${where}'`, Status.INVALID_ARGUMENT);
    }
    throw netError(error, `Cannot listen on '${where}'`);
  }
  const addr = hostUrl(transport, server.addr.hostname, server.addr.port) + url.pathname;
  try {
    handler = makeHandler({ ...settings, path: url.pathname, addr }, transport, release);
  } catch (error) {
    server.shutdown();
    throw error;
  }
  const listener = handler.listener;
  return {
    addr,
    closed: finished.promise,
    close: () => listener.close(),
    [Symbol.asyncIterator]: () => listener[Symbol.asyncIterator](),
  };
}

function text500(): Response {
  return new Response("Internal error\n", { status: 500 });
}
