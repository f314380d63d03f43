// What the calling and the serving side share: credit flow control of
// streaming calls (PROTOCOL.md 3.2), values as codec bytes, and queueing
// messages without dropping them.

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodedBodySize, type Message } from "../codec/message.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";

/**
 * What calls need of the connection they run on: a bounded outbound queue
 * and the negotiated frame limit. A `Session` is one; a dispatcher built
 * from pipes (`RpcDispatcherStream`) has its own.
 */
export interface Outlet {
  /** Session id, for logs. */
  readonly id: string;
  /** When the last read arrived (ms since epoch), where the outlet reads a connection. */
  readonly stats?: { readonly lastReceivedAt: number };
  /** Negotiated settings; `maxFrame` bounds every frame sent. */
  readonly settings: { readonly maxFrame: number } | undefined;
  /** lastId of the GOAWAY this side sent: calls above it are refused. */
  readonly goawayLastId: number | undefined;
  /** Whether the outbound queue is within its bound. */
  readonly writable: boolean;
  /**
   * Queues a message if there is room; small control frames always.
   *
   * @throws {StreamwireError} `resource_exhausted` for a frame larger than `maxFrame`.
   */
  send(message: Message): boolean;
  /** Queues a message once there is room; rejects `unavailable` if the connection closed first. */
  write(message: Message): Promise<void>;
  /** Resolves once the queue is within its bound (or the connection closed). */
  ready(): Promise<void>;
}

/** What a handler may return as a stream of values. */
export type StreamOutput = ReadableStream<unknown> | AsyncIterable<unknown> | Iterable<unknown>;

/** A served call whose values are being sent. */
export interface Producing {
  id: number;
  /** Credit for its DATA. */
  gate?: CreditGate;
  /** Set once the call was aborted: nothing more is sent. */
  reason: unknown;
}

const EMPTY = new Uint8Array(0);

/** Codec bytes of a value; `undefined` is "no value", zero bytes (PROTOCOL.md 2.1). */
export function encodeValue(codec: PayloadCodec, value: unknown): Uint8Array {
  return value === undefined ? EMPTY : codec.encode(value);
}

/** The value of codec bytes; zero bytes are `undefined`. */
export function decodeValue(codec: PayloadCodec, bytes: Uint8Array): unknown {
  return bytes.length === 0 ? undefined : codec.decode(bytes);
}

/**
 * Queues a message on the session, waiting for room while its queue is
 * full, so nothing is dropped while the session lives.
 *
 * @returns Undefined when queued at once, else a promise that resolves once
 *   queued and rejects `unavailable` if the session closed first.
 * @throws {StreamwireError} `resource_exhausted`, synchronously, for a frame
 *   larger than the session's `maxFrame`.
 */
export function enqueue(session: Outlet, message: Message): Promise<void> | undefined {
  if (session.send(message)) return undefined;
  return session.write(message);
}

/** Does nothing: for promises whose failure is handled elsewhere. */
export function ignore(): void {}

/** A value the codec could not encode: this side's fault. */
export function notEncodable(error: unknown): StreamwireError {
  return new StreamwireError(
    Status.INTERNAL,
    `Result not encodable: ${(error as Error)?.message ?? String(error)}`,
  );
}

/** An answer the session refused for being larger than the negotiated maxFrame. */
export function tooLarge(session: Outlet, message: Message): StreamwireError {
  return new StreamwireError(
    Status.RESOURCE_EXHAUSTED,
    `Result of '${
      encodedBodySize(message)
    }' bytes exceeds maxFrame '${session.settings?.maxFrame}'`,
  );
}

/**
 * Queues one DATA of a served call; a promise only while the queue is full.
 *
 * @throws {StreamwireError} `internal` for a value the codec cannot encode,
 *   `resource_exhausted` for one larger than maxFrame.
 */
export function queueValue(
  session: Outlet,
  codec: PayloadCodec,
  id: number,
  value: unknown,
): Promise<void> | undefined {
  let data: Uint8Array;
  try {
    data = encodeValue(codec, value);
  } catch (error) {
    throw notEncodable(error);
  }
  const message = { type: FrameType.DATA, seq: id, data } as const;
  try {
    return enqueue(session, message);
  } catch {
    throw tooLarge(session, message);
  }
}

/** Sends each value of `output` as DATA, against credit, until done or the call is aborted. */
export async function produce(
  session: Outlet,
  codec: PayloadCodec,
  call: Producing,
  output: StreamOutput,
): Promise<void> {
  const gate = call.gate!;
  // Credit and queue room are awaited only when exhausted, so a producer
  // with values at hand sends a whole window in one synchronous run and
  // the session writes it as one chunk: each await is a microtask hop per
  // value, and hops split the session's writes. A DATA the full queue did
  // not take is awaited before the next one, so END never overtakes it.
  // `call.reason` is checked after every await: once the call is cancelled,
  // timed out or its session gone, nothing more is sent for it (3.2).
  const room = async (): Promise<boolean> => {
    if (!gate.tryTake()) await gate.take();
    if (!session.writable) await session.ready();
    return call.reason === undefined;
  };
  let finished = false;
  if (output instanceof ReadableStream) {
    const reader = output.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          finished = true;
          break;
        }
        if (call.reason !== undefined) break;
        // The gate closes only with call.reason set: credit left means tryTake succeeds.
        if (gate.credit <= 0 || !session.writable) {
          if (!(await room())) break;
        } else gate.tryTake();
        const sending = queueValue(session, codec, call.id, value);
        if (sending !== undefined) await sending;
      }
    } finally {
      // Left early (cancelled, or a value that could not be sent): the source stops too.
      if (!finished) reader.cancel(call.reason).catch(ignore);
      reader.releaseLock();
    }
    return;
  }
  if (!(Symbol.asyncIterator in output)) {
    const iterator = (output as Iterable<unknown>)[Symbol.iterator]();
    try {
      while (call.reason === undefined) {
        const step = iterator.next();
        if (step.done) {
          finished = true;
          break;
        }
        if (gate.credit <= 0 || !session.writable) {
          if (!(await room())) break;
        } else gate.tryTake();
        const sending = queueValue(session, codec, call.id, step.value);
        if (sending !== undefined) await sending;
      }
    } finally {
      if (!finished) iterator.return?.();
    }
    return;
  }
  const iterator = (output as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        finished = true;
        break;
      }
      if (call.reason !== undefined) break;
      if (gate.credit <= 0 || !session.writable) {
        if (!(await room())) break;
      } else gate.tryTake();
      const sending = queueValue(session, codec, call.id, step.value);
      if (sending !== undefined) await sending;
    }
  } finally {
    if (!finished) await iterator.return?.();
  }
}

