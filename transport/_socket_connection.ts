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
import type { Connection, ConnectionOptions } from "./connection.ts";
import { formatAddr, type SocketTransport } from "./_address.ts";
import { nextMacrotask } from "./_macrotask.ts";

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
 * A `Deno.Conn` as a {@linkcode Connection}.
 *
 * The two streams are made on first use. A caller of the pull interface,
 * {@linkcode SocketConnection.read} and {@linkcode SocketConnection.write}
 * (a session does), never makes them: a ReadableStream and a WritableStream
 * with their reader, writer and callbacks are about 4 KiB of heap per
 * connection.
 *
 * A failed write ends the write side only. The socket stays open for
 * reading, so what the peer sent before it went away (a GOAWAY, then close)
 * is still delivered; the connection closes at EOF or a read error.
 */
export class SocketConnection implements Connection {
  readonly remoteAddr: string;
  readonly localAddr: string;
  readonly transport: SocketTransport;
  get closed(): Promise<void> {
    // Made when someone asks: an idle session's connection holds no promise for it.
    if (this.#closed === undefined) {
      this.#closed = this.#isClosed
        ? Promise.resolve()
        : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }

  #conn: Deno.Conn;
  #allowHalfOpen: boolean;
  #minReadSize: number;
  #maxReadSize: number;
  #readSize: number;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #readController: ReadableStreamDefaultController<Uint8Array> | undefined;
  #writeController: WritableStreamDefaultController | undefined;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  /** Closed, and the I/O in flight then has settled. */
  #isClosed = false;
  /** close() ran (or started from an error): both streams are settled. */
  #closing = false;
  /** The readable is done: EOF, cancelled or settled by close(). */
  #readDone = false;
  /** The error close() ended the readable with, if any. */
  #readFailure: StreamwireError | undefined;
  /** The error close() was given, if any: what writes fail with from then on. */
  #closeError: StreamwireError | undefined;
  /** The error a write failed with, if one did: what writes fail with from then on. */
  #writeFailure: StreamwireError | undefined;
  /** The writable is closing or done. */
  #writeDone = false;
  /** Operations in flight, awaited before `closed` resolves. */
  #reading: Promise<unknown> | undefined;
  #writing: Promise<unknown> | undefined;
  #idleCheck: Promise<unknown> | undefined;
  /** Counts writes and closes started, to notice new writes across a macrotask. */
  #writeSeq = 0;
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
    this.#conn = conn;
    this.transport = transport;
    this.#allowHalfOpen = options.allowHalfOpen ?? false;
    this.#minReadSize = this.#readSize = readSize;
    this.#maxReadSize = maxReadSize;
    this.remoteAddr = formatAddr(transport, conn.remoteAddr);
    this.localAddr = formatAddr(transport, conn.localAddr);
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

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable === undefined) {
      this.#readable = new ReadableStream<Uint8Array>({
        start: (controller) => {
          this.#readController = controller;
        },
        pull: (controller) => this.#pull(controller),
        cancel: () => {
          this.#readDone = true;
          this.close();
        },
      }, { highWaterMark: 0 });
      // Made after the end: it ends as it would have.
      if (this.#readDone) {
        if (this.#readFailure) this.#readController!.error(this.#readFailure);
        else this.#readController!.close();
      }
    }
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    if (this.#writable === undefined) {
      this.#writable = new WritableStream<Uint8Array>({
        start: (controller) => {
          this.#writeController = controller;
        },
        write: (chunk) => this.#write(chunk),
        close: () => this.#closeWrite(),
        abort: () => this.close(),
      });
      // Made after the write side ended: it fails as it would have.
      if (this.#closing || this.#writeFailure) this.#writeController!.error(this.#writeError());
    }
    return this.#writable;
  }

  /** Size of the buffer the next read allocates (for tests and measurements). */
  get nextReadSize(): number {
    return this.#readSize;
  }

  close(): void {
    this.#shutdown();
  }

  /**
   * The next chunk without the readable, which is then never made: `null`
   * at EOF or once closed. One read at a time; not to be mixed with reading
   * {@linkcode SocketConnection.readable}.
   *
   * @returns A fresh chunk that the caller owns, or `null` at the end.
   * @throws {StreamwireError} `unavailable` when the connection broke.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#readDone) {
      return this.#readFailure ? Promise.reject(this.#readFailure) : Promise.resolve(null);
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
      this.#onEof();
      return null;
    }
    // undefined: closed meanwhile, or an empty read: ask again.
    return chunk !== undefined ? chunk : this.read();
  };

  #onReadError = (error: unknown): Promise<Uint8Array | null> => {
    this.#reading = undefined;
    this.#buffer = undefined;
    this.#readFailed(error);
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
    if (this.#writeDone) return Promise.reject(this.#writeError());
    return this.#write(chunk);
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    while (!this.#closing) {
      const chunk = await this.#readOnce();
      // undefined: closed meanwhile (the loop ends), or an empty read (again).
      if (chunk === undefined) continue;
      if (chunk === null) {
        controller.close();
        this.#onEof();
      } else {
        controller.enqueue(chunk);
      }
      return;
    }
  }

  /**
   * One read into a buffer sized to the recent traffic: a fresh chunk,
   * `null` at EOF (marking the read side done), or undefined if the
   * connection closed meanwhile or the read was empty.
   */
  #readOnce(): Promise<Uint8Array | null | undefined> {
    if (this.#closing) return Promise.resolve(undefined);
    const size = this.#readSize;
    // The buffer of the last read, if its bytes were copied out.
    let buffer = this.#spare;
    this.#spare = undefined;
    if (buffer === undefined || buffer.length !== size) buffer = new Uint8Array(size);
    const reading = this.#conn.read(buffer);
    this.#reading = reading;
    return reading.then(
      (n) => {
        this.#reading = undefined;
        return this.#took(buffer, size, n);
      },
      (error) => {
        this.#reading = undefined;
        this.#readFailed(error);
        return undefined;
      },
    );
  }

  /** A read failed: the connection is done (quietly if it was closed locally). */
  #readFailed(error: unknown): void {
    if (this.#closing) return;
    this.#shutdown(
      isClosedError(error) ? undefined : new StreamwireError(
        Status.UNAVAILABLE,
        `Connection '${this.remoteAddr}' failed while reading: ${(error as Error).message}`,
        { cause: error },
      ),
    );
  }

  /** What a read of `n` bytes into `buffer` (of `size`) yields; sizes the next read. */
  #took(buffer: Uint8Array, size: number, n: number | null): Uint8Array | null | undefined {
    if (this.#closing) return undefined;
    if (n === null) {
      this.#readDone = true;
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

  #write(chunk: Uint8Array): Promise<void> {
    if (!(chunk instanceof Uint8Array)) {
      const error = new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Chunk of type '${Object.prototype.toString.call(chunk)}' is not a Uint8Array`,
      );
      this.#shutdown(error);
      return Promise.reject(error);
    }
    this.#writeSeq++;
    if (chunk.byteLength === 0) return Promise.resolve();
    // One async function per write, not two: a broadcast makes thousands.
    const writing = this.#writeAll(chunk);
    this.#writing = writing;
    return writing;
  }

  /** Writes all of a non-empty chunk; clears `#writing` when done. */
  #writeAll(chunk: Uint8Array): Promise<void> {
    // Most writes take the whole chunk at once: one reaction, no async function.
    return this.#conn.write(chunk).then(
      (n) => {
        if (n >= chunk.byteLength) {
          this.#writing = undefined;
          return;
        }
        return this.#writeRest(chunk, n);
      },
      (error) => {
        this.#writing = undefined;
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
      this.#writing = undefined;
    }
  }

  async #closeWrite(): Promise<void> {
    this.#writeDone = true;
    this.#writeSeq++;
    const closing = this.#conn.closeWrite();
    this.#writing = closing;
    try {
      await closing;
    } catch (error) {
      // NotConnected when the peer is gone already: nothing left to
      // half-close, and what it sent is still read to the end.
      if (!this.#closing && !(error instanceof Deno.errors.NotConnected)) {
        throw this.#writeFailed(error);
      }
      if (this.#closing || this.#readDone) this.#shutdown();
      return;
    } finally {
      this.#writing = undefined;
    }
    if (this.#readDone) this.#shutdown();
  }

  /**
   * Ends the write side after a failed write and returns what to reject it
   * with. The read side goes on: the peer's last bytes (a GOAWAY before it
   * closed, say) are still in the socket's receive buffer after an EPIPE or
   * a reset, and the reader gets them before EOF closes the connection.
   */
  #writeFailed(error: unknown): StreamwireError {
    if (this.#closing || isClosedError(error)) {
      this.#shutdown();
      return this.#closedError();
    }
    if (this.#writeFailure) return this.#writeFailure;
    const failure = new StreamwireError(
      Status.UNAVAILABLE,
      `Connection '${this.remoteAddr}' failed while writing: ${(error as Error).message}`,
      { cause: error },
    );
    this.#writeFailure = failure;
    this.#writeDone = true;
    this.#writeController?.error(failure);
    // Nothing left to read either: the connection is done.
    if (this.#readDone) this.#shutdown(failure);
    return failure;
  }

  /** What a write fails with once the write side ended. */
  #writeError(): StreamwireError {
    return this.#writeFailure ?? this.#closeError ?? this.#closedError();
  }

  #closedError(): StreamwireError {
    return new StreamwireError(Status.CANCELLED, `Connection '${this.remoteAddr}' is closed`);
  }

  /** The peer's EOF reached the reader. */
  #onEof(): void {
    if (this.#writeDone && !this.#writing) this.#shutdown();
    else if (!this.#allowHalfOpen && !this.#writeDone) this.#idleCheck = this.#closeWhenIdle();
  }

  /**
   * Closes once no write is in flight and none starts within a macrotask, so
   * what a pipe already queued still goes out before the socket closes.
   */
  async #closeWhenIdle(): Promise<void> {
    while (!this.#closing && !this.#writeDone) {
      if (this.#writing) {
        await this.#writing.catch(() => {});
        continue;
      }
      const seq = this.#writeSeq;
      await nextMacrotask();
      if (seq === this.#writeSeq && !this.#writing) break;
    }
    // A writable closed meanwhile finishes the job in #closeWrite.
    if (!this.#writeDone) this.#shutdown();
  }

  /**
   * Settles both streams (the readable closes, or errors with `error`), closes
   * the socket, and resolves `closed` once the I/O in flight has settled.
   */
  #shutdown(error?: StreamwireError): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeError = error;
    if (!this.#readDone) {
      this.#readDone = true;
      this.#readFailure = error;
      try {
        if (error) this.#readController?.error(error);
        else this.#readController?.close();
      } catch {
        // Already closed or cancelled by its reader.
      }
    }
    this.#writeDone = true;
    this.#writeController?.error(this.#writeError());
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    Promise.allSettled([this.#reading, this.#writing, this.#idleCheck])
      .then(() => {
        this.#isClosed = true;
        this.#resolveClosed?.();
      });
  }
}
