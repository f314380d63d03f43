// Rules of a session that are data rather than behaviour: its state
// transitions, default limits and which frames may come when. Private:
// Session uses them.

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import type { SessionSettings } from "./handshake.ts";
import type { SessionLimits, SessionOptions, SessionState } from "./session_options.ts";

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
