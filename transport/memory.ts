/**
 * In-memory connections for tests: a connected pair, and a listener that
 * servers accept from with the same code as over TCP. Backpressure is real:
 * a write resolves only once the peer's queue is below its high-water mark.
 * Like the socket connections they have the pull interface (`read()` and
 * `write()`), and make their streams only when first used.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection, Listener } from "./connection.ts";
import { closedError, PullConnection, type PullConnectionInit } from "./_pull_connection.ts";

/** Options of {@linkcode memoryPair} and {@linkcode memoryListener}. */
export interface MemoryPairOptions {
  /**
   * Bytes buffered per direction before a write waits for the reader, like a
   * socket's buffers; `0` makes every write wait until the reader takes it.
   *
   * @default {65536}
   */
  highWaterMark?: number;
  /**
   * Keep a connection open after the peer's EOF, so it can still write.
   * When `false`, EOF closes the connection once its writes in flight are
   * done (as for sockets).
   *
   * @default {false}
   */
  allowHalfOpen?: boolean;
}

/** A {@linkcode Listener} of in-memory connections, with its own dialer. */
export interface MemoryListener extends Listener {
  /**
   * Opens a connection to this listener; its server side is yielded by the
   * iteration.
   *
   * @returns The client side.
   * @throws {StreamwireError} `unavailable` once the listener is closed.
   */
  connect(): Promise<Connection>;
}

const DEFAULT_HIGH_WATER_MARK = 65536;

let lastId = 0;

function nextAddr(): string {
  return `memory://${++lastId}`;
}

function checkOptions(options: MemoryPairOptions): Required<MemoryPairOptions> {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  if (!(highWaterMark >= 0) || !Number.isFinite(highWaterMark)) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `highWaterMark '${highWaterMark}' must be a finite number of bytes, at least 0`,
    );
  }
  return { highWaterMark, allowHalfOpen: options.allowHalfOpen ?? false };
}

/**
 * One direction: a byte-counted queue the writer fills and the reader
 * drains. The queue is kept here rather than in a stream (a
 * `ByteLengthQueuingStrategy`) so that, as with a socket, EOF is seen only
 * when the reader asks for more after the last chunk; a stream-side queue
 * would report it as soon as the last chunk left. The readable over it
 * (highWaterMark 0) is made only if asked for.
 */
class Pipe {
  /** Called once when the reader reaches EOF (`false`) or cancels (`true`). */
  onReadEnd: (cancelled: boolean) => void = () => {};
  #readable: ReadableStream<Uint8Array> | undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #highWaterMark: number;
  #queue: Uint8Array[] = [];
  #bytes = 0;
  /** The writer ended: EOF once the queue is read. */
  #ended = false;
  /** The reader side is gone: the queue was dropped, writes fail. */
  #dropped = false;
  /** The read side is done: EOF reached or cancelled. */
  #done = false;
  #dataReady: PromiseWithResolvers<void> | undefined;
  #drained: PromiseWithResolvers<void> | undefined;

  constructor(highWaterMark: number) {
    this.#highWaterMark = highWaterMark;
  }

  /** The chunks as a stream, made on first use; ended already if the reads were. */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        if (this.#done) controller.close();
      },
      pull: async (controller) => {
        const chunk = await this.read();
        // null: #finish closed the stream.
        if (chunk !== null) controller.enqueue(chunk);
      },
      cancel: () => this.#finish(true),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** Whether a writer must wait: at or above the mark, or (mark 0) anything queued. */
  #full(): boolean {
    return this.#bytes > 0 && this.#bytes >= this.#highWaterMark;
  }

  /** The next chunk, or `null` once the writer ended and the queue is empty. */
  async read(): Promise<Uint8Array | null> {
    while (this.#queue.length === 0) {
      if (this.#done) return null;
      if (this.#ended) {
        this.#finish(false);
        return null;
      }
      this.#dataReady = Promise.withResolvers();
      await this.#dataReady.promise;
    }
    const chunk = this.#queue.shift()!;
    this.#bytes -= chunk.byteLength;
    if (!this.#full()) this.#release();
    return chunk;
  }

  /**
   * Queues a copy of `chunk`; resolves once the queue is below the mark.
   * Rejects with `closed()` when the reader side went away.
   */
  async write(chunk: Uint8Array, closed: () => StreamwireError): Promise<void> {
    if (this.#dropped || this.#ended) throw closed();
    if (chunk.byteLength === 0) return;
    // A copy the writer cannot touch (`slice` of a Node Buffer would be a view).
    this.#queue.push(new Uint8Array(chunk));
    this.#bytes += chunk.byteLength;
    this.#wakeReader();
    if (!this.#full()) return;
    this.#drained ??= Promise.withResolvers();
    await this.#drained.promise;
    if (this.#dropped) throw closed();
  }

  /** The writer is done: the reader sees EOF after what is queued. */
  end(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  /** The reader side closed: drop what is queued, EOF now, fail the writer. */
  drop(): void {
    this.#dropped = true;
    this.#ended = true;
    this.#queue = [];
    this.#bytes = 0;
    this.#wakeReader();
    this.#release();
  }

  #wakeReader(): void {
    this.#dataReady?.resolve();
    this.#dataReady = undefined;
  }

  #release(): void {
    this.#drained?.resolve();
    this.#drained = undefined;
  }

  #finish(cancelled: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (!cancelled) this.#controller?.close();
    this.onReadEnd(cancelled);
  }
}

/** One side of an in-memory pair. */
class MemoryConnection extends PullConnection {
  readonly transport = "memory" as const;
  peer!: MemoryConnection;

  #inbound: Pipe;
  #outbound: Pipe;

  constructor(inbound: Pipe, outbound: Pipe, init: PullConnectionInit) {
    super(init);
    this.#inbound = inbound;
    this.#outbound = outbound;
    inbound.onReadEnd = (cancelled) => this.#onReadEnd(cancelled);
  }

  override get readable(): ReadableStream<Uint8Array> {
    return this.#inbound.readable;
  }

  read(): Promise<Uint8Array | null> {
    return this.#inbound.read();
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.writeDone || !(chunk instanceof Uint8Array)) return this.refuseWrite(chunk);
    this.writeSeq++;
    const writing = this.#outbound.write(chunk, () => this.writeError());
    this.writing = writing;
    try {
      await writing;
    } finally {
      this.writing = undefined;
    }
  }

  protected closeWrite(): void {
    this.writeDone = true;
    this.writeSeq++;
    this.#outbound.end();
    if (this.readDone) this.close();
  }

  #onReadEnd(cancelled: boolean): void {
    this.readDone = true;
    if (cancelled) this.close();
    else this.closeAfterEof();
  }

  /**
   * The peer closed: nothing more can be written; what it sent stays
   * readable, through EOF, as a socket's bytes received before a reset do.
   */
  #peerClosed(): void {
    if (this.closing) return;
    this.closing = true;
    this.writeFailure = new StreamwireError(
      Status.UNAVAILABLE,
      `Connection '${this.remoteAddr}' closed by peer`,
    );
    this.endWrites();
    this.closeAfter();
  }

  /** Closes this side (its writes fail with `cancelled`), and the peer's write side. */
  protected shutdown(): void {
    if (this.closing) return;
    this.closing = true;
    this.closeError = closedError(this.remoteAddr);
    this.endWrites();
    // EOF for the peer after what it has queued; it stays readable, as a
    // socket's data sent before close does.
    this.#outbound.end();
    // Our readable ends now; the peer's writes fail.
    this.#inbound.drop();
    this.closeAfter();
    this.peer.#peerClosed();
  }
}

