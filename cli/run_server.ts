/**
 * Runs the demo application server from a {@linkcode ServeConfig}.
 *
 * @module
 */

import { demoAssets } from "../browser/demo_assets.ts";
import { adminApp } from "../rpc/admin.ts";
import { demoMethods } from "../rpc/demo.ts";
import { RpcServer } from "../rpc/server.ts";
import { jsonLogger, type LogFunction, type Logger } from "../rpc/logger.ts";
import { listenWebSocket } from "../transport/websocket_listen.ts";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { adminPortOf, type ServeConfig } from "./config.ts";

/** Options of {@linkcode runServer} beside its settings. */
export interface RunServerOptions {
  /**
   * Where the server logs (see `RpcServer`'s `logger`).
   *
   * @default {JSON lines on stderr at the configured `logLevel`}
   */
  logger?: Logger | LogFunction;
}

/** A running server. */
export interface RunningServer {
  /** The RPC server. */
  server: RpcServer;
  /** Address it listens on, in URL form. */
  addr: string;
  /** Address of the admin HTTP API, if it runs. */
  adminAddr: string | undefined;
  /** Address of the WebSocket listener (`ws://host:port/path`), if `wsPort` is set. */
  wsAddr: string | undefined;
  /** Graceful shutdown: GOAWAY, drain, close. */
  shutdown(): Promise<void>;
  /**
   * Serves `fetch` on the admin port for the paths under `prefix` (the
   * cluster's `/cluster`, say), ahead of the admin API; nothing without the
   * admin API. `fetch` checks its own token.
   *
   * @param prefix A path like `/cluster`: it and every path below it.
   * @param fetch Handles those requests.
   */
  mountAdmin(prefix: string, fetch: (request: Request) => Response | Promise<Response>): void;
}

/**
 * Starts the demo application (echo and chat rooms) on the configured
 * address, over WebSocket too when `wsPort` is set (at `wsPath`, the same
 * server: one chat room for both), and the admin HTTP API unless `admin`
 * is false (on {@linkcode adminPortOf}) with its dashboard at `/`, and the
 * browser demo page at `/demo` when WebSocket is on.
 *
 * @param config Server settings.
 * @param options Where to log.
 * @returns The running server.
 * @throws {StreamwireError} When a port cannot be bound (`unavailable`,
 *   `permission_denied`) or a TLS file cannot be read (`invalid_argument`);
 *   nothing is left listening.
 *
 * @example Usage
 * ```ts
 * import { DEFAULT_CONFIG, runServer } from "@streamwire/streamwire/cli";
 * import { connect } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const running = runServer({ ...DEFAULT_CONFIG, port: 0, admin: false });
 * const client = await connect(running.addr);
 * assert.equal(await client.call("echo", "ping"), "ping");
 * await client.close();
 * await running.shutdown();
 * ```
 */
export function runServer(config: ServeConfig, options: RunServerOptions = {}): RunningServer {
  const server: RpcServer = new RpcServer({
    logger: options.logger ?? jsonLogger({ level: config.logLevel }),
    methods: demoMethods(() => server),
    maxConnections: config.maxConnections,
    heartbeatMs: config.heartbeatMs,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    drainTimeoutMs: config.drainTimeoutMs,
    maxFrame: config.maxFrame,
    window: config.window,
    maxConcurrentCalls: config.maxConcurrentCalls,
    token: config.token,
  });
  const tls = config.certFile !== undefined && config.keyFile !== undefined;
  let addr: string;
  try {
    addr = server.listen({
      transport: tls ? "tls" : "tcp",
      hostname: config.host,
      port: config.port,
      certFile: config.certFile,
      keyFile: config.keyFile,
    });
  } catch (error) {
    server.shutdown();
    throw error;
  }
  let wsAddr: string | undefined;
  if (config.wsPort !== undefined) {
    // The same RpcServer: WebSocket sessions share topics and broadcasts with TCP ones.
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    try {
      const listener = listenWebSocket({
        url: `${tls ? "wss" : "ws"}://${host}:${config.wsPort}${config.wsPath}`,
        certFile: config.certFile,
        keyFile: config.keyFile,
        maxFrame: config.maxFrame,
      });
      server.serve(listener);
      wsAddr = listener.addr;
    } catch (error) {
      server.shutdown();
      throw error;
    }
  }
  let admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  // Ends the dashboard's event streams and taps, which the admin server's shutdown would wait for.
  const closing = new AbortController();
  const mounts: [string, (request: Request) => Response | Promise<Response>][] = [];
  const mounted = (request: Request) => {
    if (mounts.length === 0) return undefined;
    const path = new URL(request.url).pathname;
    for (const [prefix, fetch] of mounts) {
      if (path === prefix || path.startsWith(prefix + "/")) return fetch(request);
    }
  };
  const adminPort = adminPortOf(config);
  if (adminPort !== undefined) {
    try {
      const api = adminApp(server, { token: config.adminToken, signal: closing.signal }).fetch;
      // With WebSocket on, the demo page (`/demo`) and the browser bundle
      // (`/streamwire.js`) are served here too, without the admin token
      // (docs/BROWSER.md); the page connects to the WebSocket port.
      const page = wsAddr === undefined ? undefined : demoAssets({
        webSocket: { port: Number(new URL(wsAddr).port), path: config.wsPath, secure: tls },
      });
      admin = Deno.serve({
        hostname: config.adminHost,
        port: adminPort,
        onListen: () => {},
      }, (request, info) => page?.(request) ?? mounted(request) ?? api(request, info));
    } catch (error) {
      server.shutdown();
      const code = error instanceof Deno.errors.AddrInUse
        ? Status.ALREADY_EXISTS
        : error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
        ? Status.PERMISSION_DENIED
        : Status.UNAVAILABLE;
      throw new StreamwireError(
        code,
        `Cannot listen on 'http://${config.adminHost}:${adminPort}' (admin API): ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
  }
  const adminAddr = admin && `http://${admin.addr.hostname}:${admin.addr.port}`;
  return {
    server,
    addr,
    adminAddr,
    wsAddr,
    async shutdown() {
      closing.abort();
      await Promise.all([server.shutdown(), admin?.shutdown()]);
    },
    mountAdmin(prefix, fetch) {
      mounts.push([prefix, fetch]);
    },
  };
}
