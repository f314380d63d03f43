/**
 * Opening a connection over TCP, TLS or a Unix socket.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, ConnectionOptions } from "./connection.ts";
import { type Endpoint, formatEndpoint, netError, toEndpoint } from "./_address.ts";
import { checkReadSizes, SocketConnection } from "./_socket_connection.ts";

/** Options of {@linkcode dial}. */
export interface DialOptions extends ConnectionOptions {
  /**
   * The socket kind.
   *
   * @default {"tcp"}
   */
  transport?: "tcp" | "tls" | "unix";
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
}

async function caCerts(options: DialOptions): Promise<string[] | undefined> {
  const certs = options.caCerts ? [...options.caCerts] : [];
  if (options.caFile !== undefined) {
    try {
      certs.push(await Deno.readTextFile(options.caFile));
    } catch (error) {
      throw netError(error, `Cannot read caFile '${options.caFile}'`, Status.INVALID_ARGUMENT);
    }
  }
  return certs.length ? certs : undefined;
}

async function open(endpoint: Endpoint, options: DialOptions): Promise<Deno.Conn> {
  switch (endpoint.transport) {
    case "unix":
      return await Deno.connect({ transport: "unix", path: endpoint.path });
    case "tls": {
      const conn = await Deno.connectTls({
        hostname: endpoint.hostname,
        port: endpoint.port,
        caCerts: await caCerts(options),
      });
      try {
        // Certificate problems surface here rather than at the first read.
        await conn.handshake();
      } catch (error) {
        conn.close();
        throw error;
      }
      return conn;
    }
    default:
      return await Deno.connect({ hostname: endpoint.hostname, port: endpoint.port });
  }
}

/**
 * Connects over TCP, TLS or a Unix socket. For TLS the handshake is done
 * before the promise resolves, so certificate errors reject it.
 *
 * @param options Where and how to connect, or a URL: `tcp://127.0.0.1:9000`,
 * `tls://example.com:9443`, `unix:///run/app.sock`.
 * @returns The open connection.
 * @throws {StreamwireError} `invalid_argument` for a bad URL or option,
 * `permission_denied` without the permission, `unavailable` when the peer
 * cannot be reached or the TLS handshake fails.
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
 */
export async function dial(options: DialOptions | string | URL): Promise<Connection> {
  const endpoint = toEndpoint(options);
  const settings: DialOptions = typeof options === "string" || options instanceof URL
    ? {}
    : options;
  const connectionOptions: ConnectionOptions = {
    ...checkReadSizes(settings),
    allowHalfOpen: settings.allowHalfOpen ?? false,
  };
  let conn: Deno.Conn;
  try {
    conn = await open(endpoint, settings);
  } catch (error) {
    if (error instanceof StreamwireError) throw error;
    throw netError(error, `Cannot connect to '${formatEndpoint(endpoint)}'`);
  }
  return new SocketConnection(conn, endpoint.transport, connectionOptions);
}