/**
 * Two connected in-memory {@linkcode Connection}s, for tests. Each write is
 * copied, and resolves once the peer's queue is below `highWaterMark` bytes.
 *
 * @param options Buffering per direction and half-close.
 * @returns The two ends; what one writes the other reads.
 *
 * @example Backpressure: writes wait for the reader
 * ```ts
 * import { memoryPair } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = memoryPair({ highWaterMark: 4 });
 * const writer = a.writable.getWriter();
 * let done = false;
 * const write = writer.write(new Uint8Array(8)).then(() => done = true);
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * assert.equal(done, false);
 * const reader = b.readable.getReader();
 * assert.equal((await reader.read()).value?.byteLength, 8);
 * await write;
 * a.close();
 * await Promise.all([a.closed, b.closed]);
 * ```
 */
export function memoryPair(options: MemoryPairOptions = {}): [Connection, Connection] {
  const { highWaterMark, allowHalfOpen } = checkOptions(options);
  return connectedPair(nextAddr(), nextAddr(), { highWaterMark, allowHalfOpen });
}

function connectedPair(
  first: string,
  second: string,
  options: Required<MemoryPairOptions>,
): [MemoryConnection, MemoryConnection] {
  const toSecond = new Pipe(options.highWaterMark);
  const toFirst = new Pipe(options.highWaterMark);
  const { allowHalfOpen } = options;
  const a = new MemoryConnection(toFirst, toSecond, {
    localAddr: first,
    remoteAddr: second,
    allowHalfOpen,
  });
  const b = new MemoryConnection(toSecond, toFirst, {
    localAddr: second,
    remoteAddr: first,
    allowHalfOpen,
  });
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryListenerImpl implements MemoryListener {
  readonly addr: string = nextAddr();
  #options: Required<MemoryPairOptions>;
  #pending: Connection[] = [];
  #waiters = new Set<() => void>();
  #closed = false;

  constructor(options: Required<MemoryPairOptions>) {
    this.#options = options;
  }

  connect(): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(
        new StreamwireError(Status.UNAVAILABLE, `Listener '${this.addr}' is closed`),
      );
    }
    const [client, server] = connectedPair(nextAddr(), this.addr, this.#options);
    this.#pending.push(server);
    this.#wake();
    return Promise.resolve(client);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (!this.#closed) {
      const conn = this.#pending.shift();
      if (conn) {
        yield conn;
        continue;
      }
      await new Promise<void>((resolve) => this.#waiters.add(resolve));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Dialed but never accepted: their clients see the connection closed.
    for (const conn of this.#pending.splice(0)) conn.close();
    this.#wake();
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

/**
 * A listener of in-memory connections, for testing a server with the same
 * code as over TCP: iterate it for server sides, `connect()` for client
 * sides. Client addresses are `memory://<n>`.
 *
 * @param options Buffering per direction and half-close of each connection.
 * @returns The listener; `close()` ends iterations and closes connections
 * dialed but not yet accepted.
 *
 * @example Serve over memory
 * ```ts
 * import { memoryListener } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = memoryListener();
 * const client = await listener.connect();
 * for await (const server of listener) {
 *   assert.equal(server.remoteAddr, client.localAddr);
 *   assert.equal(client.remoteAddr, listener.addr);
 *   server.close();
 *   break;
 * }
 * listener.close();
 * await client.closed;
 * ```
 */
export function memoryListener(options: MemoryPairOptions = {}): MemoryListener {
  return new MemoryListenerImpl(checkOptions(options));
}
