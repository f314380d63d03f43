// One bidirectional QUIC stream as a Connection. Private: transport/quic.ts
// builds these for listenQuic() and dialQuic().
//
// Ending needs care that TCP does not: closing a QUIC connection
// (CONNECTION_CLOSE, RFC 9000 10.2) drops whatever stream data the peer has
// not acknowledged yet, and Deno does not say when data was acknowledged.
// So the stream's FIN is the closing handshake: the side that finishes its
// stream first (FIN before the peer's) closes the QUIC connection when the
// peer's FIN arrives, which shows the peer read everything; the side that
// answers an EOF with its own FIN waits for the peer to close. Both waits
// are bounded by CLOSE_LINGER_MS.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { ReadSizes } from "./_socket_connection.ts";
import type { QuicCloseInfo, QuicConn, QuicStream } from "./_quic_api.ts";
import { brokenError, PullConnection } from "./_pull_connection.ts";

/**
 * Bound (ms) on waiting for the peer's part of the closing handshake. A
 * peer that neither reads nor closes delays the release of the connection
 * by this much, not more.
 */
export const CLOSE_LINGER_MS = 2000;

/** Application close code of a connection closed normally. */
const CLOSE_OK = 0;
/** Application close code of a connection closed on an error (a reset). */
const CLOSE_ERROR = 1;

/** What a {@linkcode QuicConnection} is made of. */
export interface QuicConnectionInit {
  conn: QuicConn;
  stream: QuicStream;
  localAddr: string;
  remoteAddr: string;
  sizes: ReadSizes;
  allowHalfOpen: boolean;
  /** Called once the QUIC connection is closed: releases what it used. */
  release: () => void;
}

/** A peer's close as text: `code 5 ('going away')`. */
export function describeClose(info: QuicCloseInfo): string {
  return `code ${info.closeCode}${info.reason ? ` ('${info.reason}')` : ""}`;
}

/**
 * A QUIC stream as a Connection, with the pull interface; the readable and
 * writable are made over it on first use (see {@linkcode PullConnection}).
 */
export class QuicConnection extends PullConnection {
  readonly transport = "quic" as const;

  #conn: QuicConn;
  #reader: ReadableStreamBYOBReader;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #release: () => void;
  #minReadSize: number;
  #maxReadSize: number;
  #readSize: number;
  /** The read on the QUIC stream in flight, if any. */
  #pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  /** The caller of read() waiting for it. */
  #waiter: PromiseWithResolvers<Uint8Array | null> | undefined;
  /** The peer's FIN was read. */
  #eof = false;
  /** This side's FIN was sent. */
  #finSent = false;
  /** This side's FIN went before the peer's: this side closes the QUIC connection. */
  #finFirst = false;

  constructor(init: QuicConnectionInit) {
    super(init);
    this.#conn = init.conn;
    this.#reader = init.stream.readable.getReader({ mode: "byob" });
    this.#writer = init.stream.writable.getWriter();
    this.#release = init.release;
    this.#minReadSize = this.#readSize = init.sizes.readSize;
    this.#maxReadSize = init.sizes.maxReadSize;
    // A connection that ends while nothing is read or written (the peer
    // closed it, or it timed out) still closes this one.
    init.conn.closed.then(
      (info) => this.#lost(`was closed by the peer with ${describeClose(info)}`),
      (error) => this.#lost(`was lost: ${(error as Error).message}`),
    );
  }

