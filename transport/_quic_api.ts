// The parts of Deno's QUIC API (`Deno.QuicEndpoint`, `Deno.connectQuic`)
// that transport/quic.ts uses, described here so that the code type-checks
// without the unstable types, and found at run time only when Deno was
// started with --unstable-net. Private to transport/.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";

/** A UDP address as Deno reports it. */
export interface QuicNetAddr {
  hostname: string;
  port: number;
}

/** Transport parameters both sides may set (quinn's `TransportConfig`). */
export interface QuicTransportParams {
  /** Milliseconds of silence before a keep-alive packet. */
  keepAliveInterval?: number;
  /** Milliseconds of silence after which the connection is dropped. */
  maxIdleTimeout?: number;
  /** Streams of each kind the peer may have open at once. */
  maxConcurrentBidirectionalStreams?: number;
  maxConcurrentUnidirectionalStreams?: number;
}

/** How a connection closed: the application's code and reason. */
export interface QuicCloseInfo {
  closeCode: number;
  reason: string;
}

/** A bidirectional stream: a byte readable and a writable. */
export interface QuicStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/** A QUIC connection (`Deno.QuicConn`). */
export interface QuicConn {
  readonly remoteAddr: QuicNetAddr;
  readonly protocol: string | undefined;
  readonly endpoint: QuicEndpoint;
  /** Resolves once closed by either side; rejects when the connection was lost. */
  readonly closed: Promise<QuicCloseInfo>;
  readonly incomingBidirectionalStreams: ReadableStream<QuicStream>;
  createBidirectionalStream(): Promise<QuicStream>;
  close(info?: QuicCloseInfo): void;
}

/**
 * A connection attempt that has not been answered yet. Only `accept()` and
 * `refuse()` are used: in Deno 2.9 reading `remoteAddr` or `localIp` first
 * consumes the resource, and the accept then fails with BadResource.
 */
export interface QuicIncoming {
  accept(options?: QuicTransportParams & { alpnProtocols?: string[] }): Promise<QuicConn>;
  refuse(): void;
}

/** The listening side of an endpoint. */
export interface QuicListener {
  incoming(): Promise<QuicIncoming>;
  stop(): void;
}

/** A bound UDP socket that listens and connects (`Deno.QuicEndpoint`). */
export interface QuicEndpoint {
  readonly addr: QuicNetAddr;
  listen(
    options: QuicTransportParams & { alpnProtocols: string[]; cert: string; key: string },
  ): QuicListener;
  close(info?: QuicCloseInfo): void;
}

/** The two entry points, present only under --unstable-net. */
export interface QuicApi {
  QuicEndpoint: new (options?: { hostname?: string; port?: number }) => QuicEndpoint;
  connectQuic(
    options: QuicTransportParams & {
      hostname: string;
      port: number;
      serverName?: string;
      alpnProtocols: string[];
      caCerts?: string[];
      endpoint?: QuicEndpoint;
    },
  ): Promise<QuicConn>;
}

/** Whether this Deno offers QUIC (it was started with --unstable-net). */
export function hasQuic(): boolean {
  const api = Deno as unknown as Partial<QuicApi>;
  return typeof api.QuicEndpoint === "function" && typeof api.connectQuic === "function";
}

/**
 * The QUIC API of this Deno.
 *
 * @throws {StreamwireError} `unimplemented` when Deno was started without
 *   --unstable-net, which is what makes the API appear.
 */
export function quicApi(what: string): QuicApi {
  if (!hasQuic()) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `Cannot ${what}: QUIC needs Deno's unstable network API; ` +
        "run with '--unstable-net' (deno run --unstable-net ...)",
    );
  }
  return Deno as unknown as QuicApi;
}
