// Credit flow control of streaming calls (PROTOCOL.md 3.2), shared by the
// calling and the called side.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";

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
