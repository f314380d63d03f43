// Rules of a session that are data rather than behaviour: its state
// transitions, default limits and which frames may come when. Private:
// Session uses them.

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import type { SessionSettings } from "./handshake.ts";
import type {
  SessionLimits,
  SessionOptions,
  SessionState,
  SessionStats,
} from "./session_options.ts";

export const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  connecting: ["active", "disconnecting", "closed"],
  active: ["idle", "disconnecting", "closed"],
  idle: ["active", "disconnecting", "closed"],
  disconnecting: ["closed"],
  closed: [],
};

export const DEFAULT_LIMITS = {
  maxQueueBytes: 1024 * 1024,
  maxQueueFrames: 8192,
  maxPingsPerSecond: 20,
  closeTimeoutMs: 1000,
  compressionThreshold: 1024,
  maxBatchEntries: 1024,
} as const;

/** Largest frame a server reads before the handshake: HELLO is small. */
export const PRE_HANDSHAKE_MAX_FRAME = 65536;

/** Frames that may precede the handshake (PROTOCOL.md 4). */
export const PRE_HANDSHAKE = new Set<number>([
  FrameType.PING,
  FrameType.PONG,
  FrameType.ERROR,
  FrameType.GOAWAY,
]);

/** Frames that open a call: a session over its queue bound stops reading them. */
export const CALL_OPENERS = new Set<number>([FrameType.REQUEST, FrameType.BATCH, FrameType.OPEN]);

/**
 * Small frames that keep a connection and its calls working: never refused
 * for queue room, bounded instead by what provokes them (reading pauses,
 * credit, the PING rate).
 */
export const CONTROL = new Set<number>([
  FrameType.HELLO,
  FrameType.HELLO_ACK,
  FrameType.PING,
  FrameType.PONG,
  FrameType.GOAWAY,
  FrameType.END,
  FrameType.CANCEL,
  FrameType.CREDIT,
]);

export function definedOnly(options: SessionLimits): SessionLimits {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(DEFAULT_LIMITS)) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as SessionLimits;
}

/**
 * The settings a handshake frame settles: a server's from the client's
 * HELLO (`negotiate`), a client's from the server's HELLO_ACK (`acceptAck`).
 *
 * @throws {StreamwireError} `failed_precondition` for the wrong frame, or
 *   whatever the negotiation refuses with.
 */
export function handshakeSettings(
  message: Message,
  role: "client" | "server",
  options: Pick<SessionOptions, "negotiate" | "acceptAck">,
): SessionSettings {
  if (role === "server") {
    if (message.type !== FrameType.HELLO) throw notExpected(message, "HELLO");
    if (options.negotiate === undefined) {
      throw new StreamwireError(Status.UNIMPLEMENTED, "This session accepts no HELLO");
    }
    return options.negotiate(message.hello);
  }
  if (message.type !== FrameType.HELLO_ACK) throw notExpected(message, "HELLO_ACK");
  if (options.acceptAck === undefined) {
    throw new StreamwireError(Status.UNIMPLEMENTED, "This session expects no HELLO_ACK");
  }
  return options.acceptAck(message.ack);
}

function notExpected(message: Message, expected: string): StreamwireError {
  return new StreamwireError(
    Status.FAILED_PRECONDITION,
    `Frame type '0x${message.type.toString(16)}' is not a ${expected}`,
  );
}

/** The limits the last session was made with: a server's sessions share one object. */
let lastLimits: Required<SessionLimits> | undefined;

/** `limits`, or an equal object made before (limits are never changed once made). */
function sharedLimits(limits: Required<SessionLimits>): Required<SessionLimits> {
  const last = lastLimits;
  if (last !== undefined) {
    let same = true;
    for (const key in limits) {
      if (limits[key as keyof SessionLimits] !== last[key as keyof SessionLimits]) {
        same = false;
        break;
      }
    }
    if (same) return last;
  }
  return lastLimits = limits;
}

/** A session's limits from its options, shared with the sessions before it where equal. */
export function limitsOf(options: SessionOptions): Required<SessionLimits> {
  return sharedLimits({ ...DEFAULT_LIMITS, ...definedOnly(options) });
}

/** What a heartbeat tick asks of a session that is not closed. */
export interface HeartbeatCheck {
  /** Close sessions still connecting after this long. */
  handshakeTimeoutMs: number;
  /** The negotiated heartbeat; none before the handshake. */
  heartbeatMs: number | undefined;
  /** Nothing queued or being written: a PING would go out now. */
  quiet: boolean;
}

/**
 * The heartbeat's verdict on a session at `now`: the error to close it with
 * (handshake too slow, or the peer silent for 3 heartbeats), or whether it
 * turned idle and should be pinged.
 */
export function heartbeat(
  state: SessionState,
  stats: SessionStats,
  now: number,
  check: HeartbeatCheck,
): StreamwireError | { idle: boolean; ping: boolean } | undefined {
  if (state === "connecting") {
    const limit = check.handshakeTimeoutMs;
    if (now - stats.createdAt < limit) return undefined;
    return new StreamwireError(
      Status.DEADLINE_EXCEEDED,
      `Handshake not completed within '${limit}' ms`,
    );
  }
  const hb = check.heartbeatMs;
  if (hb === undefined) return undefined;
  const silent = now - stats.lastReceivedAt;
  if (silent >= 3 * hb) {
    return new StreamwireError(
      Status.UNAVAILABLE,
      `Peer silent for '${silent}' ms (heartbeat '${hb}' ms)`,
    );
  }
  const idle = state === "active" && silent >= hb;
  const ping = now - stats.lastSentAt >= hb && check.quiet;
  return idle || ping ? { idle, ping } : undefined;
}

/** Traffic counters of a session made at `now`. */
export function newStats(now: number): SessionStats {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    createdAt: now,
    lastReceivedAt: now,
    lastSentAt: now,
    rttMs: undefined,
  };
}

/** A PING's payload: its send time, so the PONG that echoes it yields the round trip. */
export function pingPayload(now: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setFloat64(0, now);
  return payload;
}

/** The round trip a PONG's payload shows at `now`, if it holds a plausible send time. */
export function rttOf(payload: Uint8Array, now: number): number | undefined {
  if (payload.length !== 8) return undefined;
  const sent = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0);
  return sent > 0 && sent <= now ? now - sent : undefined;
}

/**
 * Why a call id from the peer has the wrong parity (PROTOCOL.md 3.1: clients
 * use odd ids, servers even ones), or undefined if it is right.
 */
export function wrongParity(seq: number, role: "client" | "server"): string | undefined {
  const expected = role === "server" ? 1 : 0;
  if ((seq & 1) === expected) return undefined;
  const peer = role === "server" ? "client" : "server";
  return `Call id '${seq}' has the wrong parity: the ${peer} uses ${expected ? "odd" : "even"} ids`;
}
