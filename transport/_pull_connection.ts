// What the connections with a pull interface share: the socket, QUIC and
// in-memory connections each say how bytes are read, written and
// half-closed, and how the transport is released; this base holds the
// contract of transport/connection.ts over that: streams made on first use,
// the lazy `closed`, a failed write that leaves reading open, closing at EOF
// once the writes are done, and the errors.
//
// Memory matters here: a session keeps one connection per peer for as long
// as it lives. State is in fields of the instance and logic in prototype
// methods: the base adds no closure and no promise to an idle connection.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, TransportName } from "./connection.ts";
import { nextMacrotask } from "./_macrotask.ts";

/** `cancelled`: what a write fails with once this side closed. */
export function closedError(addr: string): StreamwireError {
  return new StreamwireError(Status.CANCELLED, `Connection '${addr}' is closed`);
}

/** `unavailable`: the connection to `addr` broke while `doing` I/O. */
export function brokenError(
  addr: string,
  doing: "reading" | "writing",
  cause: unknown,
): StreamwireError {
  return new StreamwireError(
    Status.UNAVAILABLE,
    `Connection '${addr}' failed while ${doing}: ${(cause as Error).message}`,
    { cause },
  );
}

/** `invalid_argument`: a chunk written that is not a `Uint8Array`. */
export function notBytesError(chunk: unknown): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Chunk of type '${Object.prototype.toString.call(chunk)}' is not a Uint8Array`,
  );
}

/** Told once a {@linkcode PullConnection} is closed: a session, without a promise of its own. */
export interface CloseListener {
  connectionClosed(): void;
}

/**
 * Calls `listener.connectionClosed()` once `conn` is closed (at once if it
 * is already): through a field of a {@linkcode PullConnection}, else
 * through its `closed` promise.
 */
export function whenClosed(conn: Connection, listener: CloseListener): void {
  if (conn instanceof PullConnection) conn.listen(listener);
  else conn.closed.then(() => listener.connectionClosed());
}

/** Addresses and half-close of a {@linkcode PullConnection}. */
export interface PullConnectionInit {
  localAddr: string;
  remoteAddr: string;
  allowHalfOpen: boolean;
}

/**
 * A {@linkcode Connection} over its own `read()` and `write()`. The
 * readable and writable are made on first use over those two: a caller of
 * the pull interface (a session) never makes them, which saves a
 * ReadableStream and a WritableStream with their reader, writer and
 * callbacks, about 4 KiB of heap per connection.
 *
 * A subclass moves the bytes (`read`, `write`, `closeWrite`) and ends the
 * transport (`shutdown`); it marks the state below as it goes, and calls
 * {@linkcode PullConnection.markClosed} once the I/O in flight has settled.
 */
export abstract class PullConnection implements Connection {
  abstract readonly transport: TransportName;
  readonly localAddr: string;
  readonly remoteAddr: string;

  /** Keep the connection open after the peer's EOF. */
  protected readonly allowHalfOpen: boolean;
  protected readController: ReadableStreamDefaultController<Uint8Array> | undefined;
  protected writeController: WritableStreamDefaultController | undefined;
  /** close() ran (or started from an error): both streams are settled. */
  protected closing = false;
  /** The read side is done: EOF, or settled by close(). */
  protected readDone = false;
  /** The error close() ended the read side with, if any. */
  protected readFailure: StreamwireError | undefined;
  /** The error close() was given, if any: what writes fail with from then on. */
  protected closeError: StreamwireError | undefined;
  /** The error a write failed with, if one did: what writes fail with from then on. */
  protected writeFailure: StreamwireError | undefined;
  /** The write side is closing or done. */
  protected writeDone = false;
  /** The write (or half-close) in flight, if any. */
  protected writing: Promise<unknown> | undefined;
  /** The wait of {@linkcode PullConnection.closeWhenIdle}, if one runs. */
  protected idleCheck: Promise<unknown> | undefined;
  /** Counts writes and closes started, to notice new writes across a macrotask. */
  protected writeSeq = 0;

  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  /** Closed, and the I/O in flight then has settled. */
  #isClosed = false;
  #listener: CloseListener | undefined;

  constructor(init: PullConnectionInit) {
    this.localAddr = init.localAddr;
    this.remoteAddr = init.remoteAddr;
    this.allowHalfOpen = init.allowHalfOpen;
  }

  abstract read(): Promise<Uint8Array | null>;
  abstract write(chunk: Uint8Array): Promise<void>;
  /** Half-closes, for the writable's close: the peer reads EOF after what was written. */
  protected abstract closeWrite(): Promise<void> | void;
  /**
   * Closes the connection, at once and for good: settles both sides (see
   * {@linkcode PullConnection.settle}) and releases the transport; `error`
   * is what the read side ends with, if it broke. Does nothing once closing.
   */
  protected abstract shutdown(error?: StreamwireError): void;

  close(): void {
    this.shutdown();
  }

  get closed(): Promise<void> {
    // Made when someone asks: an idle session's connection holds no promise for it.
    if (this.#closed === undefined) {
      this.#closed = this.#isClosed
        ? Promise.resolve()
        : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable === undefined) {
      this.#readable = new ReadableStream<Uint8Array>({
        start: (controller) => {
          this.readController = controller;
        },
        pull: (controller) =>
          this.read().then((chunk) => {
            if (chunk !== null) return controller.enqueue(chunk);
            try {
              controller.close();
            } catch {
              // Closed already by close().
            }
          }),
        cancel: () => this.close(),
      }, { highWaterMark: 0 });
      // Made after the end: it ends as it would have.
      if (this.readDone) {
        if (this.readFailure) this.readController!.error(this.readFailure);
        else this.readController!.close();
      }
    }
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    if (this.#writable === undefined) {
      this.#writable = new WritableStream<Uint8Array>({
        start: (controller) => {
          this.writeController = controller;
        },
        write: (chunk) => this.write(chunk),
        close: () => this.closeWrite(),
        abort: () => this.close(),
      });
      // Made after the write side ended: it fails as it would have.
      if (this.closing || this.writeFailure) this.writeController!.error(this.writeError());
    }
    return this.#writable;
  }

  /**
   * The write refused: rejects with {@linkcode PullConnection.writeError}
   * once the write side ended, else (`chunk` is not bytes) closes the
   * connection and rejects with `invalid_argument`. Off the hot path: a
   * write calls it only when one of the two holds.
   */
  protected refuseWrite(chunk: unknown): Promise<never> {
    if (this.writeDone) return Promise.reject(this.writeError());
    const error = notBytesError(chunk);
    this.shutdown(error);
    return Promise.reject(error);
  }

  /** What a write fails with once the write side ended. */
  protected writeError(): StreamwireError {
    return this.writeFailure ?? this.closeError ?? closedError(this.remoteAddr);
  }

  /**
   * Ends the write side after a write failed with `error`, and returns what
   * to reject it with: the first failure, for every write from then on. The
   * read side goes on (the peer's last bytes, a GOAWAY before it closed, may
   * still be on their way), unless it is done too.
   */
  protected failWrite(error: unknown): StreamwireError {
    if (this.writeFailure) return this.writeFailure;
    const failure = brokenError(this.remoteAddr, "writing", error);
    this.writeFailure = failure;
    this.writeDone = true;
    this.writeController?.error(failure);
    // Nothing left to read either: the connection is done.
    if (this.readDone) this.shutdown(failure);
    return failure;
  }

  /**
   * Marks the connection closing and settles both sides: the read side ends
   * (the readable closes, or errors with `error`), writes fail from now on.
   */
  protected settle(error: StreamwireError | undefined): void {
    this.closing = true;
    this.closeError = error;
    if (!this.readDone) {
      this.readDone = true;
      this.readFailure = error;
      try {
        if (error) this.readController?.error(error);
        else this.readController?.close();
      } catch {
        // Already closed or cancelled by its reader.
      }
    }
    this.endWrites();
  }

  /** Ends the write side: writes and the writable fail with {@linkcode PullConnection.writeError}. */
  protected endWrites(): void {
    this.writeDone = true;
    this.writeController?.error(this.writeError());
  }

  /**
   * The peer's EOF reached the reader: closes now if this side is done
   * writing, else once its writes are (unless half-open is allowed).
   */
  protected closeAfterEof(): void {
    if (this.writeDone && !this.writing) this.close();
    else if (!this.allowHalfOpen && !this.writeDone) this.idleCheck = this.closeWhenIdle();
  }

  /**
   * Closes once no write is in flight and none starts within a macrotask, so
   * what a pipe already queued still goes out before the connection closes.
   */
  protected async closeWhenIdle(): Promise<void> {
    while (!this.closing && !this.writeDone) {
      if (this.writing) {
        await this.writing.catch(() => {});
        continue;
      }
      const seq = this.writeSeq;
      await nextMacrotask();
      if (seq === this.writeSeq && !this.writing) break;
    }
    // A writable closed meanwhile finishes the job in closeWrite.
    if (!this.writeDone) this.close();
  }

  /** Resolves `closed` once `inFlight` (and the writes and idle wait) settle. */
  protected closeAfter(inFlight?: Promise<unknown>): void {
    Promise.allSettled([inFlight, this.writing, this.idleCheck]).then(() => this.markClosed());
  }

  /** Has `listener` told once the connection is closed (one listener: the session). */
  listen(listener: CloseListener): void {
    if (this.#isClosed) queueMicrotask(() => listener.connectionClosed());
    else this.#listener = listener;
  }

  /** The connection is closed and its I/O settled: resolves `closed`. */
  protected markClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#resolveClosed?.();
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.connectionClosed();
  }
}
