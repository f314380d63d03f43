// Addresses in URL form, both ways: parsing what listen() and dial() are
// given, formatting what Deno reports. Private to transport/.

import { nodeBuiltin } from "../codec/_platform.ts";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";

/** The socket transports of `listen()` and `dial()`. */
export type SocketTransport = "tcp" | "tls" | "unix";

/** Where to listen or connect, as given by the caller; the first fields of `DialOptions`. */
export interface EndpointOptions {
  /** The socket kind. */
  transport?: SocketTransport;
  /** Host name or address (tcp, tls). */
  hostname?: string;
  /** Port (tcp, tls). */
  port?: number;
  /** The socket file (unix). */
  path?: string;
}

/** A checked endpoint: every field present and valid for its transport. */
export interface Endpoint {
  transport: SocketTransport;
  hostname: string;
  port: number;
  /** Absolute socket path (unix only, else ""). */
  path: string;
}

/** Hostname when none is given: loopback, so nothing is exposed by accident. */
export const DEFAULT_HOSTNAME = "127.0.0.1";
/** Port when none is given. */
export const DEFAULT_PORT = 9000;

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

/**
 * Parses `tcp://host:port`, `tls://host:port` or `unix:///absolute/path`
 * into the fields of `DialOptions` and `ListenOptions`,
 * so other options (a `caFile`, a timeout) can be added to an address given
 * as a URL. A missing port is 9000.
 *
 * @param input The address.
 * @returns Transport, hostname and port, or the socket path.
 * @throws {StreamwireError} `invalid_argument` for anything else.
 *
 * @example Usage
 * ```ts
 * import { parseAddress } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseAddress("tls://localhost:9443"), {
 *   transport: "tls",
 *   hostname: "localhost",
 *   port: 9443,
 * });
 * ```
 */
export function parseAddress(input: string | URL): EndpointOptions {
  const text = String(input);
  let url: URL;
  try {
    url = input instanceof URL ? input : new URL(text);
  } catch {
    throw invalid(`Address '${text}' is not a URL such as 'tcp://127.0.0.1:9000'`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw invalid(`Address '${text}' must not carry credentials, a query or a fragment`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === "tcp" || scheme === "tls") return { transport: scheme, ...urlHostPort(url, text) };
  if (scheme === "unix") {
    if (url.host !== "") {
      throw invalid(`Address '${text}' must have an absolute path: 'unix:///path/to.sock'`);
    }
    if (url.pathname === "" || url.pathname === "/") {
      throw invalid(`Address '${text}' has no socket path`);
    }
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw invalid(`Address '${text}' has a malformed percent-encoding`);
    }
    return { transport: "unix", path };
  }
  throw invalid(`Address '${text}' has unsupported scheme '${scheme}', expected tcp, tls or unix`);
}

/** Checks and completes endpoint options, throwing `invalid_argument`. */
export function checkEndpoint(options: EndpointOptions): Endpoint {
  const transport = options.transport ?? "tcp";
  if (transport !== "tcp" && transport !== "tls" && transport !== "unix") {
    throw invalid(`Transport '${transport}' is not one of 'tcp', 'tls', 'unix'`);
  }
  if (transport === "unix") {
    const path = options.path;
    if (typeof path !== "string" || path === "") {
      throw invalid(`Transport 'unix' needs a 'path', got '${path}'`);
    }
    return { transport, hostname: "", port: 0, path: absolute(path) };
  }
  return { transport, ...checkHostPort(options), path: "" };
}

/**
 * Host and port of a `scheme://host:port` URL (credentials, query and
 * fragment already refused): no path, a host, port 9000 when none is given.
 */
export function urlHostPort(url: URL, text: string): { hostname: string; port: number } {
  if (!url.hostname) throw invalid(`Address '${text}' has no host`);
  if (url.pathname !== "" && url.pathname !== "/") {
    throw invalid(`Address '${text}' must not have a path`);
  }
  return {
    hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port === "" ? DEFAULT_PORT : Number(url.port),
  };
}

/** Hostname and port of options, defaulted and checked, throwing `invalid_argument`. */
export function checkHostPort(
  options: { hostname?: string; port?: number },
): { hostname: string; port: number } {
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  if (typeof hostname !== "string" || hostname === "") {
    throw invalid(`Hostname '${hostname}' must be a non-empty string`);
  }
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid(`Port '${port}' must be an integer in 0..65535`);
  }
  return { hostname, port };
}

/** Options or a URL to a checked endpoint. */
export function toEndpoint(input: EndpointOptions | string | URL): Endpoint {
  if (typeof input === "string" || input instanceof URL) return checkEndpoint(parseAddress(input));
  if (input === null || typeof input !== "object") {
    throw invalid(`Address '${input}' must be an options object, a string or a URL`);
  }
  return checkEndpoint(input);
}

/** Percent-encodes each segment of a socket path for the URL form. */
function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** The URL form of an endpoint: `tcp://127.0.0.1:9000`, `unix:///run/x.sock`. */
export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.transport === "unix") return `unix://${encodePath(endpoint.path)}`;
  return hostUrl(endpoint.transport, endpoint.hostname, endpoint.port);
}

/** `scheme://host:port`, an IPv6 address in brackets. */
export function hostUrl(scheme: string, hostname: string, port: number): string {
  return `${scheme}://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/**
 * The URL form of an address Deno reports. An unnamed Unix socket (the
 * usual client side) has an empty path: `"unix://"`.
 */
export function formatAddr(transport: SocketTransport, addr: Deno.Addr): string {
  if (addr.transport === "unix" || addr.transport === "unixpacket") {
    return `unix://${encodePath(addr.path ?? "")}`;
  }
  const { hostname, port } = addr as Deno.NetAddr;
  return formatEndpoint({ transport, hostname, port, path: "" });
}

/**
 * Wraps an error of Deno's network calls: permission problems keep their
 * meaning, everything else is `fallback` (usually `unavailable`).
 */
export function netError(
  error: unknown,
  message: string,
  fallback: number = Status.UNAVAILABLE,
): StreamwireError {
  if (error instanceof StreamwireError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  const code =
    error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ? Status.PERMISSION_DENIED
      : fallback;
  return new StreamwireError(code, `${message}: ${detail}`, { cause: error });
}

/** node:path's `resolve` (a Unix socket path made absolute); a web page has no such paths. */
const absolute: (path: string) => string =
  nodeBuiltin<{ resolve(path: string): string }>("node:path")?.resolve ?? ((path) => path);

/**
 * The extra root certificates of a TLS or QUIC dial: `caCerts`, plus the
 * PEM file `caFile` read now; undefined when there are none.
 */
export async function readCaCerts(
  options: { caCerts?: string[]; caFile?: string },
): Promise<string[] | undefined> {
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

/**
 * The PEM text of a listener's `cert` or `key`: the option itself, else the
 * file named by `certFile` or `keyFile`, read now.
 *
 * @param transport Named in the error when neither is given.
 */
export function readPem(
  options: { cert?: string; key?: string; certFile?: string; keyFile?: string },
  name: "cert" | "key",
  transport: string,
): string {
  const value = options[name];
  if (typeof value === "string" && value !== "") return value;
  const file = options[`${name}File`];
  if (typeof file !== "string" || file === "") {
    throw invalid(
      `Transport '${transport}' needs '${name}' or '${name}File', got '${value ?? file}'`,
    );
  }
  try {
    return Deno.readTextFileSync(file);
  } catch (error) {
    throw netError(error, `Cannot read ${name}File '${file}'`, Status.INVALID_ARGUMENT);
  }
}
