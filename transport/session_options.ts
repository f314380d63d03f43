/**
 * The public shape of a session: its states, counters, handler, user
 * stages, limits and options.
 *
 * @module
 */

import type { StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import type { GoawayMessage, Message } from "../codec/message.ts";
import type { Stage } from "../codec/stage.ts";
import type { SessionSettings } from "./handshake.ts";
import type { Session } from "./session.ts";

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

/** Traffic counters of a session. */
export interface SessionStats {
  /** Frames received. */
  framesIn: number;
  /** Frames written to the connection. */
  framesOut: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes written to the connection. */
  bytesOut: number;
  /** When the session was created (ms since epoch). */
  createdAt: number;
  /** When anything was last received (ms since epoch). */
  lastReceivedAt: number;
  /** When anything was last written to the connection (ms since epoch). */
  lastSentAt: number;
  /** Round-trip time measured by the last PING/PONG, in ms. */
  rttMs: number | undefined;
}

/** Receives what a session reads, apart from the connection-level frames it handles itself. */
export interface SessionHandler {
  /**
   * One call-level message, in wire order. Returning a promise stops
   * reading from this session until it settles (backpressure).
   */
  message(session: Session, message: Message): void | Promise<void>;
  /** The handshake completed; frames after HELLO / HELLO_ACK follow. */
  open?(session: Session): void;
  /** The peer sent GOAWAY. */
  goaway?(session: Session, message: GoawayMessage): void;
  /** Resolves once the session has no work in flight; graceful shutdown waits for it. */
  drain?(session: Session): Promise<void>;
  /** The session closed; `reason` is set when it closed on an error. */
  close?(session: Session, reason: StreamwireError | undefined): void;
}

/**
 * A user's own stages in a session's pipeline, at the frame level (after
 * checksum and decompression inbound, before compression outbound) or the
 * message level (after decoding inbound, before encoding outbound).
 *
 * Inbound stages may be asynchronous: later frames wait, in order.
 * Outbound stages run synchronously when the queue is flushed. The server,
 * `RpcServer` and the client take them as `inbound` and `outbound` options,
 * or a function making a fresh set per session for stages that keep state.
 *
 * @example A tap on what a server receives
 * ```ts
 * import { FrameType, type Message } from "@streamwire/streamwire/codec";
 * import { memoryPair, openSession, Server } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const seen: number[] = [];
 * const tap = {
 *   transform(message: Message, controller: TransformStreamDefaultController<Message>) {
 *     seen.push(message.type);
 *     controller.enqueue(message);
 *   },
 * };
 * const server = new Server({ handler: { message() {} }, inbound: { messages: [tap] } });
 * const [a, b] = memoryPair();
 * server.accept(a);
 * const client = await openSession(b, { handler: { message() {} } });
 * assert.deepEqual(seen, [FrameType.HELLO]);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @example Scramble bodies on the way out (a cipher would go here)
 * ```ts
 * import type { Frame } from "@streamwire/streamwire/codec";
 * import { memoryPair, openSession, Server } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const xor = {
 *   transform(frame: Frame, controller: TransformStreamDefaultController<Frame>) {
 *     controller.enqueue({ ...frame, body: frame.body.map((byte) => byte ^ 0x5a) });
 *   },
 * };
 * // Each side undoes on the way in what the other did on the way out.
 * const stages = { inbound: { frames: [xor] }, outbound: { frames: [xor] } };
 * const server = new Server({ handler: { message() {} }, ...stages });
 * const [a, b] = memoryPair();
 * server.accept(a);
 * const client = await openSession(b, { handler: { message() {} }, ...stages });
 * assert.equal(client.state, "active");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export interface SessionStages {
  /** Stages over {@linkcode Frame}s. */
  frames?: Stage<Frame, Frame>[];
  /** Stages over {@linkcode Message}s. */
  messages?: Stage<Message, Message>[];
}

/** Bounds of a session; each stops a different way of exhausting memory or CPU. */
export interface SessionLimits {
  /**
   * Bytes the outbound queue may hold, counted when a message is accepted
   * by {@linkcode Session.send}, not when it is written. Past it, `send()`
   * refuses calls, answers and broadcasts (callers wait with
   * {@linkcode Session.write}), the session stops reading its peer's calls,
   * and the server disconnects it as a slow consumer of broadcasts. One
   * frame larger than the bound is still accepted into an empty queue.
   *
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * Frames the outbound queue may hold, whatever their size. Small control
   * frames (CREDIT, PONG, END, CANCEL) may exceed it by `maxQueueFrames`
   * again; past that the peer is disconnected as a slow consumer.
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
   * written, and a session whose writes failed keeps reading what its peer
   * sent before, in ms.
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
  /**
   * Entries a received BATCH may declare; a larger one is handed on with
   * no entries decoded (and `declared` set), so it is refused from its
   * count without the cost of building millions of entries.
   *
   * @default {1024}
   */
  maxBatchEntries?: number;
}

/** Options of {@linkcode Session}. */
export interface SessionOptions extends SessionLimits {
  /** Which side of the connection this is: clients use odd call ids, servers even. */
  role: "client" | "server";
  /** Receives call-level messages. */
  handler: SessionHandler;
  /** Session id until the handshake assigns one. */
  id?: string;
  /**
   * Largest frame body accepted; the handshake may lower it. Before the
   * handshake, a server accepts frames of at most 64 KiB (a HELLO is a few
   * hundred bytes).
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Server side: turns the client's HELLO into the settings to answer with
   * (see `negotiate` in handshake.ts); throwing refuses the client.
   */
  negotiate?: (hello: Record<string, unknown>) => SessionSettings;
  /** Client side: checks the server's HELLO_ACK and returns the settings; throwing fails. */
  acceptAck?: (ack: Record<string, unknown>) => SessionSettings;
  /** Inbound user stages (see {@linkcode SessionStages}). */
  inbound?: SessionStages;
  /** Outbound user stages (see {@linkcode SessionStages}). */
  outbound?: SessionStages;
}
