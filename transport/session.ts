/**
 * A session: one handshaken connection with its state machine, statistics,
 * heartbeats and a bounded outbound queue (PROTOCOL.md 4 and 5).
 *
 * @module
 */

import { concat } from "../codec/_bytes.ts";
import { verifyChecksum } from "../codec/checksum_stream.ts";
import { type CompressionName, FrameType, Status } from "../codec/constants.ts";
import { compressFrame, decompressFrame } from "../codec/compression_stream.ts";
import { Deframer } from "../codec/deframer_stream.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import type { Frame } from "../codec/frame.ts";
import { decodeMessage, type GoawayMessage, type Message } from "../codec/message.ts";
import { encodeMessages } from "../codec/message_stream.ts";
import type { Connection } from "./connection.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import type { SessionSettings } from "./handshake.ts";
import { SocketConnection } from "./_socket_connection.ts";

/** States of a session. */
export const SessionState = {
  /** Connected, handshake not completed. */
  CONNECTING: "connecting",
  /** Handshaken, traffic within the last heartbeat interval. */
  ACTIVE: "active",
  /** Handshaken, nothing received for a heartbeat interval. */
  IDLE: "idle",
  /** GOAWAY sent or closing: no new calls, in-flight work may finish. */
  DISCONNECTING: "disconnecting",
  /** Closed; terminal. */
  CLOSED: "closed",
} as const;

/** A session state. */
export type SessionState = typeof SessionState[keyof typeof SessionState];

const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  connecting: ["active", "disconnecting", "closed"],
  active: ["idle", "disconnecting", "closed"],
  idle: ["active", "disconnecting", "closed"],
  disconnecting: ["closed"],
  closed: [],
};

/** Traffic counters of a session. */
export interface SessionStats {
  /** Frames received. */
  framesIn: number;
  /** Frames sent. */
  framesOut: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes handed to the connection. */
  bytesOut: number;
  /** When the session was created (ms since epoch). */
  createdAt: number;
  /** When anything was last received (ms since epoch). */
  lastReceivedAt: number;
  /** When anything was last queued for sending (ms since epoch). */
  lastSentAt: number;
  /** Round-trip time measured by the last PING/PONG, in ms. */
  rttMs: number | undefined;
}

/** Receives what a session reads, apart from the connection-level frames it handles itself. */
export interface SessionHandler {
  /**
   * Call-level messages of one read, in order. Returning a promise stops
   * reading from this session until it settles (backpressure).
   */
  message(session: Session, messages: Message[]): void | Promise<void>;
  /** The handshake completed. */
  open?(session: Session): void;
  /** The peer sent GOAWAY. */
  goaway?(session: Session, message: GoawayMessage): void;
  /** Resolves once the session has no work in flight; graceful shutdown waits for it. */
  drain?(session: Session): Promise<void>;
  /** The session closed; `reason` is set when it closed on an error. */
  close?(session: Session, reason: StreamwireError | undefined): void;
}

/** Bounds of a session; each stops a different way of exhausting memory or CPU. */
export interface SessionLimits {
  /**
   * Bytes the outbound queue may hold. Past it, the session stops reading
   * its peer's requests until the queue drains, and broadcasts to it fail
   * (the server disconnects it as a slow consumer).
   *
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * Frames the outbound queue may hold, whatever their size.
   *
   * @default {8192}
   */
  maxQueueFrames?: number;
  /**
   * PINGs per second answered before the peer is disconnected for flooding.
   *
   * @default {20}
   */
  maxPingsPerSecond?: number;
  /**
   * How long close waits for queued frames (such as a final ERROR) to be
   * written before dropping the connection, in ms.
   *
   * @default {1000}
   */
  closeTimeoutMs?: number;
  /**
   * Compress payloads from this many bytes (if compression was negotiated).
   *
   * @default {1024}
   */
  compressionThreshold?: number;
}

/** Options of {@linkcode Session}. */
export interface SessionOptions extends SessionLimits {
  /** Which side of the connection this is: clients use odd call ids, servers even. */
  role: "client" | "server";
  /** Receives call-level messages. */
  handler: SessionHandler;
  /** Session id until the handshake assigns one. */
  id?: string;
  /** Largest frame accepted before the handshake settles it. @default {16777216} */
  maxFrame?: number;
  /** Compression accepted from the peer before the handshake settles it. */
  accept?: readonly CompressionName[];
}

