// Messages of a socket of the WebSocket API: the server side of
// Deno.upgradeWebSocket and a browser's WebSocket. The API delivers every
// message as an event, whole, and cannot be paused, so unread messages are
// bounded here; sending waits while `bufferedAmount` is over its bound.
// No Deno and no node: imports. Private to transport/.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { MessageChannel } from "./_websocket_connection.ts";
import { CloseCode, textMessage, tooBig, Violation } from "./_websocket_frames.ts";

/** Bounds of an {@linkcode ApiChannel}. */
export interface ApiChannelOptions {
  /** Bytes of received messages not yet read; one message is always taken. */
  maxInboundBytes: number;
  /** `bufferedAmount` above which a send waits before resolving. */
  maxBufferedAmount: number;
  /** Largest message before the first `receive()` says otherwise. */
  maxMessage: number;
}

/** readyState values of the WebSocket API. */
const CONNECTING = 0;
const OPEN = 1;

/** First and longest pause (ms) between two looks at `bufferedAmount` while over its bound. */
const FIRST_POLL_MS = 1;
const LAST_POLL_MS = 16;

const RESOLVED = Promise.resolve();

/** A WebSocket-API socket as a {@linkcode MessageChannel}. */
export class ApiChannel implements MessageChannel {
  readonly closed: Promise<void>;
  onViolation?: (violation: Violation) => void;

  #socket: WebSocket;
  #options: ApiChannelOptions;
  #limit: number;
  #queue: Uint8Array[] = [];
  #bytes = 0;
  #waiter: { resolve(m: Uint8Array | null): void; reject(e: unknown): void } | undefined;
  /** No more messages: the peer closed, or close() was called. */
  #ended = false;
  #closedLocally = false;
  /** How the socket ended, if not cleanly. */
  #failure: StreamwireError | undefined;
  #violation: Violation | undefined;
  #opened: PromiseWithResolvers<void> | undefined;

  /**
   * Takes over `socket`'s events.
   *
   * @param socket A socket, open or connecting.
   * @param options Bounds.
   */
  constructor(socket: WebSocket, options: ApiChannelOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#limit = options.maxMessage;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => this.#message(event.data);
    this.closed = new Promise((resolve) => {
      socket.onclose = (event) => {
        this.#ended = true;
        if (!event.wasClean && !this.#closedLocally) {
          this.#failure = new StreamwireError(
            Status.UNAVAILABLE,
            `WebSocket closed abnormally (code ${event.code}${
              event.reason ? `: ${event.reason}` : ""
            })`,
          );
        }
        this.#opened?.reject(this.#closedError());
        this.#settleWaiter();
        resolve();
      };
    });
  }

  receive(limit: number): Promise<Uint8Array | null> {
    this.#limit = limit;
    if (this.#violation) return Promise.reject(this.#violation);
    if (this.#queue.length > 0) {
      const message = this.#queue.shift()!;
      this.#bytes -= message.length;
      return Promise.resolve(message);
    }
    if (this.#ended) return this.#failure ? Promise.reject(this.#failure) : Promise.resolve(null);
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  send(message: Uint8Array): Promise<void> {
    const socket = this.#socket;
    const state = socket.readyState;
    if (state === CONNECTING) return this.#open().then(() => this.send(message));
    if (state !== OPEN) return Promise.reject(this.#closedError());
    // The API copies the bytes (WHATWG WebSockets, send()), so `message` is free again.
    socket.send(message);
    if (socket.bufferedAmount <= this.#options.maxBufferedAmount) return RESOLVED;
    return this.#drained();
  }

  close(code: number, reason: string): void {
    this.#closedLocally = true;
    this.#ended = true;
    this.#queue = [];
    this.#bytes = 0;
    this.#settleWaiter();
    const socket = this.#socket;
    if (socket.readyState !== CONNECTING && socket.readyState !== OPEN) return;
    try {
      socket.close(code, reason);
    } catch {
      // A browser's API sends only 1000 and 3000-4999: the status code in
      // the application range stands for the RFC 6455 code it refuses.
      try {
        socket.close(code === CloseCode.NORMAL ? code : 4000 + this.#closeStatus(), reason);
      } catch {
        // Closing already.
      }
    }
  }

  #closeStatus(): number {
    return this.#violation?.code ?? Status.UNKNOWN;
  }

  #message(data: unknown): void {
    if (this.#ended || this.#violation) return;
    if (typeof data === "string") return this.#violate(textMessage());
    const message = new Uint8Array(data as ArrayBuffer);
    // The API has buffered it whole already; the bound still refuses it.
    if (message.length > this.#limit) return this.#violate(tooBig(message.length, this.#limit));
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      return waiter.resolve(message);
    }
    if (this.#queue.length > 0 && this.#bytes + message.length > this.#options.maxInboundBytes) {
      return this.#violate(
        new Violation(
          Status.RESOURCE_EXHAUSTED,
          `Peer sent past the bound of unread messages ('${this.#options.maxInboundBytes}' bytes)`,
          CloseCode.POLICY_VIOLATION,
        ),
      );
    }
    this.#queue.push(message);
    this.#bytes += message.length;
  }

  #violate(violation: Violation): void {
    this.#violation = violation;
    this.#queue = [];
    this.#bytes = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(violation);
    this.onViolation?.(violation);
  }

  /** Wakes a pending receive at the end: null, or the failure. */
  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined || this.#queue.length > 0) return;
    this.#waiter = undefined;
    if (this.#failure && !this.#closedLocally) waiter.reject(this.#failure);
    else waiter.resolve(null);
  }

  #closedError(): StreamwireError {
    return this.#closedLocally
      ? new StreamwireError(Status.CANCELLED, "WebSocket is closed")
      : this.#failure ?? new StreamwireError(Status.UNAVAILABLE, "WebSocket closed by the peer");
  }

  #open(): Promise<void> {
    if (this.#opened === undefined) {
      const opened = this.#opened = Promise.withResolvers<void>();
      opened.promise.catch(() => {});
      this.#socket.onopen = () => opened.resolve();
    }
    return this.#opened.promise;
  }

  /** Resolves once `bufferedAmount` is within its bound, looking on a timer only meanwhile. */
  #drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      let wait = FIRST_POLL_MS;
      const look = () => {
        const socket = this.#socket;
        if (socket.readyState !== OPEN) return reject(this.#closedError());
        if (socket.bufferedAmount <= this.#options.maxBufferedAmount) return resolve();
        setTimeout(look, wait);
        wait = Math.min(wait * 2, LAST_POLL_MS);
      };
      setTimeout(look, wait);
    });
  }
}
