// A Deno.Conn (TCP, TLS or Unix) as a Connection. Private: listen() and
// connect() build these.
//
// Memory is the point of this file. `conn.readable` is a byte stream that
// keeps a 64 KiB auto-allocated read pending (about 65 KB per idle
// connection, measured with 10,000 of them), so it is not used: the readable
// here is a plain stream with highWaterMark 0 that reads only when pulled,
// into a fresh buffer sized to the recent traffic. tests/transport/idle_memory.ts
// measures the difference: about 18 KB of RSS per idle connection with a read
// pending, against 62 KB for a reader on `conn.readable`.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { ConnectionOptions } from "./connection.ts";
import { formatAddr, type SocketTransport } from "./_address.ts";
import { brokenError, closedError, PullConnection } from "./_pull_connection.ts";

/** First and idle read size: small, as every idle connection holds one. */
export const DEFAULT_READ_SIZE = 512;
/** Bound on one read buffer, so no peer makes one read allocate more. */
export const DEFAULT_MAX_READ_SIZE = 65536;

/** Checked read sizes of {@linkcode ConnectionOptions}. */
export interface ReadSizes {
  readSize: number;
  maxReadSize: number;
}

/** Checks `readSize` and `maxReadSize`, throwing `invalid_argument`. */
export function checkReadSizes(options: ConnectionOptions): ReadSizes {
  const readSize = options.readSize ?? DEFAULT_READ_SIZE;
  const maxReadSize = options.maxReadSize ?? Math.max(DEFAULT_MAX_READ_SIZE, readSize);
  if (!Number.isInteger(readSize) || readSize < 1) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `readSize '${readSize}' must be a positive integer`,
    );
  }
  if (!Number.isInteger(maxReadSize) || maxReadSize < readSize) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `maxReadSize '${maxReadSize}' must be an integer of at least readSize '${readSize}'`,
    );
  }
  return { readSize, maxReadSize };
}

/** Errors that a read or write raises because the socket was closed locally. */
function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/**
 * A `Deno.Conn` as a Connection.
 *
 * The two streams are made on first use (see {@linkcode PullConnection}).
 * A caller of the pull interface, {@linkcode SocketConnection.read} and
 * {@linkcode SocketConnection.write} (a session does), never makes them.
 *
 * A failed write ends the write side only. The socket stays open for
 * reading, so what the peer sent before it went away (a GOAWAY, then close)
 * is still delivered; the connection closes at EOF or a read error.
 */
export class SocketConnection extends PullConnection {
  readonly transport: SocketTransport;

  #conn: Deno.Conn;
  #minReadSize: number;
  #maxReadSize: number;
  #readSize: number;
  /** The read in flight, awaited before `closed` resolves. */
  #reading: Promise<unknown> | undefined;
  /** A read buffer whose bytes were copied out, for the next read. */
  #spare: Uint8Array | undefined;

  /**
   * Wraps `conn`, which the connection owns from now on.
   *
   * @param conn An open socket.
   * @param transport How it was opened, for the URL form of its addresses.
   * @param options Read sizes and half-close.
   */
  constructor(conn: Deno.Conn, transport: SocketTransport, options: ConnectionOptions = {}) {
    const { readSize, maxReadSize } = checkReadSizes(options);
    super({
      localAddr: formatAddr(transport, conn.localAddr),
      remoteAddr: formatAddr(transport, conn.remoteAddr),
      allowHalfOpen: options.allowHalfOpen ?? false,
    });
    this.#conn = conn;
    this.transport = transport;
    this.#minReadSize = this.#readSize = readSize;
    this.#maxReadSize = maxReadSize;
    if (transport === "tcp") {
      const tcp = conn as Deno.TcpConn;
      try {
        // Frames are written whole: Nagle would only add latency to small ones.
        tcp.setNoDelay(true);
        // Notices a peer that vanished without FIN or RST on a long-lived connection.
        tcp.setKeepAlive(true);
      } catch {
        // A socket reset before it was accepted refuses options (EINVAL on
        // some systems); its first read reports the reset.
      }
    }
  }

  /** Size of the buffer the next read allocates (for tests and measurements). */
  get nextReadSize(): number {
    return this.#readSize;
  }

  /**
   * The next chunk, into a buffer sized to the recent traffic: `null` at
   * EOF or once closed. One read at a time; not to be mixed with reading
   * {@linkcode SocketConnection.readable}, which reads through it.
   *
   * @returns A fresh chunk that the caller owns, or `null` at the end.
   * @throws {StreamwireError} `unavailable` when the connection broke.
   */
  read(): Promise<Uint8Array | null> {
    if (this.readDone) {
      return this.readFailure ? Promise.reject(this.readFailure) : Promise.resolve(null);
    }
    // One reaction on the socket's read, not an async function or a chain:
    // an idle connection holds this pending read for as long as it lives,
    // and each link of a chain is a promise and a reaction more per read.
    const size = this.#readSize;
    let buffer = this.#spare;
    this.#spare = undefined;
    if (buffer === undefined || buffer.length !== size) buffer = new Uint8Array(size);
    this.#buffer = buffer;
    const reading = this.#conn.read(buffer);
    this.#reading = reading;
    return reading.then(this.#onRead, this.#onReadError);
  }

  /** The buffer of the read in flight of {@linkcode SocketConnection.read}. */
  #buffer: Uint8Array | undefined;

  #onRead = (n: number | null): Uint8Array | null | Promise<Uint8Array | null> => {
    this.#reading = undefined;
    const buffer = this.#buffer!;
    this.#buffer = undefined;
    const chunk = this.#took(buffer, buffer.length, n);
    if (chunk === null) {
      this.closeAfterEof();
      return null;
    }
    // undefined: closed meanwhile, or an empty read: ask again.
    return chunk !== undefined ? chunk : this.read();
  };

