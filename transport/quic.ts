/**
 * QUIC (experimental): listening and dialing over `quic://`, on Deno's
 * unstable QUIC API (`Deno.QuicEndpoint`, `Deno.connectQuic`), which exists
 * only when Deno runs with `--unstable-net`. Without that flag both
 * functions throw a `StreamwireError` of code `unimplemented` that says so.
 *
 * One QUIC connection carries one session: the client opens one
 * bidirectional stream and the session's frames run over it unchanged,
 * with ALPN {@linkcode QUIC_ALPN}. QUIC always encrypts: the server needs a
 * certificate and key, the client trusts the server's CA (`caCerts` or
 * `caFile`) or a public one. `listen()` and `dial()` route `quic://` URLs
 * and `transport: "quic"` here.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, ConnectionOptions, Listener } from "./connection.ts";
import {
  checkHostPort,
  DEFAULT_HOSTNAME,
  DEFAULT_PORT,
  hostUrl,
  netError,
  readCaCerts,
  readPem,
  urlHostPort,
} from "./_address.ts";
import { checkReadSizes } from "./_socket_connection.ts";
import { quicApi, type QuicEndpoint, type QuicTransportParams } from "./_quic_api.ts";
import { QuicConnection } from "./_quic_connection.ts";
import { QuicListenerAdapter } from "./_quic_listener.ts";

/** The ALPN protocol both sides announce: QUIC requires one (RFC 9001 8.1). */
export const QUIC_ALPN = "streamwire/1";

/** Options of both {@linkcode listenQuic} and {@linkcode dialQuic}. */
export interface QuicOptions extends ConnectionOptions {
  /** The transport; `listen()` and `dial()` send `"quic"` here. */
  transport?: "quic";
  /**
   * The address to bind (listening, loopback by default so that nothing is
   * exposed by accident) or the host to connect to (dialing; also the name
   * the server's certificate must carry).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The UDP port to bind or connect to; `0` binds a free port, which
   * {@linkcode Listener.addr} then reports.
   *
   * @default {9000}
   */
  port?: number;
  /**
   * Milliseconds without a packet from the peer after which the connection
   * is dropped (and reads fail with `unavailable`): how long a peer that
   * vanished (no CONNECTION_CLOSE, as when its process is killed) keeps
   * its connection. The smaller of both sides' values applies.
   *
   * @default {30000}
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds of silence after which a keep-alive packet is sent, so an
   * idle but healthy connection does not reach `idleTimeoutMs`.
   *
   * @default {10000}
   */
  keepAliveMs?: number;
}

/** Options of {@linkcode listenQuic}: where to listen and the certificate. */
export interface QuicListenOptions extends QuicOptions {
  /** Certificate chain in PEM; `certFile` reads it from a file instead. */
  cert?: string;
  /** Private key in PEM; `keyFile` reads it from a file instead. */
  key?: string;
  /** Path of the PEM certificate chain, read when listening. */
  certFile?: string;
  /** Path of the PEM private key, read when listening. */
  keyFile?: string;
}

