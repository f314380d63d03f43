// What nodes send each other over the backplane, and the frame work around
// it: a BROADCAST frame is encoded once per codec on the publishing node,
// with a fixed-width `offset` metadata entry that receivers patch (16 ASCII
// digits and the CRC-32) once per message, never per session.

import { FrameType, HEADER_SIZE } from "../codec/constants.ts";
import { compressFrame } from "../codec/compression_stream.ts";
import type { CompressionName } from "../codec/constants.ts";
import { crc32 } from "../codec/crc32.ts";
import type { Frame } from "../codec/frame.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { decodeMessage, encodeMessage, type Message } from "../codec/message.ts";

/** Kinds of backplane message. */
export const Kind = { TOPIC: 1, ALL: 2, UNICAST: 3, KICK: 4, BATCH: 5 } as const;

/** A decoded backplane message. */
export interface NodeMessage {
  kind: number;
  /** Node that sent it. */
  origin: string;
  /** Session excluded (fan-out) or addressed (unicast, kick); "" for none. */
  target: string;
  /** Frames by codec name (fan-out), or one frame under "" (unicast). */
  frames: Map<string, Uint8Array>;
  /** Kick reason. */
  reason: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Node ids, session ids and codec names are short ASCII: no TextEncoder call for them. */
const SHORT = 64;

/**
 * What to write for `s`: the string itself when it is short ASCII (written
 * by char code, since a typed array allocation costs more here than the
 * whole copy), else its UTF-8 bytes.
 */
function textOf(s: string): string | Uint8Array {
  if (s.length > SHORT) return enc.encode(s);
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return enc.encode(s);
  return s;
}

/** Writes `t` from `at`; returns the offset after it. */
function put(out: Uint8Array, at: number, t: string | Uint8Array): number {
  if (typeof t !== "string") {
    out.set(t, at);
    return at + t.length;
  }
  for (let i = 0; i < t.length; i++) out[at + i] = t.charCodeAt(i);
  return at + t.length;
}

/** The text of `bytes[start, end)`; short ASCII text is read by char code. */
function text(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT) return dec.decode(bytes.subarray(start, end));
  let s = "";
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c > 0x7f) return dec.decode(bytes.subarray(start, end));
    s += String.fromCharCode(c);
  }
  return s;
}

/** Width of the patched offset value: 16 digits hold microseconds until year 2286. */
const OFFSET_DIGITS = 16;
const PLACEHOLDER = "0".repeat(OFFSET_DIGITS);
const MARK = enc.encode("offset" + PLACEHOLDER);

