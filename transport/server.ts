/**
 * The long-connection server: accepts connections, runs the handshake, keeps
 * sessions alive with one heartbeat sweep, fans out broadcasts and shuts
 * down gracefully.
 *
 * @module
 */

import { FrameType, HEADER_SIZE, Status } from "../codec/constants.ts";
import { compressFrame } from "../codec/compression_stream.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { encodeMessage, type Message } from "../codec/message.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import type { Connection, Listener } from "./connection.ts";
import { DEFAULT_HEARTBEAT_MS, negotiate, type NegotiateOptions } from "./handshake.ts";
import {
  Session,
  type SessionHandler,
  type SessionLimits,
  type SessionStages,
  SessionState,
} from "./session.ts";

type Timer = ReturnType<typeof setTimeout>;

/** Options of {@linkcode Server}. */
export interface ServerOptions extends NegotiateOptions, SessionLimits {
  /** Receives the call-level messages of every session. */
  handler: SessionHandler;
  /**
   * Sessions held at once, handshaking ones included. The connection over
   * the limit gets ERROR `resource_exhausted` and is closed; existing
   * sessions are unaffected.
   *
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * A connection that has not completed the handshake within this many ms is
   * closed, so idle or trickling (slowloris) connections cannot pile up.
   *
   * @default {5000}
   */
  handshakeTimeoutMs?: number;
  /**
   * Graceful shutdown waits this long for in-flight calls before closing.
   *
   * @default {10000}
   */
  drainTimeoutMs?: number;
  /**
   * Topics one session may join, so topic membership stays bounded.
   *
   * @default {64}
   */
  maxTopicsPerSession?: number;
  /**
   * The user's own inbound stages for every session (a tap, metrics, an
   * auth check, decryption), or a function making a fresh set per session
   * for stages that keep state.
   */
  inbound?: SessionStages | (() => SessionStages);
  /** The user's own outbound stages for every session, or a function making them per session. */
  outbound?: SessionStages | (() => SessionStages);
}

/** Counters of a server. */
export interface ServerMetrics {
  /** Connections accepted into a session. */
  accepted: number;
  /** Connections refused at `maxConnections` or during shutdown. */
  rejected: number;
  /** Handshakes that failed (bad token, codec, timeout, protocol). */
  handshakeFailures: number;
  /** Sessions closed for any reason. */
  closed: number;
  /** Sessions disconnected as slow consumers of broadcasts. */
  slowConsumers: number;
  /** Sessions closed for heartbeat silence. */
  deadPeers: number;
  /** Broadcast calls made. */
  broadcasts: number;
  /** Broadcast frames queued to sessions. */
  broadcastDeliveries: number;
}

/** Result of a broadcast. */
export interface BroadcastResult {
  /** Sessions the message was queued to. */
  delivered: number;
  /** Sessions disconnected as slow consumers instead. */
  dropped: number;
}

/** Target and options of {@linkcode Server.broadcast}. */
export interface BroadcastOptions {
  /** Only members of this topic; every handshaken session without it. */
  topic?: string;
  /** A session to leave out, such as the sender. */
  exclude?: Session;
}

/**
 * Observes a server from outside (a cluster layer): topics gaining their
 * first member or losing their last, sessions opening after the handshake
 * and closing.
 */
export interface ServerWatcher {
  /** A topic got its first member (`active` true) or lost its last (false). */
  topic?(topic: string, active: boolean): void;
  /** A session completed its handshake (`open` true) or closed after it (false). */
  session?(session: Session, open: boolean): void;
}

const DEFAULTS = {
  maxConnections: 10_000,
  handshakeTimeoutMs: 5_000,
  drainTimeoutMs: 10_000,
  maxTopicsPerSession: 64,
} as const;

/** Longest topic name in bytes of UTF-16 code units; bounds memory per topic. */
const MAX_TOPIC_LENGTH = 256;

