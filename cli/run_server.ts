/**
 * Runs the demo application server from a {@linkcode ServeConfig}.
 *
 * @module
 */

import { adminApp } from "../rpc/admin.ts";
import { demoMethods } from "../rpc/demo.ts";
import { RpcServer } from "../rpc/server.ts";
import type { ServeConfig } from "./config.ts";

/** A running server. */
export interface RunningServer {
  /** The RPC server. */
  server: RpcServer;
  /** Address it listens on, in URL form. */
  addr: string;
  /** Address of the admin HTTP API, if it runs. */
  adminAddr: string | undefined;
  /** Graceful shutdown: GOAWAY, drain, close. */
  shutdown(): Promise<void>;
}

/**
 * Starts the demo application (echo and chat rooms) on the configured
 * address, and the admin HTTP API unless `adminPort` is 0.
 *
 * @param config Server settings.
 * @returns The running server.
 *
 * @example Usage
 * ```ts
 * import { DEFAULT_CONFIG, runServer } from "@streamwire/streamwire/cli";
 * import { connect } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0 });
 * const client = await connect(running.addr);
 * assert.equal(await client.call("echo", "ping"), "ping");
 * await client.close();
 * await running.shutdown();
 * ```
 */
export function runServer(config: ServeConfig): RunningServer {
  const server: RpcServer = new RpcServer({
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
  const addr = server.listen({
    transport: tls ? "tls" : "tcp",
    hostname: config.host,
    port: config.port,
    certFile: config.certFile,
    keyFile: config.keyFile,
  });
  let admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  if (config.adminPort > 0) {
    admin = Deno.serve({
      hostname: config.adminHost,
      port: config.adminPort,
      onListen: () => {},
    }, adminApp(server, { token: config.adminToken }).fetch);
  }
  const adminAddr = admin && `http://${admin.addr.hostname}:${admin.addr.port}`;
  return {
    server,
    addr,
    adminAddr,
    async shutdown() {
      await Promise.all([server.shutdown(), admin?.shutdown()]);
    },
  };
}
