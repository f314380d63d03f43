/**
 * Messages to frame bodies: the body size of a message, writing a body into a
 * caller's buffer, and encoding a message into a frame. The message types and
 * their decoding are in `message.ts` (PROTOCOL.md 2).
 *
 * @module
 */

import { ExtKey, Flag, FrameType, MAX_PING_PAYLOAD, Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import type { Extensions, Message } from "./message.ts";
import { utf8EncodeInto, utf8Length } from "./_bytes.ts";
import { strLength } from "./_length_cache.ts";

// Method and metadata names repeat: their UTF-8 lengths come from a bounded
// cache (_length_cache.ts). Trace context differs on every call: not cached.

function extSize(ext: Extensions): number {
  let n = 2;
  if (ext.traceparent !== undefined) n += 3 + entryLength(ExtKey.TRACEPARENT, ext.traceparent);
  if (ext.tracestate !== undefined) n += 3 + entryLength(ExtKey.TRACESTATE, ext.tracestate);
  if (ext.timeoutMs !== undefined) n += 7;
  if (ext.metadata) {
    for (const [name, value] of ext.metadata) {
      const nameLen = strLength(name);
      if (nameLen > 0xff) throw invalid(`Metadata name '${name}' exceeds 255 bytes`);
      const entry = 1 + nameLen + utf8Length(value);
      if (entry > 0xffff) throw invalid(`Metadata entry '${name}' of '${entry}' bytes is too long`);
      n += 3 + entry;
    }
  }
  if (n - 2 > 0xffff) throw invalid(`Extension block of '${n - 2}' bytes exceeds '65535'`);
  return n;
}

function entryLength(key: number, value: string): number {
  const n = utf8Length(value);
  if (n > 0xffff) throw invalid(`Extension 0x${key.toString(16)} of '${n}' bytes is too long`);
  return n;
}

/** UTF-8 length of a method name, checked against PROTOCOL.md 2.1. */
function methodLength(method: string): number {
  const n = strLength(method);
  if (n === 0 || n > 0xffff) throw invalid(`Method name of '${n}' bytes is outside 1..65535`);
  return n;
}

function invalid(what: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, what);
}

/**
 * Number of body bytes `message` encodes to (extension block included).
 * It checks every length the encoding has a field for, so a message it
 * accepts encodes: a sender can refuse a bad message where it enters.
 *
 * @param message Any message.
 * @returns The body length.
 * @throws {StreamwireError} `invalid_argument` for a method name outside
 *   1..65535 bytes, an over-long extension entry or block, or a PING
 *   payload over 64 bytes.
 *
 * @example Usage
 * ```ts
 * import { encodedBodySize, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodedBodySize({ type: FrameType.CREDIT, seq: 3, credit: 64 }), 4);
 * ```
 */
export function encodedBodySize(message: Message): number {
  const base = message.ext ? extSize(message.ext) : 0;
  switch (message.type) {
    case FrameType.REQUEST:
    case FrameType.NOTIFY:
    case FrameType.BROADCAST:
    case FrameType.OPEN:
      return base + 6 + methodLength(message.method) + message.params.length;
    case FrameType.RESPONSE:
    case FrameType.DATA:
      return base + message.data.length;
    case FrameType.BATCH: {
      if (message.declared !== undefined && message.declared !== message.entries.length) {
        throw invalid(
          `BATCH declared '${message.declared}' entries but holds '${message.entries.length}'`,
        );
      }
      let n = base + 4;
      for (const e of message.entries) n += 6 + methodLength(e.method) + e.params.length;
      return n;
    }
    case FrameType.BATCH_RESULT: {
      let n = base + 4;
      for (const r of message.results) n += 6 + r.data.length;
      return n;
    }
    case FrameType.HELLO:
      return base + utf8Length(JSON.stringify(message.hello));
    case FrameType.HELLO_ACK:
      return base + utf8Length(JSON.stringify(message.ack));
    case FrameType.PING:
    case FrameType.PONG:
      if (message.payload.length > MAX_PING_PAYLOAD) {
        throw invalid(`PING payload of '${message.payload.length}' bytes exceeds '64'`);
      }
      return base + message.payload.length;
    case FrameType.GOAWAY:
      return base + 6 + utf8Length(message.reason);
    case FrameType.END:
      return base;
    case FrameType.CANCEL:
    case FrameType.ERROR:
      return base + 2 + utf8Length(message.message);
    case FrameType.CREDIT:
      return base + 4;
  }
}

/** Writes u16/u32 big-endian and strings into a target buffer. */
class Writer {
  buf: Uint8Array;
  o: number;
  constructor(buf: Uint8Array, o: number) {
    this.buf = buf;
    this.o = o;
  }
  u8(v: number): void {
    this.buf[this.o++] = v;
  }
  u16(v: number): void {
    const b = this.buf, o = this.o;
    b[o] = v >>> 8;
    b[o + 1] = v;
    this.o = o + 2;
  }
  u32(v: number): void {
    const b = this.buf, o = this.o;
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
    this.o = o + 4;
  }
  bytes(v: Uint8Array): void {
    this.buf.set(v, this.o);
    this.o += v.length;
  }
  str(v: string): number {
    const n = utf8EncodeInto(v, this.buf, this.o);
    this.o += n;
    return n;
  }
}