/**
 * Incoming DATA of one call, exposed as a ReadableStream whose consumption
 * grants CREDIT. The peer may send at most `window` frames beyond what the
 * consumer has taken, so the buffer here never holds more than `window`
 * values and the stream's own queue (high-water mark 0) holds none ahead of
 * a read.
 */
export class Inbox<T> {
  readonly readable: ReadableStream<T>;
  #buffer: T[] = [];
  #head = 0;
  #allowed: number;
  #received = 0;
  #consumedSinceGrant = 0;
  #window: number;
  #grant: (n: number) => void;
  #controller!: ReadableStreamDefaultController<T>;
  #waiting = false;
  #ended = false;
  #failed = false;

  /**
   * @param window Frames the peer may send before it needs CREDIT.
   * @param grant Sends CREDIT(n) to the peer.
   * @param cancel Called when the consumer cancels the stream.
   */
  constructor(window: number, grant: (n: number) => void, cancel: (reason: unknown) => void) {
    this.#window = window;
    this.#allowed = window;
    this.#grant = grant;
    this.readable = new ReadableStream<T>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: (reason) => {
        this.#ended = true;
        this.#buffer = [];
        cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** Values received and not yet handed to the consumer. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  /**
   * Accepts one DATA value.
   *
   * @throws {StreamwireError} `resource_exhausted` when the peer exceeds its credit.
   */
  push(value: T): void {
    if (this.#ended) return;
    if (this.#received >= this.#allowed) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `DATA beyond granted credit: '${
          this.#received - this.#allowed + 1
        }' frame(s) over a window of '${this.#window}'`,
      );
    }
    this.#received++;
    if (this.#waiting) {
      this.#waiting = false;
      this.#deliver(value);
      return;
    }
    this.#buffer.push(value);
  }

  /** The peer sent END. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiting || this.buffered === 0) {
      this.#waiting = false;
      try {
        this.#controller.close();
      } catch { /* already closed */ }
    }
  }

  /** The call failed. */
  error(reason: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#ended = true;
    this.#buffer = [];
    try {
      this.#controller.error(reason);
    } catch { /* already closed */ }
  }

  #pull(): void {
    if (this.buffered > 0) {
      // One value per read: CREDIT is granted for what the consumer took, so
      // values handed over but unread never add to the window (3.2).
      const value = this.#buffer[this.#head];
      this.#buffer[this.#head++] = undefined as T;
      if (this.#head === this.#buffer.length) {
        this.#buffer = [];
        this.#head = 0;
      } else if (this.#head >= 1024) {
        this.#buffer = this.#buffer.slice(this.#head);
        this.#head = 0;
      }
      this.#deliver(value);
      if (this.#ended && this.buffered === 0) this.#controller.close();
      return;
    }
    if (this.#ended) {
      this.#controller.close();
      return;
    }
    this.#waiting = true;
  }

  #deliver(value: T): void {
    this.#controller.enqueue(value);
    // Grant credit back in halves of the window: fewer CREDIT frames, and the
    // sender never stalls while the consumer keeps up.
    if (++this.#consumedSinceGrant >= Math.max(1, this.#window >>> 1)) {
      const n = this.#consumedSinceGrant;
      this.#consumedSinceGrant = 0;
      this.#allowed += n;
      if (!this.#ended) this.#grant(n);
    }
  }
}

/** Outgoing side: DATA frames may be sent only against credit. */
export class CreditGate {
  #credit: number;
  #waiter: (() => void) | undefined;
  #closed: unknown;

  /** @param window Initial credit (the handshake's window). */
  constructor(window: number) {
    this.#credit = window;
  }

  /** Credit left. */
  get credit(): number {
    return this.#credit;
  }

  /** Adds credit from a CREDIT frame. */
  grant(n: number): void {
    this.#credit += n;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** Takes one unit of credit if there is any; never waits. */
  tryTake(): boolean {
    if (this.#credit <= 0 || this.#closed !== undefined) return false;
    this.#credit--;
    return true;
  }

  /** Takes one unit of credit, waiting for CREDIT if none is left. */
  async take(): Promise<void> {
    while (this.#credit <= 0) {
      if (this.#closed !== undefined) throw this.#closed;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
    if (this.#closed !== undefined) throw this.#closed;
    this.#credit--;
  }

  /** Wakes a waiting sender with an error: the call ended. */
  close(reason: unknown): void {
    this.#closed = reason;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}
