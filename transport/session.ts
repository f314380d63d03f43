/**
 * A session: one connection with its handshake, state machine, statistics,
 * heartbeats and a bounded outbound queue (PROTOCOL.md 4 and 5).
 *
 * @module
 */

import {
  type CompressionName,
  DEFAULT_MAX_FRAME,
  FrameType,
  HEADER_SIZE,
  Status,
} from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodedBodySize, type GoawayMessage, type Message } from "../codec/message.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import type { Connection } from "./connection.ts";
import type { SessionSettings } from "./handshake.ts";
import {
  type SessionHandler,
  type SessionLimits,
  type SessionOptions,
  SessionState,
  type SessionStats,
} from "./session_options.ts";
import { Inbound } from "./_inbound.ts";
import { Outbound } from "./_outbound.ts";
import { bindLink, Link } from "./_session_link.ts";
import { whenClosed } from "./_pull_connection.ts";
import { Opening } from "./_opening.ts";
import type { SessionTap } from "./session_tap.ts";
import {
  CALL_OPENERS,
  CONTROL,
  heartbeat,
  limitsOf,
  newStats,
  pingPayload,
  PRE_HANDSHAKE,
  PRE_HANDSHAKE_MAX_FRAME,
  rttOf,
  TRANSITIONS,
  wrongParity,
} from "./_session_rules.ts";

export { SessionState } from "./session_options.ts";
export type {
  SessionHandler,
  SessionLimits,
  SessionOptions,
  SessionStages,
  SessionStats,
} from "./session_options.ts";
export type { SessionTap } from "./session_tap.ts";

/**
 * One connection during and after the handshake.
 *
 * Bytes read from the connection run through one composed pipeline of
 * stages (deframer, checksum, decompression, the user's frame stages,
 * message decoder, the user's message stages, then the session itself),
 * frame by frame: the handshake, negotiated limits, a connection ERROR and
 * the queue bound take effect between two frames of the same read. The
 * session handles HELLO, PING/PONG, GOAWAY and connection-level ERROR
 * itself and hands every other message to its {@linkcode SessionHandler}.
 *
 * Sending is synchronous and bounded: {@linkcode Session.send} accepts a
 * message only while the outbound queue has room, and messages accepted in
 * the same microtask are encoded into one buffer and written with one write.
 *
 * @example Watch a session's state
 * ```ts
 * import { memoryPair, openSession, Server } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const server = new Server({ handler: { message() {} } });
 * const [a, b] = memoryPair();
 * server.accept(a);
 * const session = await openSession(b, { handler: { message() {} } });
 * const states: string[] = [];
 * session.addEventListener("statechange", (e) => states.push((e as CustomEvent).detail.to));
 * assert.equal(session.state, "active");
 * await session.close();
 * assert.deepEqual(states, ["disconnecting", "closed"]);
 * await server.shutdown();
 * ```
 */
export class Session extends EventTarget {
  static {
    bindLink({
      receive: (session, message) => session.#receive(message),
      received: (session, n) => session.#received(n),
      wake: (session) => session.#wake(),
      writeFailed: (session, error) => session.#onWriteFailed(error),
      readEnded: (session, error) => session.#readEnded(error),
      closed: (session) => session.#terminate(),
    });
  }