function writeCall(w: Writer, method: string, params: Uint8Array): void {
  const lenAt = w.o;
  w.o += 2;
  const n = w.str(method);
  if (n === 0 || n > 0xffff) {
    throw invalid(`Method name of '${n}' bytes is outside 1..65535`);
  }
  w.buf[lenAt] = n >>> 8;
  w.buf[lenAt + 1] = n;
  w.u32(params.length);
  w.bytes(params);
}

function writeExt(w: Writer, ext: Extensions): void {
  const lenAt = w.o;
  w.o += 2;
  const strEntry = (key: number, v: string) => {
    w.u8(key);
    const at = w.o;
    w.o += 2;
    const n = w.str(v);
    if (n > 0xffff) throw invalid(`Extension 0x${key.toString(16)} of '${n}' bytes is too long`);
    w.buf[at] = n >>> 8;
    w.buf[at + 1] = n;
  };
  if (ext.traceparent !== undefined) strEntry(ExtKey.TRACEPARENT, ext.traceparent);
  if (ext.tracestate !== undefined) strEntry(ExtKey.TRACESTATE, ext.tracestate);
  if (ext.timeoutMs !== undefined) {
    w.u8(ExtKey.TIMEOUT);
    w.u16(4);
    w.u32(Math.max(0, Math.min(0xffffffff, Math.floor(ext.timeoutMs))));
  }
  for (const [name, value] of ext.metadata ?? []) {
    w.u8(ExtKey.METADATA);
    const at = w.o;
    w.o += 3;
    const nameLen = w.str(name);
    if (nameLen > 0xff) throw invalid(`Metadata name '${name}' exceeds 255 bytes`);
    const n = 1 + nameLen + w.str(value);
    if (n > 0xffff) throw invalid(`Metadata entry '${name}' of '${n}' bytes is too long`);
    w.buf[at] = n >>> 8;
    w.buf[at + 1] = n;
    w.buf[at + 2] = nameLen;
  }
  const extLen = w.o - lenAt - 2;
  if (extLen > 0xffff) throw invalid(`Extension block of '${extLen}' bytes exceeds '65535'`);
  w.buf[lenAt] = extLen >>> 8;
  w.buf[lenAt + 1] = extLen;
}

/**
 * Writes the body of `message` into `target` at `offset`, which must have
 * room for {@linkcode encodedBodySize} bytes; returns the offset after it.
 *
 * @param message Any message.
 * @param target Destination buffer.
 * @param offset Where the body starts in `target`.
 * @returns The offset just past the written body.
 *
 * @example Usage
 * ```ts
 * import { encodedBodySize, FrameType, writeMessageBody } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const message = { type: FrameType.CREDIT, seq: 1, credit: 32 } as const;
 * const body = new Uint8Array(encodedBodySize(message));
 * assert.equal(writeMessageBody(message, body, 0), 4);
 * assert.deepEqual(body, Uint8Array.of(0, 0, 0, 32));
 * ```
 */
export function writeMessageBody(message: Message, target: Uint8Array, offset: number): number {
  const w = new Writer(target, offset);
  if (message.ext) writeExt(w, message.ext);
  switch (message.type) {
    case FrameType.REQUEST:
    case FrameType.NOTIFY:
    case FrameType.BROADCAST:
    case FrameType.OPEN:
      writeCall(w, message.method, message.params);
      break;
    case FrameType.RESPONSE:
    case FrameType.DATA:
      w.bytes(message.data);
      break;
    case FrameType.BATCH:
      w.u32(message.entries.length);
      for (const e of message.entries) writeCall(w, e.method, e.params);
      break;
    case FrameType.BATCH_RESULT:
      w.u32(message.results.length);
      for (const r of message.results) {
        w.u16(r.code);
        w.u32(r.data.length);
        w.bytes(r.data);
      }
      break;
    case FrameType.HELLO:
      w.str(JSON.stringify(message.hello));
      break;
    case FrameType.HELLO_ACK:
      w.str(JSON.stringify(message.ack));
      break;
    case FrameType.PING:
    case FrameType.PONG:
      if (message.payload.length > MAX_PING_PAYLOAD) {
        throw invalid(`PING payload of '${message.payload.length}' bytes exceeds '64'`);
      }
      w.bytes(message.payload);
      break;
    case FrameType.GOAWAY:
      w.u16(message.code);
      w.u32(message.lastId);
      w.str(message.reason);
      break;
    case FrameType.END:
      break;
    case FrameType.CANCEL:
    case FrameType.ERROR:
      w.u16(message.code);
      w.str(message.message);
      break;
    case FrameType.CREDIT:
      w.u32(message.credit);
      break;
  }
  return w.o;
}

/**
 * Encodes a message into an uncompressed frame with a freshly allocated body.
 * The batch encoders ({@linkcode MessageEncoderStream}) write many bodies into
 * one buffer instead.
 *
 * @param message Any message.
 * @returns The frame, with the EXT flag set when the message has extensions.
 *
 * @example Usage
 * ```ts
 * import { encodeMessage, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeMessage({ type: FrameType.END, seq: 5 });
 * assert.deepEqual(frame, { type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) });
 * ```
 */
export function encodeMessage(message: Message): Frame {
  const body = new Uint8Array(encodedBodySize(message));
  writeMessageBody(message, body, 0);
  return { type: message.type, flags: message.ext ? Flag.EXT : 0, seq: message.seq, body };
}