/** Encodes a backplane message. */
export function encodeNodeMessage(m: NodeMessage): Uint8Array {
  const origin = textOf(m.origin), target = textOf(m.target);
  const reason = textOf(m.reason);
  let size = 1 + 2 + origin.length + 2 + target.length + 1 + 2 + reason.length;
  const names: (string | Uint8Array)[] = [];
  const frames: Uint8Array[] = [];
  for (const [name, frame] of m.frames) {
    const n = textOf(name);
    names.push(n);
    frames.push(frame);
    size += 1 + n.length + 4 + frame.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  out[at++] = m.kind;
  at = putText(out, at, origin);
  at = putText(out, at, target);
  at = putText(out, at, reason);
  out[at++] = frames.length;
  for (let i = 0; i < frames.length; i++) {
    const n = names[i], frame = frames[i];
    out[at++] = n.length;
    at = put(out, at, n);
    const len = frame.length;
    out[at] = len >>> 24;
    out[at + 1] = (len >>> 16) & 0xff;
    out[at + 2] = (len >>> 8) & 0xff;
    out[at + 3] = len & 0xff;
    out.set(frame, at + 4);
    at += 4 + len;
  }
  return out;
}

/** Writes a u16 length and the text at `at`; returns the offset after them. */
function putText(out: Uint8Array, at: number, t: string | Uint8Array): number {
  out[at] = t.length >>> 8;
  out[at + 1] = t.length & 0xff;
  return put(out, at + 2, t);
}

/** Decodes a backplane message; frames are views into `bytes`. */
export function decodeNodeMessage(bytes: Uint8Array): NodeMessage {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const kind = bytes[at++];
  const field = () => {
    const len = view.getUint16(at);
    const s = text(bytes, at + 2, at + 2 + len);
    at += 2 + len;
    return s;
  };
  const origin = field(), target = field(), reason = field();
  const count = bytes[at++];
  const frames = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const n = bytes[at++];
    const name = text(bytes, at, at + n);
    at += n;
    const len = view.getUint32(at);
    frames.set(name, bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { kind, origin, target, frames, reason };
}

/**
 * Several backplane messages from one node in one: `[5][u16 origin length]
 * [origin][u16 count]` then `[u32 length][message]` per message. A receiver
 * tells its own batches by the origin without decoding the messages.
 */
export function encodeBatch(origin: string, messages: readonly Uint8Array[]): Uint8Array {
  const name = textOf(origin);
  let size = 1 + 2 + name.length + 2;
  for (const m of messages) size += 4 + m.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = Kind.BATCH;
  let at = putText(out, 1, name);
  view.setUint16(at, messages.length);
  at += 2;
  for (const m of messages) {
    view.setUint32(at, m.length);
    out.set(m, at + 4);
    at += 4 + m.length;
  }
  return out;
}

/** The origin and messages (views into `bytes`) of a batch. */
export function decodeBatch(bytes: Uint8Array): { origin: string; messages: Uint8Array[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint16(1);
  const origin = text(bytes, 3, 3 + len);
  let at = 3 + len;
  const count = view.getUint16(at);
  at += 2;
  const messages: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const n = view.getUint32(at);
    messages.push(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return { origin, messages };
}

/**
 * A BROADCAST frame; for a topic message (`offset` true) with a zero
 * `offset` metadata entry to patch. A broadcast to all has no offset, and
 * its frame no entry for each client to parse.
 */
export function broadcastTemplate(method: string, params: Uint8Array, offset = true): Uint8Array {
  return encodeFrames([
    encodeMessage({
      type: FrameType.BROADCAST,
      seq: 0,
      method,
      params,
      ext: offset ? { metadata: [["offset", PLACEHOLDER]] } : undefined,
    }),
  ]);
}

/** A copy of a template frame carrying `offset`, its CRC-32 recomputed. */
export function withOffset(template: Uint8Array, offset: number): Uint8Array {
  const frame = template.slice();
  const at = findMark(frame) + 6;
  const digits = String(offset).padStart(OFFSET_DIGITS, "0");
  for (let i = 0; i < OFFSET_DIGITS; i++) frame[at + i] = digits.charCodeAt(i);
  const crc = crc32(frame.subarray(HEADER_SIZE), crc32(frame.subarray(0, 13)));
  new DataView(frame.buffer).setUint32(13, crc);
  return frame;
}

function findMark(frame: Uint8Array): number {
  // The metadata entry is the first of the extension block, a few bytes in.
  outer: for (let i = HEADER_SIZE; i < Math.min(frame.length, HEADER_SIZE + 32); i++) {
    for (let j = 0; j < MARK.length; j++) if (frame[i + j] !== MARK[j]) continue outer;
    return i;
  }
  throw new Error("Frame has no offset entry to patch");
}

/** The frame object of encoded bytes (one whole frame). */
export function frameOf(bytes: Uint8Array): Frame {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { flags: bytes[3], type: bytes[4], seq: view.getUint32(9), body: bytes.subarray(17) };
}

/** The bytes to send a session that compresses with `algorithm`, if any. */
export function forAlgorithm(
  bytes: Uint8Array,
  algorithm: CompressionName | undefined,
): Uint8Array {
  if (algorithm === undefined) return bytes;
  const frame = compressFrame(frameOf(bytes), { algorithm });
  return frame.body === undefined ? bytes : encodeFrames([frame]);
}

/** A replayed entry: the stored frame's call with its offset and `recovered`. */
export function replayMessage(bytes: Uint8Array, offset: number): Message {
  const m = decodeMessage(frameOf(bytes));
  if (m.type !== FrameType.BROADCAST) throw new Error("Stored frame is not a BROADCAST");
  return {
    type: FrameType.BROADCAST,
    seq: 0,
    method: m.method,
    params: m.params,
    ext: { metadata: [["offset", String(offset)], ["recovered", "1"]] },
  };
}
