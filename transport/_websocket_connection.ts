// A Connection over WebSocket messages, whatever carries them: the
// WebSocket API (a server socket of Deno.upgradeWebSocket, a browser's
// WebSocket) or the RFC 6455 client over a Deno socket. It puts whole frames
// in messages, checks what it receives, and answers a peer that breaks the
// mapping with ERROR and a Close. No Deno and no node: imports. Private to
// transport/.

import { DEFAULT_MAX_FRAME, HEADER_SIZE, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection } from "./connection.ts";
import { closedError, notBytesError } from "./_pull_connection.ts";
import {
  checkMessage,
  CloseCode,
  errorFrame,
  frameWalk,
  notWholeFrames,
  Violation,
} from "./_websocket_frames.ts";

/** Binary messages to and from one peer: what a {@linkcode WebSocketConnection} runs on. */
export interface MessageChannel {
  /**
   * The next binary message, a fresh buffer the caller owns, or `null` once
   * the peer closed (or `close()` was called). Rejects with a
   * {@linkcode Violation} for what breaks the mapping (a text message, a
   * message over `limit`, checked before it is buffered where the channel
   * can), or with `unavailable` when the connection broke.
   */
  receive(limit: number): Promise<Uint8Array | null>;
  /**
   * Sends one message; resolves once the channel has room for more (its
   * buffered bytes are within their bound). One at a time.
   */
  send(message: Uint8Array): Promise<void>;
  /** Starts the closing handshake with `code`; never throws. */
  close(code: number, reason: string): void;
  /** Resolves once the channel is closed and its I/O has settled. */
  readonly closed: Promise<void>;
  /** Called by the channel for a violation found outside `receive()`. */
  onViolation?: (violation: Violation) => void;
}

/** Options of a {@linkcode WebSocketConnection}. */
export interface WebSocketConnectionOptions {
  transport: "ws" | "wss";
  localAddr: string;
  remoteAddr: string;
  /** Bound on frame bodies until a HELLO_ACK names the negotiated one. */
  maxFrame?: number;
  /** Called once when the connection starts closing, whoever closes it. */
  onClose?: () => void;
}

/** Gives up on sending the ERROR and Close of a violation after this long (ms). */
const VIOLATION_CLOSE_MS = 1000;

/**
 * A {@linkcode Connection} whose chunks are WebSocket messages. Each chunk
 * written must hold whole frames (a session's writes do); it goes out as one
 * message, or as several cut at frame boundaries when it exceeds the
 * negotiated maxFrame plus a header. Each chunk read is one message, checked
 * to hold whole frames within that bound.
 */
export class WebSocketConnection implements Connection {
  readonly transport: "ws" | "wss";
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly closed: Promise<void>;

  #channel: MessageChannel;
  #maxFrame: number;
  /** The negotiated maxFrame was seen in a HELLO_ACK. */
  #negotiated = false;
  #closing = false;
  #readDone = false;
  #violation: Violation | undefined;
  #writeFailure: StreamwireError | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #rejectRead: ((error: unknown) => void) | undefined;
  #onClose: (() => void) | undefined;

  /**
   * Wraps a channel, which the connection owns from now on.
   *
   * @param channel The messages.
   * @param options Addresses and the bound before the handshake.
   */
  constructor(channel: MessageChannel, options: WebSocketConnectionOptions) {
    this.#channel = channel;
    this.transport = options.transport;
    this.localAddr = options.localAddr;
    this.remoteAddr = options.remoteAddr;
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#onClose = options.onClose;
    channel.onViolation = (violation) => this.#violate(violation);
    this.closed = channel.closed.then(() => {
      this.#closing = true;
      this.#closedHook();
    });
  }

  /** Largest message accepted and sent: maxFrame (negotiated once known) plus one header. */
  get maxMessage(): number {
    return this.#maxFrame + HEADER_SIZE;
  }

  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      // No half-close in WebSocket: closing the writable closes the connection.
      close: () => this.close(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#violation) return Promise.reject(this.#violation);
    if (this.#readDone) return Promise.resolve(null);
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#rejectRead = reject;
      this.#channel.receive(this.maxMessage).then((message) => {
        this.#rejectRead = undefined;
        if (message === null) {
          this.#readDone = true;
          return resolve(null);
        }
        const { violation, maxFrame } = checkMessage(message, this.maxMessage);
        if (violation) {
          this.#violate(violation);
          return reject(violation);
        }
        if (maxFrame !== undefined && !this.#negotiated) this.#negotiate(maxFrame);
        resolve(message);
      }, (error) => {
        this.#rejectRead = undefined;
        if (error instanceof Violation) this.#violate(error);
        else this.#readDone = true;
        reject(error instanceof StreamwireError ? error : this.#broken(error));
      });
    });
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#writeFailure) return Promise.reject(this.#writeFailure);
    if (this.#closing || this.#violation) return Promise.reject(closedError(this.remoteAddr));
    if (!(chunk instanceof Uint8Array)) return this.#failWrite(notBytesError(chunk));
    if (chunk.length === 0) return Promise.resolve();
    const walk = frameWalk(chunk, this.maxMessage, !this.#negotiated);
    if (walk === undefined) return this.#failWrite(notWholeFrames(chunk.length));
    // The server writes the HELLO_ACK: its maxFrame binds what follows it.
    if (walk.maxFrame !== undefined) this.#negotiate(walk.maxFrame);
    const ends = walk.ends;
    if (ends.length === 1) return this.#send(chunk);
    return this.#sendAll(chunk, ends);
  }

  close(): void {
    this.#shutdown(CloseCode.NORMAL, "");
  }

  #negotiate(maxFrame: number): void {
    this.#negotiated = true;
    this.#maxFrame = maxFrame;
  }

  #send(message: Uint8Array): Promise<void> {
    return this.#channel.send(message).catch((error) => this.#failWrite(this.#broken(error)));
  }

  async #sendAll(chunk: Uint8Array, ends: number[]): Promise<void> {
    let start = 0;
    for (const end of ends) {
      await this.#send(chunk.subarray(start, end));
      start = end;
    }
  }

  #failWrite(error: StreamwireError): Promise<never> {
    if (!this.#closing && error.code !== Status.CANCELLED) this.#writeFailure ??= error;
    return Promise.reject(this.#writeFailure ?? error);
  }

  #broken(error: unknown): StreamwireError {
    if (error instanceof StreamwireError) return error;
    if (this.#closing) return closedError(this.remoteAddr);
    return new StreamwireError(
      Status.UNAVAILABLE,
      `Connection '${this.remoteAddr}' failed: ${(error as Error)?.message ?? error}`,
      { cause: error },
    );
  }

  /**
   * The peer broke the mapping: it gets ERROR (seq 0) with the code, then a
   * Close with the matching close code; the pending read fails with it.
   */
  #violate(violation: Violation): void {
    if (this.#violation || this.#closing) return;
    this.#violation = violation;
    this.#rejectRead?.(violation);
    this.#rejectRead = undefined;
    const channel = this.#channel;
    // The ERROR goes as a message of its own, behind whatever is being sent;
    // a peer that does not read does not hold the close up for long.
    const timer = setTimeout(() => this.#shutdown(violation.closeCode, ""), VIOLATION_CLOSE_MS);
    channel.send(errorFrame(violation))
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        this.#shutdown(violation.closeCode, violation.codeName);
      });
  }

  #shutdown(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#readDone = true;
    // A read in flight ends with null: the channel yields it once closed.
    this.#channel.close(code, reason);
    this.#closedHook();
  }

  #closedHook(): void {
    const hook = this.#onClose;
    this.#onClose = undefined;
    hook?.();
  }
}
