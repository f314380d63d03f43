/**
 * The one small interface every transport plugs in behind: a readable and a
 * writable of bytes, two addresses, and close; optionally a pull interface
 * (`read()` and `write()`) that moves the same bytes without the streams.
 *
 * @module
 */

/** The transports a {@linkcode Connection} can run over. */
export type TransportName = "tcp" | "tls" | "unix" | "memory" | "quic" | "ws" | "wss";

/**
 * A bidirectional byte stream to one peer: TCP, TLS, a Unix socket or an
 * in-memory pair. It knows nothing of frames.
 *
 * Ownership: each chunk of {@linkcode Connection.readable} is a fresh
 * `Uint8Array` that the connection never touches again, so a reader may keep
 * zero-copy views into it. A chunk written to {@linkcode Connection.writable}
 * is not referenced by the connection once its write has resolved, so the
 * writer may reuse it then.
 *
 * Ending: the peer's end (EOF) closes the readable. Unless `allowHalfOpen` is
 * set, reaching EOF also closes the connection once the writes in flight are
 * done; so `closed` resolves on both sides after either calls `close()`, as
 * long as each side reads. Closing the writable (`writer.close()`) only
 * half-closes: the peer sees EOF, and this side can still read.
 *
 * A failed write ends the write side only: later writes fail with the same
 * error, but what the peer sent before it went away (a GOAWAY, an ERROR)
 * stays readable until EOF, and the connection closes when the reader gets
 * there. A side that only writes calls `close()` after a failed write.
 *
 * Two ways to move bytes: the streams ({@linkcode Connection.readable},
 * {@linkcode Connection.writable}), which pipe, or the pull interface
 * ({@linkcode Connection.read}, {@linkcode Connection.write}), for a caller
 * that drives its own loop. A connection that offers the pull interface
 * makes its streams only when they are first used, so a caller of
 * `read()` and `write()` saves a ReadableStream and a WritableStream with
 * their reader, writer and callbacks: about 4 KiB of heap per connection.
 * Use one way or the other for each direction, never both.
 *
 * @example Round trip over an in-memory pair
 * ```ts
 * import { memoryPair } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const [client, server] = memoryPair();
 * const writer = client.writable.getWriter();
 * await writer.write(Uint8Array.of(1, 2, 3));
 * await writer.close();
 * const chunks = await Array.fromAsync(server.readable);
 * assert.deepEqual(chunks, [Uint8Array.of(1, 2, 3)]);
 * await Promise.all([client.closed, server.closed]);
 * ```
 */