const DEFAULT_LIMITS = {
  maxQueueBytes: 1024 * 1024,
  maxQueueFrames: 8192,
  maxPingsPerSecond: 20,
  closeTimeoutMs: 1000,
  compressionThreshold: 1024,
} as const;

/** Frames that end the handshake phase or may precede it (PROTOCOL.md 4). */
const PRE_HANDSHAKE = new Set<number>([
  FrameType.PING,
  FrameType.PONG,
  FrameType.ERROR,
  FrameType.GOAWAY,
]);

const CALL_OPENERS = new Set<number>([FrameType.REQUEST, FrameType.BATCH, FrameType.OPEN]);

/**
 * One connection after (or during) the handshake.
 *
 * The session handles HELLO, PING/PONG, GOAWAY and connection-level ERROR
 * itself and hands every other message to its {@linkcode SessionHandler}.
 * Sending is synchronous: messages queued in the same microtask are encoded
 * into one buffer and written with one write.
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
  /** The connection underneath. */
  readonly conn: Connection;
  /** Client or server side. */
  readonly role: "client" | "server";
  /** Traffic counters. */
  readonly stats: SessionStats;
  /** Free-form data attached by the application. */
  readonly data: Record<string, unknown> = {};
  /** Topics this session has joined (maintained by the server). */
  readonly topics: Set<string> = new Set();
  /** Resolves once the session is closed. */
  readonly closed: Promise<void>;
  /** Settings agreed in the handshake; undefined while connecting. */
  settings: SessionSettings | undefined;
  /** Highest call id the peer opened (REQUEST, BATCH, OPEN); GOAWAY's lastId. */
  lastPeerCallId = 0;
  /** lastId of the GOAWAY this side sent: calls above it are refused. */
  goawayLastId: number | undefined;
  /** GOAWAY received from the peer, if any. */
  peerGoaway: GoawayMessage | undefined;
  /** Why the session closed, if it closed on an error. */
  closeReason: StreamwireError | undefined;

  #id: string;
  #state: SessionState = SessionState.CONNECTING;
  #handler: SessionHandler;
  #limits: Required<SessionLimits>;
  #pending: Message[] = [];
  #flushScheduled = false;
  #queue: Uint8Array[] = [];
  #queueBytes = 0;
  #queueFrames = 0;
  #queueCounts: number[] = [];
  #writing = false;
  #pumpDone: Promise<void> = Promise.resolve();
  /** A socket, read and written without streams; else `#writer` and a reader. */
  #socket: SocketConnection | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #readyWaiters: (() => void)[] = [];
  #pingWindowStart = 0;
  #pingsInWindow = 0;
  #resolveClosed!: () => void;
  #closing = false;
  #sendCompression: CompressionName | undefined;

  /**
   * Wraps a connection and starts reading it.
   *
   * @param conn The connection.
   * @param options Role, handler and limits.
   */
  constructor(conn: Connection, options: SessionOptions) {
    super();
    this.conn = conn;
    this.role = options.role;
    this.#id = options.id ?? "";
    this.#handler = options.handler;
    this.#limits = { ...DEFAULT_LIMITS, ...definedOnly(options) };
    const now = Date.now();
    this.stats = {
      framesIn: 0,
      framesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      createdAt: now,
      lastReceivedAt: now,
      lastSentAt: now,
      rttMs: undefined,
    };
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    if (conn instanceof SocketConnection) {
      this.#socket = conn;
    } else {
      this.#writer = conn.writable.getWriter();
      this.#writer.closed.catch(() => this.#terminate());
    }
    conn.closed.then(() => this.#terminate());
    this.#read(options);
  }

  /** Session id (assigned by the server in the handshake). */
  get id(): string {
    return this.#id;
  }

  /** Current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** The negotiated payload codec (`json` until the handshake completes). */
  get codec(): CodecName {
    return this.settings?.codec ?? "json";
  }

  /** Remote address in URL form. */
  get remoteAddr(): string {
    return this.conn.remoteAddr;
  }

  /** Bytes waiting in the outbound queue. */
  get queuedBytes(): number {
    return this.#queueBytes;
  }

  /** Frames waiting in the outbound queue. */
  get queuedFrames(): number {
    return this.#queueFrames;
  }

  /** Whether the outbound queue is within its limits. */
  get writable(): boolean {
    return this.#queueBytes < this.#limits.maxQueueBytes &&
      this.#queueFrames < this.#limits.maxQueueFrames;
  }

  /** Resolves when the outbound queue is within its limits (or the session closed). */
  ready(): Promise<void> {
    if (this.writable || this.#state === SessionState.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /**
   * Moves to a new state, dispatching a `statechange` event.
   *
   * @param next The new state.
   * @throws {StreamwireError} `internal` for a transition the state machine forbids.
   */
  transition(next: SessionState): void {
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

  /**
   * Completes the handshake with the agreed settings.
   *
   * @param settings Settings from HELLO_ACK.
   */
  establish(settings: SessionSettings): void {
    this.settings = settings;
    this.#id = settings.session;
    this.#sendCompression = settings.compression[0];
    this.transition(SessionState.ACTIVE);
    this.#handler.open?.(this);
  }

  /**
   * Queues a message. Messages queued in one microtask go out in one write.
   * The queue is never refused for the session's own traffic (it is bounded
   * upstream: reading stops while it is over its limit, and streams are
   * bounded by credit); use {@linkcode Session.ready} to wait for room.
   *
   * @param message Any message.
   * @returns `false` if the session is closed and the message was dropped.
   */
  send(message: Message): boolean {
    if (this.#state === SessionState.CLOSED || this.#closing) return false;
    this.#pending.push(message);
    this.#queueFrames++;
    // While a write is in flight, messages accumulate and the writer takes
    // them all in its next write; otherwise they go out at the end of this
    // microtask, together with whatever else it queues.
    if (!this.#writing && !this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        if (this.#pending.length > 0) this.#startPump();
      });
    }
    return true;
  }

  /**
   * Queues frames that are already encoded, such as one broadcast shared by
   * many sessions: the same bytes are written, never copied per session.
   *
   * @param bytes Complete frames.
   * @param frames How many frames `bytes` holds.
   * @returns `false` if the queue is over its limit or the session closed; nothing was queued.
   */
  sendEncoded(bytes: Uint8Array, frames = 1): boolean {
    if (this.#state === SessionState.CLOSED || this.#closing) return false;
    if (
      this.#queueBytes + bytes.length > this.#limits.maxQueueBytes ||
      this.#queueFrames + frames > this.#limits.maxQueueFrames
    ) return false;
    this.#flush();
    this.#enqueue(bytes, frames);
    this.#startPump();
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
    this.goawayLastId = this.lastPeerCallId;
    this.send({ type: FrameType.GOAWAY, seq: 0, code, lastId: this.lastPeerCallId, reason });
    this.transition(SessionState.DISCONNECTING);
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
      this.closeReason = error;
      this.send({ type: FrameType.ERROR, seq: 0, code: error.code, message: error.message });
    }
    this.#closing = true;
    if (this.#state !== SessionState.DISCONNECTING) this.transition(SessionState.DISCONNECTING);
    this.#startPump();
    const drained = this.#drainWrites();
    const timer = setTimeout(() => this.#terminate(), this.#limits.closeTimeoutMs);
    drained.then(() => {
      clearTimeout(timer);
      this.#terminate();
    });
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
    if (state === SessionState.CONNECTING) {
      if (now - this.stats.createdAt >= handshakeTimeoutMs) {
        this.close(
          new StreamwireError(
            Status.DEADLINE_EXCEEDED,
            `Handshake not completed within '${handshakeTimeoutMs}' ms`,
          ),
        );
        return "expired";
      }
      return;
    }
    const hb = this.settings?.heartbeatMs;
    if (hb === undefined) return;
    const silent = now - this.stats.lastReceivedAt;
    if (silent >= 3 * hb) {
      this.close(
        new StreamwireError(
          Status.UNAVAILABLE,
          `Peer silent for '${silent}' ms (heartbeat '${hb}' ms)`,
        ),
      );
      return "dead";
    }
    if (state === SessionState.ACTIVE && silent >= hb) this.transition(SessionState.IDLE);
    // A PING behind a stuck write proves nothing and would pile up one per
    // sweep: only ping when the outbound queue is empty.
    if (now - this.stats.lastSentAt >= hb && this.#queueFrames === 0 && !this.#writing) {
      this.ping(now);
    }
  }

  /**
   * Sends a PING carrying the send time, so the PONG yields the round-trip time.
   *
   * @param now Current time in ms since epoch.
   */
  ping(now: number = Date.now()): void {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setFloat64(0, now);
    this.send({ type: FrameType.PING, seq: 0, payload });
  }

  /**
   * Reads and decodes in one loop with the codec's synchronous stages
   * (deframer, checksum, decompression, messages) rather than a chain of
   * streams: the streams and their pipes cost about 35 KiB of heap per
   * session, most of what an idle session held (tests/transport/soak_10k.ts).
   */
  async #read(options: SessionOptions): Promise<void> {
    const stats = this.stats;
    const deframer = new Deframer({ maxFrame: options.maxFrame });
    const inflate = { maxFrame: options.maxFrame, accept: options.accept };
    // Never cancelled on a decode error: that would close the connection
    // before the ERROR below is written (PROTOCOL.md 1.3); close() ends it.
    const socket = this.#socket;
    const reader = socket === undefined ? this.conn.readable.getReader() : undefined;
    let error: StreamwireError | undefined;
    try {
      for (;;) {
        let value: Uint8Array | null;
        if (socket !== undefined) value = await socket.directRead();
        else {
          const result = await reader!.read();
          value = result.done ? null : result.value;
        }
        if (value === null) {
          deframer.end();
          break;
        }
        stats.bytesIn += value.length;
        const frames: Frame[] = [];
        let failure: unknown;
        try {
          deframer.push(value, frames);
        } catch (e) {
          failure = e;
        }
        const messages: Message[] = [];
        try {
          for (let i = 0; i < frames.length; i++) {
            verifyChecksum(frames[i]);
            messages.push(decodeMessage(decompressFrame(frames[i], inflate)));
          }
        } catch (e) {
          failure = e; // earlier in the byte stream than a deframer failure
        }
        // Frames before a bad one in the same read are still handled.
        if (messages.length > 0) await this.#receive(messages);
        if (failure !== undefined) throw failure;
      }
    } catch (e) {
      error = StreamwireError.from(e);
    }
    if (error !== undefined && this.#state !== SessionState.CLOSED) {
      // A malformed byte stream cannot be resynchronised: report and close
      // (PROTOCOL.md 1.3). Everything already queued is still written first.
      if (!this.#closing) this.close(error);
    } else {
      // EOF: the peer is gone; flush what we can and finish.
      this.close();
    }
  }

  async #receive(batch: Message[]): Promise<void> {
    const now = Date.now();
    const stats = this.stats;
    stats.framesIn += batch.length;
    stats.lastReceivedAt = now;
    if (this.#state === SessionState.IDLE) this.transition(SessionState.ACTIVE);
    let calls: Message[] | undefined;
    for (const message of batch) {
      switch (message.type) {
        case FrameType.PING:
          this.#pong(message.seq, message.payload, now);
          continue;
        case FrameType.PONG:
          if (message.payload.length === 8) {
            const sent = new DataView(message.payload.buffer, message.payload.byteOffset, 8)
              .getFloat64(0);
            if (sent > 0 && sent <= now) stats.rttMs = now - sent;
          }
          continue;
        case FrameType.GOAWAY:
          this.peerGoaway = message;
          this.#handler.goaway?.(this, message);
          continue;
        case FrameType.ERROR:
          if (message.seq === 0) {
            this.closeReason = new StreamwireError(message.code, message.message);
            this.#closing || this.close();
            return;
          }
      }
      if (this.#state === SessionState.CONNECTING) {
        (calls ??= []).push(message);
        continue;
      }
      if (message.type === FrameType.HELLO || message.type === FrameType.HELLO_ACK) {
        this.close(
          new StreamwireError(Status.FAILED_PRECONDITION, "Handshake frame after the handshake"),
        );
        return;
      }
      if (CALL_OPENERS.has(message.type) && message.seq > this.lastPeerCallId) {
        this.lastPeerCallId = message.seq;
      }
      (calls ??= []).push(message);
    }
    if (calls === undefined) return;
    if (this.#state === SessionState.CONNECTING) {
      const bad = calls.find((m) =>
        !PRE_HANDSHAKE.has(m.type) && m.type !== FrameType.HELLO &&
        m.type !== FrameType.HELLO_ACK
      );
      if (bad !== undefined) {
        this.close(
          new StreamwireError(
            Status.FAILED_PRECONDITION,
            `Frame type '0x${bad.type.toString(16)}' before the handshake completed`,
          ),
        );
        return;
      }
    }
    await this.#handler.message(this, calls);
    // Stop reading this peer's requests while our answers to it pile up.
    if (!this.writable) await this.ready();
  }

  #pong(seq: number, payload: Uint8Array, now: number): void {
    if (now - this.#pingWindowStart >= 1000) {
      this.#pingWindowStart = now;
      this.#pingsInWindow = 0;
    }
    if (++this.#pingsInWindow > this.#limits.maxPingsPerSecond) {
      this.close(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `PING flood: more than '${this.#limits.maxPingsPerSecond}' per second`,
        ),
      );
      return;
    }
    this.send({ type: FrameType.PONG, seq, payload });
  }

  /** Encodes the pending messages into the write queue, in one buffer. */
  #flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    let frames = encodeMessages(pending);
    const algorithm = this.#sendCompression;
    if (algorithm !== undefined) {
      const threshold = this.#limits.compressionThreshold;
      frames = frames.map((f) => compressFrame(f, { algorithm, threshold }));
    }
    const bytes = encodeFrames(frames);
    this.#queueFrames -= pending.length; // re-counted by #enqueue
    this.#enqueue(bytes, pending.length);
  }

  #enqueue(bytes: Uint8Array, frames: number): void {
    this.#queue.push(bytes);
    this.#queueCounts.push(frames);
    this.#queueBytes += bytes.length;
    this.#queueFrames += frames;
    this.stats.framesOut += frames;
    this.stats.lastSentAt = Date.now();
  }

  #startPump(): void {
    if (this.#writing) return;
    this.#writing = true;
    this.#pumpDone = this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        this.#flush();
        if (this.#queue.length === 0 || this.#state === SessionState.CLOSED) break;
        const queue = this.#queue;
        const counts = this.#queueCounts;
        this.#queue = [];
        this.#queueCounts = [];
        let frames = 0;
        for (const n of counts) frames += n;
        // One write per turn: everything queued meanwhile goes out together.
        const chunk = queue.length === 1 ? queue[0] : concat(queue);
        if (this.#socket !== undefined) await this.#socket.directWrite(chunk);
        else await this.#writer!.write(chunk);
        this.stats.bytesOut += chunk.length;
        this.#queueBytes -= chunk.length;
        this.#queueFrames -= frames;
        this.#wake();
      }
    } catch (error) {
      // The connection broke under a write: keep why, for the handler and the peer's calls.
      if (!this.#closing && this.#state !== SessionState.CLOSED) {
        this.closeReason ??= StreamwireError.from(error);
      }
      this.#terminate();
    } finally {
      this.#writing = false;
    }
  }

  #wake(): void {
    if (!this.writable && this.#state !== SessionState.CLOSED) return;
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of waiters) w();
  }

  async #drainWrites(): Promise<void> {
    while (this.#writing) await this.#pumpDone;
  }

  #terminate(): void {
    if (this.#state === SessionState.CLOSED) return;
    if (this.#state !== SessionState.DISCONNECTING) this.transition(SessionState.DISCONNECTING);
    this.transition(SessionState.CLOSED);
    this.#pending = [];
    this.#queue = [];
    this.#queueCounts = [];
    this.#queueBytes = 0;
    this.#queueFrames = 0;
    this.#wake();
    this.conn.close();
    this.#handler.close?.(this, this.closeReason);
    this.#resolveClosed();
  }
}

function definedOnly(options: SessionLimits): SessionLimits {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(DEFAULT_LIMITS)) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as SessionLimits;
}