  #onReadError = (error: unknown): Promise<Uint8Array | null> => {
    this.#reading = undefined;
    this.#buffer = undefined;
    // The connection is done (quietly if it was closed locally).
    if (!this.closing) {
      this.shutdown(
        isClosedError(error) ? undefined : brokenError(this.remoteAddr, "reading", error),
      );
    }
    return this.read();
  };

  /**
   * Writes a chunk without the writable, which is then never made. One
   * write at a time; `chunk` must not change until the promise settles, and
   * is not referenced afterwards.
   *
   * @param chunk Bytes to write.
   * @returns A promise that resolves once the OS took all the bytes.
   * @throws {StreamwireError} `cancelled` once closed, `unavailable` when the
   *   connection broke; after a failed write, the same error again.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.writeDone || !(chunk instanceof Uint8Array)) return this.refuseWrite(chunk);
    this.writeSeq++;
    if (chunk.byteLength === 0) return Promise.resolve();
    // One async function per write, not two: a broadcast makes thousands.
    const writing = this.#writeAll(chunk);
    this.writing = writing;
    return writing;
  }

  /** What a read of `n` bytes into `buffer` (of `size`) yields; sizes the next read. */
  #took(buffer: Uint8Array, size: number, n: number | null): Uint8Array | null | undefined {
    if (this.closing) return undefined;
    if (n === null) {
      this.readDone = true;
      return null;
    }
    // 0 is not EOF (Deno.Conn.read): the caller asks again.
    if (n === 0) return undefined;
    let chunk: Uint8Array;
    if (n === size) {
      // More may be waiting: read the rest of the burst in one go, so that
      // a batch of calls is answered (and a batch of answers taken) whole.
      chunk = buffer;
      this.#readSize = this.#maxReadSize;
      return chunk;
    }
    // Next, room for twice this read: a burst of this size fits whole, and
    // the read an idle connection leaves pending stays near the size of the
    // traffic it last had (back to readSize after a small message).
    let next = this.#minReadSize;
    while (next < 2 * n && next < this.#maxReadSize) next *= 2;
    next = Math.min(next, this.#maxReadSize);
    this.#readSize = next;
    if (n <= size / 2) {
      // Copy it out, so a view of a small message does not pin the large
      // buffer, and read into the same buffer again if it has the right
      // size: a fresh buffer per read would leave one buffer of garbage per
      // read (allocations and page faults under load, and on an idle server
      // RSS that grows with every heartbeat).
      chunk = buffer.slice(0, n);
      if (next === size) this.#spare = buffer;
    } else {
      chunk = buffer.subarray(0, n);
    }
    return chunk;
  }

  /** Writes all of a non-empty chunk; clears `writing` when done. */
  #writeAll(chunk: Uint8Array): Promise<void> {
    // Most writes take the whole chunk at once: one reaction, no async function.
    return this.#conn.write(chunk).then(
      (n) => {
        if (n >= chunk.byteLength) {
          this.writing = undefined;
          return;
        }
        return this.#writeRest(chunk, n);
      },
      (error) => {
        this.writing = undefined;
        throw this.#writeFailed(error);
      },
    );
  }

  /** Writes what a short write left of `chunk`, from `offset`. */
  async #writeRest(chunk: Uint8Array, offset: number): Promise<void> {
    try {
      while (offset < chunk.byteLength) offset += await this.#conn.write(chunk.subarray(offset));
    } catch (error) {
      throw this.#writeFailed(error);
    } finally {
      this.writing = undefined;
    }
  }

  protected async closeWrite(): Promise<void> {
    this.writeDone = true;
    this.writeSeq++;
    const closing = this.#conn.closeWrite();
    this.writing = closing;
    try {
      await closing;
    } catch (error) {
      // NotConnected when the peer is gone already: nothing left to
      // half-close, and what it sent is still read to the end.
      if (!this.closing && !(error instanceof Deno.errors.NotConnected)) {
        throw this.#writeFailed(error);
      }
      if (this.closing || this.readDone) this.shutdown();
      return;
    } finally {
      this.writing = undefined;
    }
    if (this.readDone) this.shutdown();
  }

  /**
   * Ends the write side after a failed write and returns what to reject it
   * with. The read side goes on: the peer's last bytes (a GOAWAY before it
   * closed, say) are still in the socket's receive buffer after an EPIPE or
   * a reset, and the reader gets them before EOF closes the connection.
   */
  #writeFailed(error: unknown): StreamwireError {
    if (this.closing || isClosedError(error)) {
      this.shutdown();
      return closedError(this.remoteAddr);
    }
    return this.failWrite(error);
  }

  /**
   * Settles both streams (the readable closes, or errors with `error`), closes
   * the socket, and resolves `closed` once the I/O in flight has settled.
   */
  protected shutdown(error?: StreamwireError): void {
    if (this.closing) return;
    this.settle(error);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.closeAfter(this.#reading);
  }
}