  read(): Promise<Uint8Array | null> {
    if (this.readDone) {
      return this.readFailure ? Promise.reject(this.readFailure) : Promise.resolve(null);
    }
    if (this.#waiter) {
      return Promise.reject(
        new StreamwireError(Status.FAILED_PRECONDITION, "Only one read at a time"),
      );
    }
    this.#waiter = Promise.withResolvers();
    this.#readOnce();
    return this.#waiter.promise;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.writeDone || !(chunk instanceof Uint8Array)) return this.refuseWrite(chunk);
    this.writeSeq++;
    if (chunk.byteLength === 0) return Promise.resolve();
    const writing: Promise<void> = this.#writer.write(chunk).then(
      () => {
        if (this.writing === writing) this.writing = undefined;
      },
      (error) => {
        if (this.writing === writing) this.writing = undefined;
        throw this.closing ? this.writeError() : this.failWrite(error);
      },
    );
    this.writing = writing;
    return writing;
  }

  /** Reads once into a buffer of the current size and settles the waiting read(). */
  #readOnce(): void {
    const size = this.#readSize;
    const pending = this.#reader.read(new Uint8Array(size));
    this.#pending = pending;
    pending.then(
      (result) => {
        this.#pending = undefined;
        // Closing: the closing handshake reads on from here.
        if (this.closing) return;
        if (result.done) {
          this.#eof = true;
          this.readDone = true;
          this.#settleRead(null);
          this.#onEof();
          return;
        }
        if (result.value.byteLength === 0) return this.#readOnce();
        this.#settleRead(this.#sized(result.value, size));
      },
      (error) => {
        this.#pending = undefined;
        if (this.closing) return;
        this.shutdown(brokenError(this.remoteAddr, "reading", error));
      },
    );
  }

  #settleRead(chunk: Uint8Array | null): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(chunk);
  }

  /**
   * Sizes the next read after `chunk` came from a buffer of `size` bytes: a
   * full buffer doubles it up to maxReadSize, so bulk data moves in large
   * reads while no peer makes one read allocate more; a small chunk brings
   * it back down. A chunk much smaller than its buffer is copied out, so a
   * view of a small message does not pin a large buffer.
   */
  #sized(chunk: Uint8Array, size: number): Uint8Array {
    const n = chunk.byteLength;
    if (n === size) {
      this.#readSize = Math.min(size * 2, this.#maxReadSize);
      return chunk;
    }
    if (n < size / 2) this.#readSize = Math.max(this.#minReadSize, size / 2);
    return n <= size / 4 ? chunk.slice() : chunk;
  }

  /** The peer's FIN reached the reader. */
  #onEof(): void {
    if (this.#finSent) this.shutdown();
    else if (!this.allowHalfOpen) this.closeWhenIdle();
  }

  /** Half-closes: the peer reads EOF once what was written is delivered. */
  protected async closeWrite(): Promise<void> {
    this.writeDone = true;
    this.writeSeq++;
    await this.writing?.catch(() => {});
    if (this.closing) return;
    this.#finish();
    if (this.readDone) this.shutdown();
  }

  /** Sends this side's FIN, once. */
  #finish(): void {
    if (this.#finSent) return;
    this.#finSent = true;
    this.#finFirst = !this.#eof;
    // Closing the writer drops Deno's send stream, which finishes it.
    this.#writer.close().catch(() => {});
  }

  /** The QUIC connection ended under this one. */
  #lost(how: string): void {
    if (this.closing) return;
    this.shutdown(
      new StreamwireError(Status.UNAVAILABLE, `Connection '${this.remoteAddr}' ${how}`),
    );
  }

  /**
   * Settles both sides at once (the readable ends, or errors with `error`;
   * writes fail), then runs the closing handshake and closes the QUIC
   * connection; `closed` resolves after that.
   */
  protected shutdown(error?: StreamwireError): void {
    if (this.closing) return;
    // Set only while the read side is open: a waiting read() gets its end.
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (error) waiter?.reject(error);
    else waiter?.resolve(null);
    this.settle(error);
    this.#teardown(error).finally(() => {
      this.#release();
      this.markClosed();
    });
  }

  async #teardown(error: StreamwireError | undefined): Promise<void> {
    await this.writing?.catch(() => {});
    if (error === undefined) {
      this.#finish();
      if (!(this.#eof && this.#finFirst)) await this.#linger();
    }
    try {
      this.#conn.close(
        error ? { closeCode: CLOSE_ERROR, reason: "error" } : { closeCode: CLOSE_OK, reason: "" },
      );
    } catch {
      // Closed already.
    }
  }

  /**
   * The wait of the closing handshake: for the peer's FIN when this side's
   * went first (reading and dropping what comes before it), else for the
   * peer to close the connection; at most CLOSE_LINGER_MS either way.
   */
  #linger(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, CLOSE_LINGER_MS);
    this.#conn.closed.then(() => resolve(), () => resolve());
    if (!this.#eof) this.#drain().then(resolve);
    return promise.finally(() => clearTimeout(timer));
  }

  /** Reads and drops until the peer's FIN, or until the connection fails. */
  async #drain(): Promise<void> {
    try {
      let result = await this.#pending;
      while (!result?.done) result = await this.#reader.read(new Uint8Array(this.#maxReadSize));
      this.#eof = true;
    } catch {
      // Closed or lost: nothing more to wait for.
    }
  }
}
