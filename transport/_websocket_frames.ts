// What the WebSocket mapping knows of frames (docs/PROTOCOL.md, "WebSocket"):
// a message carries whole frames, at most maxFrame + 17 bytes of them, and
// the negotiated maxFrame is read from the HELLO_ACK the connection carries.
// No Deno and no node: imports, so that browsers load it. Private to transport/.

import { utf8Decode } from "../codec/_bytes.ts";
import { Flag, FrameType, HEADER_SIZE, MAGIC, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { encodeMessage } from "../codec/message.ts";

/** The subprotocol both sides must agree on (RFC 6455 1.9, `Sec-WebSocket-Protocol`). */
export const SUBPROTOCOL = "streamwire.v1";

/** Close codes used (RFC 6455 7.4.1). */
export const CloseCode = {
  /** Normal closure. */
  NORMAL: 1000,
  /** A message that does not hold whole frames. */
  PROTOCOL_ERROR: 1002,
  /** A text message: only binary messages carry frames. */
  UNSUPPORTED_DATA: 1003,
  /** The peer kept sending while unread messages were over their bound. */
  POLICY_VIOLATION: 1008,
  /** A message larger than maxFrame + 17 bytes. */
  MESSAGE_TOO_BIG: 1009,
} as const;

/** A peer broke the mapping: the error for the ERROR frame, the code for the Close frame. */
export class Violation extends StreamwireError {
  /** The WebSocket close code that goes with it. */
  readonly closeCode: number;

  constructor(code: number, message: string, closeCode: number) {
    super(code, message);
    this.closeCode = closeCode;
  }
}

/** Reads a frame header's length field (offset 5, u32). */
function bodyLength(bytes: Uint8Array, at: number): number {
  return ((bytes[at + 5] << 24) | (bytes[at + 6] << 16) | (bytes[at + 7] << 8) | bytes[at + 8]) >>>
    0;
}

/**
 * The maxFrame a HELLO_ACK frame at `at` announces, if it is one and
 * parses; anything else is left to the session, which checks it fully.
 */
function ackMaxFrame(bytes: Uint8Array, at: number, length: number): number | undefined {
  if (bytes[at + 4] !== FrameType.HELLO_ACK || (bytes[at + 3] & Flag.COMPRESSION_MASK) !== 0) {
    return undefined;
  }
  let start = at + HEADER_SIZE;
  const end = start + length;
  if (bytes[at + 3] & Flag.EXT) {
    if (end - start < 2) return undefined;
    start += 2 + ((bytes[start] << 8) | bytes[start + 1]);
  }
  try {
    const maxFrame = JSON.parse(utf8Decode(bytes.subarray(start, end)))?.maxFrame;
    return Number.isSafeInteger(maxFrame) && maxFrame > 0 ? maxFrame : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Walks the frames of `bytes`: the offsets where messages of at most
 * `packLimit` bytes end (a frame larger than that is a message of its own),
 * and the maxFrame of a HELLO_ACK among them. `undefined` ends when the
 * bytes end inside a frame or do not start with a frame header.
 */
export function frameWalk(
  bytes: Uint8Array,
  packLimit: number,
  seekAck: boolean,
): { ends: number[]; maxFrame: number | undefined } | undefined {
  const ends: number[] = [];
  let maxFrame: number | undefined;
  let start = 0;
  let at = 0;
  const n = bytes.length;
  while (at < n) {
    if (n - at < HEADER_SIZE || ((bytes[at] << 8) | bytes[at + 1]) !== MAGIC) return undefined;
    const length = bodyLength(bytes, at);
    const end = at + HEADER_SIZE + length;
    if (end > n) return undefined;
    if (seekAck && maxFrame === undefined) maxFrame = ackMaxFrame(bytes, at, length);
    if (end - start > packLimit && at > start) {
      ends.push(at);
      start = at;
    }
    at = end;
  }
  if (n > start) ends.push(n);
  return { ends, maxFrame };
}

/** Why a received message is refused, if it is: larger than `limit` or not whole frames. */
export function checkMessage(
  bytes: Uint8Array,
  limit: number,
): { violation?: Violation; maxFrame?: number } {
  if (bytes.length > limit) return { violation: tooBig(bytes.length, limit) };
  const walk = frameWalk(bytes, Infinity, true);
  if (walk === undefined) {
    return {
      violation: new Violation(
        Status.INVALID_ARGUMENT,
        `WebSocket message of '${bytes.length}' bytes does not hold whole frames`,
        CloseCode.PROTOCOL_ERROR,
      ),
    };
  }
  return { maxFrame: walk.maxFrame };
}

/** A message over the bound. */
export function tooBig(size: number, limit: number): Violation {
  return new Violation(
    Status.RESOURCE_EXHAUSTED,
    `WebSocket message of '${size}' bytes exceeds maxFrame plus header '${limit}'`,
    CloseCode.MESSAGE_TOO_BIG,
  );
}

/** A text message. */
export function textMessage(): Violation {
  return new Violation(
    Status.INVALID_ARGUMENT,
    "Text WebSocket message refused: frames travel in binary messages",
    CloseCode.UNSUPPORTED_DATA,
  );
}

/** The ERROR frame (seq 0) that tells the peer why the connection closes. */
export function errorFrame(error: StreamwireError): Uint8Array {
  return encodeFrames([
    encodeMessage({ type: FrameType.ERROR, seq: 0, code: error.code, message: error.message }),
  ]);
}

/** A write that is not whole frames: the mapping cannot put it in messages. */
export function notWholeFrames(size: number): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Chunk of '${size}' bytes does not hold whole frames: a WebSocket message carries whole frames`,
  );
}

/** Whether `listen()` or `dial()` was given a WebSocket address: a ws(s) URL, or options with `url`. */
export function isWebSocketTarget(target: unknown): boolean {
  if (typeof target === "string") return /^wss?:/i.test(target);
  if (target instanceof URL) return target.protocol === "ws:" || target.protocol === "wss:";
  return typeof target === "object" && target !== null && "url" in target;
}
