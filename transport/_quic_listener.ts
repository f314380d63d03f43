// A QUIC endpoint's listener as a Listener: each connection is yielded once
// its handshake is done and its client opened the one stream that carries
// it. Private: listenQuic() builds it.

import type { Connection, Listener } from "./connection.ts";
import type { ReadSizes } from "./_socket_connection.ts";
import type { QuicConn, QuicEndpoint, QuicIncoming, QuicListener } from "./_quic_api.ts";
import { QuicConnection } from "./_quic_connection.ts";

/**
 * Connections accepted but not yet taken by the iteration, plus those
 * between handshake and first stream. Past it new attempts are refused, so
 * clients that connect and never open their stream (or a server that stops
 * iterating) cannot pile up handshakes and TLS state without bound.
 */
export const MAX_PENDING = 1024;
/**
 * Bound (ms) on the wait for the client's stream after the handshake. QUIC
 * announces a stream with its first bytes, which for a streamwire client is
 * its HELLO, sent right after connecting.
 */
export const STREAM_TIMEOUT_MS = 10_000;
/** Pause (ms) before accepting again after an unexpected accept error. */
const RETRY_DELAY_MS = 50;

/** What a {@linkcode QuicListenerAdapter} needs besides the endpoint. */
export interface QuicListenerInit {
  endpoint: QuicEndpoint;
  listener: QuicListener;
  /** The address in URL form, with the bound port. */
  addr: string;
  sizes: ReadSizes;
  allowHalfOpen: boolean;
  /** The URL form of a peer's address. */
  format: (hostname: string, port: number) => string;
}

/** Accepts QUIC connections in the background and yields them in order. */
export class QuicListenerAdapter implements Listener {
  readonly addr: string;
  #init: QuicListenerInit;
  #ready: QuicConnection[] = [];
  #wake: PromiseWithResolvers<void> | undefined;
  #closed = false;
  /** Handshakes and first streams in flight. */
  #pending = 0;
  /** Connections on the endpoint, from handshake to close: it is closed after the last. */
  #open = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(init: QuicListenerInit) {
    this.#init = init;
    this.addr = init.addr;
    this.#acceptLoop();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (true) {
      const conn = this.#ready.shift();
      if (conn) {
        yield conn;
        continue;
      }
      if (this.#closed) return;
      this.#wake ??= Promise.withResolvers();
      await this.#wake.promise;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    try {
      this.#init.listener.stop();
    } catch {
      // Stopped already.
    }
    // Accepted but never yielded: nobody else will close them.
    for (const conn of this.#ready.splice(0)) conn.close();
    this.#notify();
    this.#releaseEndpoint();
  }

  #notify(): void {
    this.#wake?.resolve();
    this.#wake = undefined;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let incoming: QuicIncoming;
      try {
        incoming = await this.#init.listener.incoming();
      } catch {
        // BadResource once stopped; anything else is retried after a pause.
        if (this.#closed) return;
        await new Promise((resolve) => this.#retryTimer = setTimeout(resolve, RETRY_DELAY_MS));
        continue;
      }
      if (this.#closed || this.#pending + this.#ready.length >= MAX_PENDING) {
        incoming.refuse();
        continue;
      }
      this.#admit(incoming);
    }
  }

  /** Handshake, then the first stream; failures only drop this connection. */
  async #admit(incoming: QuicIncoming): Promise<void> {
    this.#pending++;
    this.#open++;
    let conn: QuicConn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      conn = await incoming.accept();
      const reader = conn.incomingBidirectionalStreams.getReader();
      const quic = conn;
      timer = setTimeout(
        () => quic.close({ closeCode: 1, reason: "no stream" }),
        STREAM_TIMEOUT_MS,
      );
      const { value: stream } = await reader.read();
      reader.releaseLock();
      if (stream === undefined || this.#closed) throw new Error("closed before its stream");
      const { hostname, port } = conn.remoteAddr;
      this.#ready.push(
        new QuicConnection({
          conn,
          stream,
          localAddr: this.addr,
          remoteAddr: this.#init.format(hostname, port),
          sizes: this.#init.sizes,
          allowHalfOpen: this.#init.allowHalfOpen,
          release: () => this.#releaseConnection(),
        }),
      );
      this.#notify();
    } catch {
      // A failed handshake (the client refused the certificate, say), a
      // client that never opened its stream, or a listener closed meanwhile.
      try {
        conn?.close({ closeCode: 1, reason: "refused" });
      } catch {
        // Closed already.
      }
      this.#releaseConnection();
    } finally {
      clearTimeout(timer);
      this.#pending--;
    }
  }

  #releaseConnection(): void {
    this.#open--;
    this.#releaseEndpoint();
  }

  /** Closes the endpoint once the listener is closed and its last connection too. */
  #releaseEndpoint(): void {
    if (!this.#closed || this.#open > 0) return;
    try {
      this.#init.endpoint.close();
    } catch {
      // Closed already.
    }
  }
}