export interface Connection {
  /**
   * Bytes from the peer. Each chunk is a fresh buffer owned by the reader.
   * Closes at the peer's EOF or after {@linkcode Connection.close}; errors
   * with a `StreamwireError` of code `unavailable` when the connection breaks.
   * Cancelling it closes the connection.
   */
  readonly readable: ReadableStream<Uint8Array>;
  /**
   * Bytes to the peer. A write resolves once the bytes were handed to the OS
   * (or the peer's queue); closing it half-closes the connection, aborting it
   * closes the connection.
   */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * The next chunk from the peer, without {@linkcode Connection.readable}:
   * a fresh `Uint8Array` that the caller owns (the connection never touches
   * it again), or `null` at the peer's EOF or once the connection is closed.
   * One read at a time; not to be mixed with reading the readable.
   * Optional: the socket and in-memory connections have it.
   *
   * @returns The next chunk, or `null` at the end.
   * @throws {StreamwireError} `unavailable` when the connection broke.
   *
   * @example Pull bytes without the streams
   * ```ts
   * import { memoryPair } from "@streamwire/streamwire/transport";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = memoryPair();
   * await a.write!(Uint8Array.of(1, 2, 3));
   * assert.deepEqual(await b.read!(), Uint8Array.of(1, 2, 3));
   * a.close();
   * assert.equal(await b.read!(), null);
   * await Promise.all([a.closed, b.closed]);
   * ```
   */
  read?(): Promise<Uint8Array | null>;
  /**
   * Writes a chunk without {@linkcode Connection.writable}. Resolves once
   * the bytes were handed to the OS (or the peer's queue); until then
   * `chunk` must not be modified, and afterwards the connection holds no
   * reference to it, so the caller may reuse it. One write at a time; not to
   * be mixed with writing the writable. An empty chunk resolves at once.
   * Optional: the socket and in-memory connections have it.
   *
   * @param chunk The bytes to write.
   * @returns A promise that resolves once the bytes are written.
   * @throws {StreamwireError} `cancelled` once this side closed (or
   *   half-closed), `unavailable` when the connection broke or the peer
   *   closed; after a failure, every later write rejects with the same error.
   *
   * @example A write after close rejects with cancelled
   * ```ts
   * import { memoryPair } from "@streamwire/streamwire/transport";
   * import { Status } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = memoryPair();
   * a.close();
   * await assert.rejects(a.write!(Uint8Array.of(1)), { code: Status.CANCELLED });
   * await Promise.all([a.closed, b.closed]);
   * ```
   */
  write?(chunk: Uint8Array): Promise<void>;
  /** The peer's address in URL form, such as `"tcp://127.0.0.1:5555"` or `"memory://1"`. */
  readonly remoteAddr: string;
  /** This side's address in URL form, such as `"unix:///tmp/x.sock"`. */
  readonly localAddr: string;
  /** The transport the connection runs over. */
  readonly transport: TransportName;
  /**
   * Closes the connection: ends the readable, errors the writable with a
   * `StreamwireError` of code `cancelled` and releases the socket. Safe to
   * call any number of times, from any state; never throws.
   */
  close(): void;
  /**
   * Resolves (never rejects) once the connection is closed, for whatever
   * reason (EOF from the peer, reset, {@linkcode Connection.close}), and the
   * I/O it had in flight has settled. After a failed write, that is once the
   * reader reached EOF or a read error.
   */
  readonly closed: Promise<void>;
}

/**
 * Accepted connections of one listening address, as an async iterable.
 * Iteration ends cleanly when the listener is closed; transient accept errors
 * (such as running out of file descriptors) are retried, not thrown.
 *
 * @example Accept one connection
 * ```ts
 * import { dial, listen } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = listen({ port: 0 });
 * const client = await dial(listener.addr);
 * for await (const server of listener) {
 *   assert.equal(server.remoteAddr, client.localAddr);
 *   server.close();
 *   break;
 * }
 * listener.close();
 * client.close();
 * await client.closed;
 * ```
 */
export interface Listener extends AsyncIterable<Connection> {
  /** The listening address in URL form, with the real port: `"tcp://127.0.0.1:40123"`. */
  readonly addr: string;
  /**
   * Stops accepting: ends every iteration and releases the socket. Leaves
   * the connections already accepted open. Safe to call many times.
   */
  close(): void;
}

/** Options of a socket {@linkcode Connection}: read sizing and half-close. */
export interface ConnectionOptions {
  /**
   * Size in bytes of the buffer each read starts with, and the size the
   * reads shrink back to when the traffic is small. This is the memory an
   * idle connection holds in its pending read, so it is kept small: most
   * RPC messages fit, and a bigger message only costs a few more reads.
   *
   * @default {512}
   */
  readSize?: number;
  /**
   * Largest read buffer in bytes. A read that fills its buffer doubles the
   * next one up to this bound, so bulk transfers move large chunks while no
   * peer can make one connection hold more than this per read.
   *
   * @default {65536, or readSize if larger}
   */
  maxReadSize?: number;
  /**
   * Keep the connection open after the peer's EOF, so this side can still
   * write (for a peer that half-closed with `writer.close()`). When `false`,
   * EOF closes the connection once the writes in flight are done.
   *
   * @default {false}
   */
  allowHalfOpen?: boolean;
}