/**
 * The server side of protocol v1 over any {@linkcode Listener} or single
 * {@linkcode Connection}.
 *
 * @example Usage
 * ```ts
 * import { memoryPair, openSession, Server } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const server = new Server({ handler: { message() {} } });
 * const [a, b] = memoryPair();
 * server.accept(a);
 * const client = await openSession(b, { handler: { message() {} } });
 * assert.equal(server.sessionCount, 1);
 * assert.equal(server.session(client.id)?.state, "active");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export class Server {
  /** Counters. */
  readonly metrics: ServerMetrics = {
    accepted: 0,
    rejected: 0,
    handshakeFailures: 0,
    closed: 0,
    slowConsumers: 0,
    deadPeers: 0,
    broadcasts: 0,
    broadcastDeliveries: 0,
  };

  #options: ServerOptions;
  #limits: { [K in keyof typeof DEFAULTS]: number };
  #sessions = new Map<string, Session>();
  #topics = new Map<string, Set<Session>>();
  #listeners = new Set<Listener>();
  #sweep: Timer | undefined;
  #accepting = true;
  #internal: SessionHandler;
  #watchers = new Set<ServerWatcher>();

  /**
   * Creates a server; it accepts nothing until {@linkcode Server.serve} or
   * {@linkcode Server.accept} is called.
   *
   * @param options Handler, limits and what the handshake accepts.
   */
  constructor(options: ServerOptions) {
    this.#options = options;
    this.#limits = {
      maxConnections: options.maxConnections ?? DEFAULTS.maxConnections,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      drainTimeoutMs: options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
      maxTopicsPerSession: options.maxTopicsPerSession ?? DEFAULTS.maxTopicsPerSession,
    };
    const user = options.handler;
    this.#internal = {
      message: (session, message) => user.message(session, message),
      open: (session) => {
        user.open?.(session);
        for (const w of this.#watchers) w.session?.(session, true);
      },
      goaway: (session, message) => user.goaway?.(session, message),
      drain: user.drain && ((session) => user.drain!(session)),
      close: (session, reason) => this.#closed(session, reason),
    };
  }

  /**
   * Adds an observer of topic activity and session lifetime.
   *
   * @param watcher Its callbacks; what they throw is not caught.
   * @returns A function that removes it.
   */
  watch(watcher: ServerWatcher): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** Number of sessions, handshaking ones included. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Whether the server still accepts connections. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /**
   * Looks a session up by id.
   *
   * @param id Session id.
   * @returns The session, if it exists.
   */
  session(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /**
   * All sessions.
   *
   * @returns An iterator over the sessions, handshaking ones included.
   */
  sessions(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /**
   * Accepts connections from `listener` until it closes or the server shuts down.
   *
   * @param listener A listener from {@linkcode listen} or {@linkcode memoryListener}.
   * @returns Resolves when the listener stops yielding connections.
   */
  async serve(listener: Listener): Promise<void> {
    this.#listeners.add(listener);
    try {
      for await (const conn of listener) this.accept(conn);
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /**
   * Starts a session on one connection, or refuses it when the server is
   * full or shutting down.
   *
   * @param conn An accepted connection.
   * @returns The new session, or undefined if refused.
   */
  accept(conn: Connection): Session | undefined {
    if (!this.#accepting || this.#sessions.size >= this.#limits.maxConnections) {
      this.metrics.rejected++;
      const error = this.#accepting
        ? new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Server full: maxConnections '${this.#limits.maxConnections}' reached`,
        )
        : new StreamwireError(Status.UNAVAILABLE, "Server is shutting down");
      refuse(conn, error);
      return undefined;
    }
    const id = crypto.randomUUID();
    const options = this.#options;
    const session = new Session(conn, {
      ...options,
      role: "server",
      handler: this.#internal,
      id,
      negotiate: (hello) => negotiate(hello, options, id),
      inbound: typeof options.inbound === "function" ? options.inbound() : options.inbound,
      outbound: typeof options.outbound === "function" ? options.outbound() : options.outbound,
    });
    this.#sessions.set(session.id, session);
    this.metrics.accepted++;
    this.#startSweep();
    return session;
  }

  /**
   * Adds a session to a topic.
   *
   * @param session A handshaken session.
   * @param topic Topic name, 1 to 256 characters.
   * @throws {StreamwireError} `invalid_argument` for a bad name,
   *   `resource_exhausted` past `maxTopicsPerSession`.
   */
  join(session: Session, topic: string): void {
    if (typeof topic !== "string" || topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Topic must be a string of 1..${MAX_TOPIC_LENGTH} characters, got '${
          String(topic).slice(0, 300)
        }'`,
      );
    }
    if (session.topics.has(topic)) return;
    if (session.topics.size >= this.#limits.maxTopicsPerSession) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Session already in '${this.#limits.maxTopicsPerSession}' topics`,
      );
    }
    let members = this.#topics.get(topic);
    const first = members === undefined;
    if (members === undefined) this.#topics.set(topic, members = new Set());
    members.add(session);
    session.topics.add(topic);
    if (first) { for (const w of this.#watchers) w.topic?.(topic, true); }
  }

  /**
   * Removes a session from a topic.
   *
   * @param session A session.
   * @param topic Topic name.
   * @returns Whether the session was a member.
   */
  leave(session: Session, topic: string): boolean {
    if (!session.topics.delete(topic)) return false;
    const members = this.#topics.get(topic);
    members?.delete(session);
    if (members?.size === 0) {
      this.#topics.delete(topic);
      for (const w of this.#watchers) w.topic?.(topic, false);
    }
    return true;
  }

  /**
   * Members of a topic.
   *
   * @param topic Topic name.
   * @returns The sessions that joined it.
   */
  members(topic: string): ReadonlySet<Session> {
    return this.#topics.get(topic) ?? new Set();
  }

  /**
   * Topics with at least one member.
   *
   * @returns Topic names and member counts.
   */
  topics(): { topic: string; members: number }[] {
    return [...this.#topics].map(([topic, members]) => ({ topic, members: members.size }));
  }

  /**
   * Sends one BROADCAST to every handshaken session, or to a topic's
   * members. The frame is encoded once (and compressed at most once per
   * algorithm) and the same bytes are queued to every session. A session
   * whose queue is full is disconnected as a slow consumer with ERROR
   * `resource_exhausted`; the others are unaffected. A session whose
   * negotiated `maxFrame` is smaller than the frame is skipped (BROADCAST is
   * at-most-once, PROTOCOL.md 5): it is counted neither as delivered nor as dropped.
   *
   * @param method The call entry's method (the topic, for chat-style fan-out).
   * @param params Codec bytes, identical for every receiver, or a function
   *   encoding them for a codec (called once per codec in use).
   * @param options Topic and exclusion.
   * @returns How many sessions got it and how many were dropped.
   */
  broadcast(
    method: string,
    params: Uint8Array | ((codec: CodecName) => Uint8Array),
    options: BroadcastOptions = {},
  ): BroadcastResult {
    this.metrics.broadcasts++;
    // One encoding per (codec, compression) pair in use, shared by every
    // session with that pair: the bytes are never copied per session.
    const encoded = new Map<string, Uint8Array>();
    const threshold = this.#options.compressionThreshold ?? 1024;
    const encode = (session: Session): Uint8Array => {
      const codec = session.codec;
      const algorithm = session.settings?.compression[0];
      const key = `${typeof params === "function" ? codec : ""}/${algorithm ?? ""}`;
      let bytes = encoded.get(key);
      if (bytes === undefined) {
        const payload = typeof params === "function" ? params(codec) : params;
        let frame = encodeMessage({ type: FrameType.BROADCAST, seq: 0, method, params: payload });
        if (algorithm !== undefined) frame = compressFrame(frame, { algorithm, threshold });
        bytes = encodeFrames([frame]);
        encoded.set(key, bytes);
      }
      return bytes;
    };
    const targets = options.topic === undefined
      ? this.#sessions.values()
      : this.members(options.topic);
    const result: BroadcastResult = { delivered: 0, dropped: 0 };
    const slow: Session[] = [];
    for (const session of targets) {
      if (session === options.exclude) continue;
      const state = session.state;
      if (state !== SessionState.ACTIVE && state !== SessionState.IDLE) continue;
      const bytes = encode(session);
      // Never send a frame the session said it would refuse (its maxFrame).
      if (bytes.length - HEADER_SIZE > (session.settings?.maxFrame ?? Infinity)) continue;
      if (session.sendEncoded(bytes)) result.delivered++;
      else slow.push(session);
    }
    for (const session of slow) {
      result.dropped++;
      this.#dropSlow(session);
    }
    this.metrics.broadcastDeliveries += result.delivered;
    return result;
  }

  /**
   * Pushes a message to one session, under the same rule as broadcasts: a
   * session whose outbound queue is over its limit is disconnected as a
   * slow consumer rather than queued to without bound.
   *
   * @param id Session id.
   * @param message Any message, typically a NOTIFY.
   * @returns Whether the session exists and took the message.
   * @throws {StreamwireError} `resource_exhausted` for a message larger than
   *   the session's negotiated `maxFrame`.
   */
  unicast(id: string, message: Message): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    if (session.send(message)) return true;
    const state = session.state;
    if (state === SessionState.ACTIVE || state === SessionState.IDLE) this.#dropSlow(session);
    return false;
  }

  #dropSlow(session: Session): void {
    this.metrics.slowConsumers++;
    session.close(
      new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Slow consumer: outbound queue over its limit ('${session.queuedBytes}' bytes queued)`,
      ),
    );
  }

  /**
   * Disconnects a session with ERROR `aborted` and the given reason.
   *
   * @param id Session id.
   * @param reason Why, sent to the peer.
   * @returns Whether the session existed.
   */
  kick(id: string, reason = "Kicked by the server"): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    session.close(new StreamwireError(Status.ABORTED, reason));
    return true;
  }

  /**
   * Graceful shutdown: stop accepting, send GOAWAY (`unavailable`, lastId)
   * to every session, wait for in-flight work up to the drain deadline,
   * then close everything.
   *
   * @param options Drain deadline in ms; defaults to `drainTimeoutMs`.
   * @returns Resolves once every session is closed.
   */
  async shutdown(options: { deadlineMs?: number } = {}): Promise<void> {
    this.#accepting = false;
    for (const listener of this.#listeners) listener.close();
    const sessions = [...this.#sessions.values()];
    for (const session of sessions) {
      if (session.state === SessionState.CONNECTING) session.close();
      else session.goaway("Server shutting down");
    }
    const handler = this.#options.handler;
    if (handler.drain !== undefined) {
      const deadline = options.deadlineMs ?? this.#limits.drainTimeoutMs;
      let timer: Timer | undefined;
      // Called as a method: a class-based handler keeps its `this`.
      const drained = (s: Session) => handler.drain!(s).catch(() => {});
      await Promise.race([
        Promise.all(sessions.map(drained)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline))),
      ]);
      clearTimeout(timer);
    }
    await Promise.all(sessions.map((s) => s.close()));
    this.#stopSweep();
  }

  #closed(session: Session, reason: StreamwireError | undefined): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    for (const topic of [...session.topics]) this.leave(session, topic);
    this.metrics.closed++;
    // Counted here, whoever detected it: the handshake (token, codec,
    // version), the session (a call frame or garbage before HELLO) or the
    // sweep (timeout). A peer that just hangs up early is not a failure.
    if (reason !== undefined && session.settings === undefined) {
      this.metrics.handshakeFailures++;
    }
    this.#options.handler.close?.(session, reason);
    if (session.settings !== undefined) {
      for (const w of this.#watchers) w.session?.(session, false);
    }
    if (this.#sessions.size === 0 && !this.#accepting) this.#stopSweep();
  }

  #startSweep(): void {
    if (this.#sweep !== undefined) return;
    const hb = this.#options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const interval = Math.max(5, Math.min(1000, Math.min(hb, this.#limits.handshakeTimeoutMs) / 4));
    this.#sweep = setInterval(() => {
      if (this.#sessions.size === 0) return this.#stopSweep();
      const now = Date.now();
      for (const session of this.#sessions.values()) {
        if (session.tick(now, this.#limits.handshakeTimeoutMs) === "dead") this.metrics.deadPeers++;
      }
    }, interval);
  }

  #stopSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}

/** Sends a connection-level ERROR to a connection without a session, then closes it. */
function refuse(conn: Connection, error: StreamwireError): void {
  const bytes = encodeFrames([
    encodeMessage({ type: FrameType.ERROR, seq: 0, code: error.code, message: error.message }),
  ]);
  const writer = conn.writable.getWriter();
  // A peer that does not read gets one second, then the connection goes anyway.
  const timer = setTimeout(() => conn.close(), 1000);
  writer.write(bytes)
    .catch(() => {})
    .finally(() => {
      clearTimeout(timer);
      conn.close();
    });
}