/** Options of {@linkcode dialQuic}: where to connect and whom to trust. */
export interface QuicDialOptions extends QuicOptions {
  /** Extra root certificates in PEM, trusted besides the built-in ones. */
  caCerts?: string[];
  /** Path of a PEM file of extra root certificates, read when connecting. */
  caFile?: string;
  /**
   * Bound in milliseconds on the QUIC handshake; past it the dial rejects
   * with `deadline_exceeded`. It stops a dial from waiting on a port where
   * nothing answers (UDP has no refusal to wait for).
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Aborting it gives up on the dial, which rejects with `cancelled`. */
  signal?: AbortSignal;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_KEEP_ALIVE_MS = 10_000;
const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

/**
 * Whether `target` is for QUIC: a `quic://` URL, or options with
 * `transport: "quic"`. `listen()` and `dial()` ask this first.
 *
 * @param target What `listen()` or `dial()` was given.
 * @returns `true` for QUIC.
 *
 * @example Usage
 * ```ts
 * import { isQuic } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isQuic("quic://127.0.0.1:9443"), true);
 * assert.equal(isQuic({ transport: "quic", port: 9443 }), true);
 * assert.equal(isQuic("tcp://127.0.0.1:9000"), false);
 * ```
 */
export function isQuic(target: unknown): boolean {
  if (typeof target === "string") return /^quic:/i.test(target);
  if (target instanceof URL) return target.protocol === "quic:";
  return typeof target === "object" && target !== null &&
    (target as { transport?: unknown }).transport === "quic";
}

/** Host and port of QUIC options or a `quic://host:port` URL, checked. */
function toHostPort(input: QuicOptions | string | URL): { hostname: string; port: number } {
  if (typeof input !== "string" && !(input instanceof URL)) return checkHostPort(input);
  const text = String(input);
  let url: URL;
  try {
    url = input instanceof URL ? input : new URL(text);
  } catch {
    throw invalid(`Address '${text}' is not a URL such as 'quic://127.0.0.1:9443'`);
  }
  if (url.protocol !== "quic:") throw invalid(`Address '${text}' is not a quic:// URL`);
  if (url.username || url.password || url.search || url.hash) {
    throw invalid(`Address '${text}' must not carry credentials, a query or a fragment`);
  }
  return checkHostPort(urlHostPort(url, text));
}

/** The URL form of a QUIC address. */
function formatQuic(hostname: string, port: number): string {
  return hostUrl("quic", hostname, port);
}

/** The address as given, for a message written before it is checked. */
function label(options: QuicOptions | string | URL): string {
  if (typeof options === "string" || options instanceof URL) return String(options);
  return formatQuic(String(options.hostname ?? DEFAULT_HOSTNAME), options.port ?? DEFAULT_PORT);
}

function closeQuietly(endpoint: QuicEndpoint): void {
  try {
    endpoint.close();
  } catch {
    // Closed already.
  }
}

function positive(name: string, value: number): number {
  if (typeof value !== "number" || !(value > 0)) {
    throw invalid(`${name} '${value}' must be a positive number of milliseconds`);
  }
  return value;
}

/** The checked options every QUIC connection shares. */
function common(options: QuicOptions) {
  const idle = positive("idleTimeoutMs", options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  const keepAlive = positive("keepAliveMs", options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS);
  return {
    sizes: checkReadSizes(options),
    allowHalfOpen: options.allowHalfOpen ?? false,
    params: { maxIdleTimeout: idle, keepAliveInterval: keepAlive } as QuicTransportParams,
  };
}

/**
 * Listens for QUIC connections (experimental; needs `--unstable-net`).
 * Each connection is yielded once its handshake is done and its client
 * opened its stream, which the client does with its first bytes.
 *
 * @param options Where to listen and the certificate, or a `quic://` URL
 *   (which cannot carry the certificate, so only with options).
 * @returns A listener of {@linkcode Connection}s whose `transport` is
 *   `"quic"`; closing it stops accepting and leaves accepted connections
 *   open.
 * @throws {StreamwireError} `unimplemented` without `--unstable-net`,
 *   `invalid_argument` for a bad address, certificate or option,
 *   `already_exists` when the port is in use, `permission_denied` without
 *   the net permission, `unavailable` otherwise.
 *
 * @example Serve RPC over QUIC (needs --unstable-net, which `deno test` does not pass)
 * ```ts ignore
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import { listenQuic } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const listener = listenQuic({ port: 0, certFile: "cert.pem", keyFile: "key.pem" });
 * server.serve(listener);
 * const port = Number(new URL(listener.addr).port);
 * const client = await connect({ transport: "quic", hostname: "localhost", port, caFile: "ca.pem" });
 * assert.equal(await client.call("echo", "hi"), "hi");
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @example Without --unstable-net
 * ```ts
 * import { listenQuic } from "@streamwire/streamwire/transport";
 * import { Status } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => listenQuic({ port: 0, cert: "-", key: "-" }),
 *   { code: Status.UNIMPLEMENTED, message: /--unstable-net/ },
 * );
 * ```
 */
export function listenQuic(options: QuicListenOptions | string | URL): Listener {
  const api = quicApi(`listen on '${label(options)}'`);
  const { hostname, port } = toHostPort(options);
  const settings: QuicListenOptions = typeof options === "string" || options instanceof URL
    ? {}
    : options;
  const { sizes, allowHalfOpen, params } = common(settings);
  const cert = readPem(settings, "cert", "quic");
  const key = readPem(settings, "key", "quic");
  const where = formatQuic(hostname, port);
  let endpoint: QuicEndpoint | undefined;
  try {
    endpoint = new api.QuicEndpoint({ hostname, port });
    const listener = endpoint.listen({
      ...params,
      alpnProtocols: [QUIC_ALPN],
      cert,
      key,
      // One stream per connection, opened by the client; none the other way.
      maxConcurrentBidirectionalStreams: 1,
      maxConcurrentUnidirectionalStreams: 0,
    });
    const bound = endpoint.addr;
    return new QuicListenerAdapter({
      endpoint,
      listener,
      addr: formatQuic(bound.hostname, bound.port),
      sizes,
      allowHalfOpen,
      format: formatQuic,
    });
  } catch (error) {
    if (endpoint) closeQuietly(endpoint);
    if (error instanceof Deno.errors.AddrInUse) {
      throw netError(error, `Cannot listen on '${where}'`, Status.ALREADY_EXISTS);
    }
    if (error instanceof Deno.errors.InvalidData || error instanceof TypeError) {
      throw netError(error, `Cannot listen on '${where}'`, Status.INVALID_ARGUMENT);
    }
    throw netError(error, `Cannot listen on '${where}'`);
  }
}

/** What to do about a refused server certificate, if that is what happened. */
function refusal(error: unknown): string {
  const text = error instanceof Error ? error.message : "";
  if (text.includes("UnknownIssuer")) {
    return " (the server's certificate is not signed by a trusted CA: pass its CA as caFile)";
  }
  if (text.includes("NotValidForName")) {
    return " (the server's certificate does not name this host)";
  }
  if (text.includes("no application protocol") || text.includes("known protocol")) {
    return ` (the server does not speak ALPN '${QUIC_ALPN}')`;
  }
  return "";
}

/**
 * Connects over QUIC (experimental; needs `--unstable-net`): the QUIC
 * handshake, certificate check included, then one bidirectional stream.
 * The handshake is bounded by `timeoutMs` and can be given up with
 * `signal`. The connection has a UDP socket of its own, released when it
 * closes.
 *
 * @param options Where to connect and whom to trust, or a `quic://` URL
 *   (for a server whose certificate a public CA signed).
 * @returns The open connection; its `transport` is `"quic"`.
 * @throws {StreamwireError} `unimplemented` without `--unstable-net`,
 *   `invalid_argument` for a bad address or option, `unavailable` when the
 *   handshake fails (a certificate this side does not trust, say),
 *   `deadline_exceeded` past `timeoutMs`, `cancelled` when `signal` aborts.
 *
 * @example Connect with a private CA (needs --unstable-net, which `deno test` does not pass)
 * ```ts ignore
 * import { dialQuic } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const conn = await dialQuic({ hostname: "localhost", port: 9443, caFile: "ca.pem" });
 * assert.equal(conn.transport, "quic");
 * conn.close();
 * await conn.closed;
 * ```
 *
 * @example Without --unstable-net
 * ```ts
 * import { dialQuic } from "@streamwire/streamwire/transport";
 * import { Status } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(dialQuic("quic://127.0.0.1:9443"), { code: Status.UNIMPLEMENTED });
 * ```
 */
export async function dialQuic(options: QuicDialOptions | string | URL): Promise<Connection> {
  const api = quicApi(`dial '${label(options)}'`);
  const { hostname, port } = toHostPort(options);
  const settings: QuicDialOptions = typeof options === "string" || options instanceof URL
    ? {}
    : options;
  const { sizes, allowHalfOpen, params } = common(settings);
  const timeoutMs = positive("timeoutMs", settings.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
  const where = formatQuic(hostname, port);
  const signal = settings.signal;
  const cancelled = () =>
    new StreamwireError(Status.CANCELLED, `Dial to '${where}' was cancelled`, {
      cause: signal?.reason,
    });
  if (signal?.aborted) throw cancelled();
  const caCerts = await readCaCerts(settings);
  if (signal?.aborted) throw cancelled();
  // An IPv4 address needs an IPv4 socket; "::" takes names and IPv6.
  const local = /^\d+\.\d+\.\d+\.\d+$/.test(hostname) ? "0.0.0.0" : "::";
  let endpoint: QuicEndpoint;
  try {
    endpoint = new api.QuicEndpoint({ hostname: local, port: 0 });
  } catch (error) {
    throw netError(error, `Cannot connect to '${where}'`);
  }
  // Closing the endpoint is what ends a handshake in flight.
  let stopped: StreamwireError | undefined;
  const stop = (error: StreamwireError) => {
    stopped ??= error;
    closeQuietly(endpoint);
  };
  const onAbort = () => stop(cancelled());
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeoutMs >= 2 ** 31 ? undefined : setTimeout(() =>
    stop(
      new StreamwireError(
        Status.DEADLINE_EXCEEDED,
        `Dial to '${where}' did not complete within timeoutMs '${timeoutMs}'`,
      ),
    ), timeoutMs);
  try {
    const conn = await api.connectQuic({
      ...params,
      endpoint,
      hostname,
      port,
      alpnProtocols: [QUIC_ALPN],
      caCerts,
      // The server opens no streams.
      maxConcurrentBidirectionalStreams: 0,
      maxConcurrentUnidirectionalStreams: 0,
    });
    const stream = await conn.createBidirectionalStream();
    if (stopped) throw stopped;
    const bound = endpoint.addr;
    return new QuicConnection({
      conn,
      stream,
      localAddr: formatQuic(bound.hostname, bound.port),
      remoteAddr: formatQuic(conn.remoteAddr.hostname, conn.remoteAddr.port),
      sizes,
      allowHalfOpen,
      release: () => closeQuietly(endpoint),
    });
  } catch (error) {
    closeQuietly(endpoint);
    if (stopped) throw stopped;
    throw netError(error, `Cannot connect to '${where}'${refusal(error)}`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