  /** The connection underneath. */
  readonly conn: Connection;
  /** Client or server side. */
  readonly role: "client" | "server";
  /** Traffic counters. */
  readonly stats: SessionStats;
  /** Free-form data attached by the application. */
  get data(): Record<string, unknown> {
    return this.#data ??= {};
  }
  /** Topics this session has joined (maintained by the server). */
  get topics(): Set<string> {
    return this.#topics ??= new Set();
  }
  /** Resolves once the session is closed. */
  get closed(): Promise<void> {
    // Made when someone asks: an idle server session holds no promise for it.
    if (this.#closed === undefined) {
      this.#closed = this.#state === SessionState.CLOSED
        ? Promise.resolve()
        : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }
  /**
   * Sees each message received and each accepted to send while set (the
   * admin API's wire tap); unset, it costs one branch per message.
   */
  tap: SessionTap | undefined = undefined;
  /** Resolves once the handshake completed; rejects if the session closed before. */
  get opened(): Promise<void> {
    if (this.#opened === undefined) {
      const state = this.#openState;
      this.#opened = state === true
        ? Promise.resolve()
        : state !== undefined
        ? Promise.reject(state)
        : this.#opening!.wait();
      this.#opened.catch(() => {});
    }
    return this.#opened;
  }

  #id: string;
  #state: SessionState = SessionState.CONNECTING;
  #settings: SessionSettings | undefined;
  #lastPeerCallId = 0;
  #goawayLastId: number | undefined;
  #peerGoaway: GoawayMessage | undefined;
  #closeReason: StreamwireError | undefined;
  #handler: SessionHandler;
  /** The handshake phase, until it ends (the options object itself is not kept). */
  #opening: Opening | undefined;
  #maxFrame: number;
  #limits: Required<SessionLimits>;
  #out: Outbound;
  #in: Inbound;
  #pingWindowStart = 0;
  #pingsInWindow = 0;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  // Made on first use: an idle server session never needs these.
  #data: Record<string, unknown> | undefined;
  #topics: Set<string> | undefined;
  #opened: Promise<void> | undefined;
  /** true once open, the error if it failed first, undefined until then. */
  #openState: true | StreamwireError | undefined;
  #closing = false;
  /** Ends a close (or a failed write's last reads) that takes longer than closeTimeoutMs. */
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** A connection ERROR was received: later frames are ignored. */
  #ended = false;
  /** The write side failed: nothing more is sent, what was received is still read. */
  #writeFailed = false;

  /**
   * Wraps a connection and starts reading it.
   *
   * @param conn The connection.
   * @param options Role, handler, handshake and limits.
   */
  constructor(conn: Connection, options: SessionOptions) {
    super();
    this.conn = conn;
    this.role = options.role;
    this.#id = options.id ?? "";
    this.#handler = options.handler;
    this.#opening = new Opening(options);
    this.#limits = limitsOf(options);
    const now = Date.now();
    this.stats = newStats(now);
    const maxFrame = this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    const link = new Link(this, conn);
    this.#in = new Inbound(conn, {
      maxFrame: options.role === "server" ? Math.min(maxFrame, PRE_HANDSHAKE_MAX_FRAME) : maxFrame,
      maxBatchEntries: this.#limits.maxBatchEntries,
      stages: options.inbound,
      sink: link,
    });
    this.#out = new Outbound(link, this.#limits, options.outbound);
    whenClosed(conn, link);
    this.#in.start();
  }

  /** Session id (assigned by the server in the handshake). */
  get id(): string {
    return this.#id;
  }

  /** Current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** Settings agreed in the handshake; undefined while connecting. */
  get settings(): Readonly<SessionSettings> | undefined {
    return this.#settings;
  }

  /** The negotiated payload codec (`json` until the handshake completes). */
  get codec(): CodecName {
    return this.#settings?.codec ?? "json";
  }

  /** Remote address in URL form. */
  get remoteAddr(): string {
    return this.conn.remoteAddr;
  }

  /** Highest call id the peer opened (REQUEST, BATCH, OPEN): what a GOAWAY now would carry. */
  get lastPeerCallId(): number {
    return this.#lastPeerCallId;
  }

  /** lastId of the GOAWAY this side sent: calls above it are refused. */
  get goawayLastId(): number | undefined {
    return this.#goawayLastId;
  }

  /** GOAWAY received from the peer, if any. */
  get peerGoaway(): GoawayMessage | undefined {
    return this.#peerGoaway;
  }

  /** Why the session closed, if it closed on an error. */
  get closeReason(): StreamwireError | undefined {
    return this.#closeReason;
  }

  /** Bytes accepted into the outbound queue and not yet written. */
  get queuedBytes(): number {
    return this.#out.bytes;
  }

  /** Frames accepted into the outbound queue and not yet written. */
  get queuedFrames(): number {
    return this.#out.frames;
  }

  /** Whether the outbound queue is within its limits. */
  get writable(): boolean {
    return this.#out.withinBound;
  }

  /** Resolves when the outbound queue is within its limits (or the session closed). */
  ready(): Promise<void> {
    if (this.writable || this.#isDone()) return Promise.resolve();
    return this.#out.untilWithinBound();
  }

  /**
   * Accepts a message into the outbound queue if it has room. Messages
   * accepted in one microtask go out in one write. Small control frames
   * (PING, PONG, GOAWAY, END, CANCEL, CREDIT, handshake) are always
   * accepted while the session is open.
   *
   * @param message Any message.
   * @returns `false` if it was not accepted: the queue is full (wait with
   *   {@linkcode Session.ready}, or use {@linkcode Session.write}) or the session is closed.
   * @throws {StreamwireError} `resource_exhausted` for a frame larger than
   *   the negotiated `maxFrame`, which the peer would refuse.
   */
  send(message: Message): boolean {
    if (this.#isDone()) return false;
    const body = encodedBodySize(message);
    const maxFrame = this.#settings?.maxFrame ?? this.#maxFrame;
    if (body > maxFrame) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Frame body of '${body}' bytes exceeds maxFrame '${maxFrame}'`,
      );
    }
    const size = HEADER_SIZE + body;
    const out = this.#out;
    if (CONTROL.has(message.type) || (message.type === FrameType.ERROR && message.seq === 0)) {
      if (out.frames >= 2 * this.#limits.maxQueueFrames) {
        this.#slowConsumer();
        return false;
      }
    } else if (!out.hasRoom(size, 1)) return false;
    out.push(message, size);
    this.tap?.sent(message, size);
    return true;
  }

  /**
   * Sends a message, waiting for room in the outbound queue first.
   *
   * @param message Any message.
   * @returns Resolves once the message was accepted.
   * @throws {StreamwireError} `unavailable` if the session closed first;
   *   `resource_exhausted` for a frame larger than `maxFrame`.
   */
  async write(message: Message): Promise<void> {
    while (!this.send(message)) {
      if (this.#isDone()) {
        throw new StreamwireError(Status.UNAVAILABLE, `Session '${this.#id}' is closed`);
      }
      // The queue may be under its bound yet short of room for this
      // message: wait for the next write to finish, not just for `ready()`.
      await this.#out.untilWritten();
    }
  }

  /**
   * Queues frames that are already encoded, such as one broadcast shared by
   * many sessions: the same bytes are written, never copied per session.
   *
   * @param bytes Complete frames.
   * @param frames How many frames `bytes` holds.
   * @returns `false` if the queue has no room or the session closed; nothing was queued.
   */
  sendEncoded(bytes: Uint8Array, frames = 1): boolean {
    if (this.#isDone() || !this.#out.hasRoom(bytes.length, frames)) return false;
    this.#out.pushEncoded(bytes, frames);
    this.tap?.sentEncoded(bytes, frames);
    return true;
  }

  /**
   * Announces shutdown with GOAWAY: no new calls above the last one the peer
   * opened; calls at or below it may finish.
   *
   * @param reason Human-readable reason.
   * @param code Status code. @default {14}
   */
  goaway(reason: string, code: number = Status.UNAVAILABLE): void {
    if (this.#state === SessionState.CLOSED || this.#state === SessionState.DISCONNECTING) return;
    this.#goawayLastId = this.#lastPeerCallId;
    this.send({ type: FrameType.GOAWAY, seq: 0, code, lastId: this.#lastPeerCallId, reason });
    this.#transition(SessionState.DISCONNECTING);
  }

  /**
   * Closes the session. With an error, a connection-level ERROR carrying its
   * code is sent first; queued frames get up to `closeTimeoutMs` to be
   * written, so nothing already answered is lost.
   *
   * @param error Why, if the session closes on an error.
   * @returns Resolves once closed.
   */
  close(error?: StreamwireError): Promise<void> {
    if (this.#closing || this.#state === SessionState.CLOSED) return this.closed;
    if (error !== undefined) {
      this.#closeReason ??= error;
      this.send({ type: FrameType.ERROR, seq: 0, code: error.code, message: error.message });
    }
    this.#closing = true;
    if (this.#state !== SessionState.DISCONNECTING) this.#transition(SessionState.DISCONNECTING);
    this.#settleOpened(this.#openFailure());
    this.#out.flushNow();
    this.#closeTimer ??= setTimeout(() => this.#terminate(), this.#limits.closeTimeoutMs);
    this.#out.idle().then(() => this.#terminate());
    return this.closed;
  }

  /**
   * Heartbeat and liveness check; the server calls it for all sessions from
   * one timer, a client from its own.
   *
   * @param now Current time in ms since epoch.
   * @param handshakeTimeoutMs Close sessions still connecting after this long.
   * @returns `"dead"` if the peer was silent for 3 x heartbeat and the
   *   session is closing, `"expired"` if the handshake took too long.
   */
  tick(now: number, handshakeTimeoutMs: number): "dead" | "expired" | undefined {
    const state = this.#state;
    if (state === SessionState.CLOSED) return;
    const out = this.#out;
    const verdict = heartbeat(state, this.stats, now, {
      handshakeTimeoutMs,
      heartbeatMs: this.#settings?.heartbeatMs,
      // A PING behind a stuck write proves nothing and would pile up one per sweep.
      quiet: out.frames === 0 && !out.writing,
    });
    if (verdict === undefined) return;
    if (verdict instanceof StreamwireError) {
      this.close(verdict);
      return verdict.code === Status.DEADLINE_EXCEEDED ? "expired" : "dead";
    }
    if (verdict.idle) this.#transition(SessionState.IDLE);
    if (verdict.ping) this.ping(now);
  }

  /**
   * Sends a PING carrying the send time, so the PONG yields the round-trip time.
   *
   * @param now Current time in ms since epoch.
   */
  ping(now: number = Date.now()): void {
    this.send({ type: FrameType.PING, seq: 0, payload: pingPayload(now) });
  }

  /** Settles `opened` once: resolved, or rejected with `error`. */
  #settleOpened(error?: StreamwireError): void {
    if (this.#openState !== undefined) return;
    this.#openState = error ?? true;
    const opening = this.#opening;
    this.#opening = undefined;
    opening?.settle(error);
  }

  #isDone(): boolean {
    return this.#state === SessionState.CLOSED || this.#closing || this.#writeFailed;
  }

  #transition(next: SessionState): void {
    const from = this.#state;
    if (from === next) return;
    if (!TRANSITIONS[from].includes(next)) {
      throw new StreamwireError(
        Status.INTERNAL,
        `Illegal session transition '${from}' -> '${next}'`,
      );
    }
    this.#state = next;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { from, to: next } }));
  }

  /** The handshake completed: limits and compression of the settings apply from the next frame. */
  #establish(settings: SessionSettings): void {
    this.#settings = settings;
    this.#id = settings.session;
    this.#in.limit(settings.maxFrame, settings.compression as CompressionName[]);
    this.#out.algorithm = settings.compression[0];
    this.#transition(SessionState.ACTIVE);
    this.#settleOpened();
    this.#handler.open?.(this);
  }

  #openFailure(): StreamwireError {
    return this.#closeReason ??
      new StreamwireError(Status.UNAVAILABLE, "Connection closed during the handshake");
  }

  /** Bytes arrived: the peer is alive (once per read, not per frame). */
  #received(n: number): void {
    const stats = this.stats;
    stats.bytesIn += n;
    stats.lastReceivedAt = Date.now();
    if (this.#state === SessionState.IDLE) this.#transition(SessionState.ACTIVE);
  }

  /**
   * The last stage of the inbound pipeline: one decoded message. Returns a
   * promise to hold the frames after it (backpressure).
   */
  #receive(message: Message): void | Promise<void> {
    if (this.#ended || this.#state === SessionState.CLOSED) return;
    this.tap?.received(message);
    const stats = this.stats;
    stats.framesIn++;
    switch (message.type) {
      case FrameType.PING:
        this.#pong(message.seq, message.payload, stats.lastReceivedAt);
        return;
      case FrameType.PONG:
        stats.rttMs = rttOf(message.payload, Date.now()) ?? stats.rttMs;
        return;
      case FrameType.GOAWAY:
        this.#peerGoaway = message;
        this.#handler.goaway?.(this, message);
        return;
      case FrameType.ERROR:
        if (message.seq === 0) {
          // Everything before it was delivered; nothing after it is read.
          this.#ended = true;
          this.#closeReason ??= new StreamwireError(message.code, message.message);
          this.close();
          return;
        }
        break;
      case FrameType.HELLO:
      case FrameType.HELLO_ACK:
        return this.#handshake(message);
    }
    if (this.#state === SessionState.CONNECTING) {
      if (!PRE_HANDSHAKE.has(message.type)) {
        return this.#fail(
          Status.FAILED_PRECONDITION,
          `Frame type '0x${message.type.toString(16)}' before the handshake completed`,
        );
      }
      return;
    }
    if (CALL_OPENERS.has(message.type)) {
      if (!this.#admitId(message.seq)) return;
      // Stop reading this peer's calls while our answers to it pile up.
      if (!this.writable) return this.ready().then(() => this.#deliverCall(message));
      return this.#deliverCall(message);
    }
    return this.#handler.message(this, message);
  }

  /** Hands a call on; from then on a GOAWAY counts it as received (its lastId). */
  #deliverCall(message: Message): void | Promise<void> {
    if (this.#ended || this.#state === SessionState.CLOSED) return;
    if (message.seq > this.#lastPeerCallId) this.#lastPeerCallId = message.seq;
    return this.#handler.message(this, message);
  }

  /** Checks a call id's parity (PROTOCOL.md 3.1); answers a wrong one with ERROR. */
  #admitId(seq: number): boolean {
    if (seq === 0) {
      this.#fail(Status.INVALID_ARGUMENT, "Call frame with call id '0'");
      return false;
    }
    const wrong = wrongParity(seq, this.role);
    if (wrong === undefined) return true;
    this.send({ type: FrameType.ERROR, seq, code: Status.INVALID_ARGUMENT, message: wrong });
    return false;
  }

  #handshake(message: Message): void {
    if (this.#state !== SessionState.CONNECTING) {
      return this.#fail(Status.FAILED_PRECONDITION, "Handshake frame after the handshake");
    }
    let settings: SessionSettings;
    try {
      settings = this.#opening!.settings(message, this.role);
      if (this.role === "server") {
        this.send({ type: FrameType.HELLO_ACK, seq: 0, ack: { version: 1, ...settings } });
      }
    } catch (error) {
      this.#ended = true;
      this.close(StreamwireError.from(error));
      return;
    }
    this.#establish(settings);
  }

  #fail(code: number, message: string): void {
    this.#ended = true;
    this.close(new StreamwireError(code, message));
  }

  #pong(seq: number, payload: Uint8Array, now: number): void {
    if (now - this.#pingWindowStart >= 1000) {
      this.#pingWindowStart = now;
      this.#pingsInWindow = 0;
    }
    if (++this.#pingsInWindow > this.#limits.maxPingsPerSecond) {
      this.#fail(
        Status.RESOURCE_EXHAUSTED,
        `PING flood: more than '${this.#limits.maxPingsPerSecond}' per second`,
      );
      return;
    }
    this.send({ type: FrameType.PONG, seq, payload });
  }

  #slowConsumer(): void {
    this.#ended = true;
    const error = new StreamwireError(
      Status.RESOURCE_EXHAUSTED,
      `Slow consumer: '${this.#out.frames}' frames queued`,
    );
    this.#closeReason ??= error;
    // No ERROR frame: the queue it would join is what is too long.
    this.#closing = true;
    queueMicrotask(() => this.#terminate());
  }

  /** The read loop ended: at EOF (no error) or on bad input or a broken connection. */
  #readEnded(error: StreamwireError | undefined): void {
    if (this.#state === SessionState.CLOSED) return;
    if (this.#writeFailed) {
      this.#terminate();
      return;
    }
    // A malformed byte stream cannot be resynchronised: report and close
    // (PROTOCOL.md 1.3). Everything already queued is still written first;
    // close() does nothing more if the session is closing already.
    this.close(error);
  }

  /** Nothing more can be written; read what the peer sent before, then close. */
  #onWriteFailed(error: unknown): void {
    if (this.#state === SessionState.CLOSED) return;
    this.#writeFailed = true;
    if (!this.#closing) this.#closeReason ??= StreamwireError.from(error);
    this.#wake();
    this.#closeTimer ??= setTimeout(() => this.#terminate(), this.#limits.closeTimeoutMs);
  }

  #wake(): void {
    this.#out.wake(this.#isDone());
  }

  #terminate(): void {
    if (this.#state === SessionState.CLOSED) return;
    clearTimeout(this.#closeTimer);
    if (this.#state !== SessionState.DISCONNECTING) this.#transition(SessionState.DISCONNECTING);
    this.#transition(SessionState.CLOSED);
    this.#out.clear();
    this.#settleOpened(this.#openFailure());
    this.#wake();
    this.conn.close();
    try {
      this.#handler.close?.(this, this.#closeReason);
    } finally {
      // Closed whatever the handler did.
      this.#resolveClosed?.();
    }
  }
}
