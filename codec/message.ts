/**
 * Typed messages for every frame type of PROTOCOL.md 2, and their decoding
 * from frame bodies: call entries, batch entries and results, GOAWAY, ERROR,
 * CANCEL, CREDIT and the extension block. Encoding is in `message_encode.ts`.
 *
 * Payload fields (`params`, `result`, `data`) are codec bytes; they are views
 * into the frame body, never copies.
 *
 * @module
 */

import { ExtKey, Flag, FrameType, MAX_PING_PAYLOAD, Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { utf8Decode } from "./_bytes.ts";
import { shortAscii } from "./_short_ascii.ts";

// Encoding lives in its own module; importers of this one keep finding it here.
export { encodedBodySize, encodeMessage, writeMessageBody } from "./message_encode.ts";

/** The extension block of PROTOCOL.md 1.2, decoded. */
export interface Extensions {
  /** W3C Trace Context `traceparent`. */
  traceparent?: string;
  /** W3C Trace Context `tracestate`. */
  tracestate?: string;
  /** Milliseconds the caller will wait (relative deadline). */
  timeoutMs?: number;
  /** Metadata entries in wire order; names are lowercase ASCII and may repeat. */
  metadata?: [name: string, value: string][];
}

/** Fields every message has. */
export interface MessageBase {
  /** Call id, or 0 for connection-level messages. */
  seq: number;
  /** Decoded extension block, if the frame had one. */
  ext?: Extensions;
}

/** A method name and its codec-encoded params (PROTOCOL.md 2.1). */
export interface CallEntry {
  /** Method name, 1 to 65,535 UTF-8 bytes. */
  method: string;
  /** Params as codec bytes. */
  params: Uint8Array;
}

/** One result of a BATCH_RESULT (PROTOCOL.md 2.2). */
export interface BatchResultEntry {
  /** 0 on success, else a status code. */
  code: number;
  /** Result codec bytes when `code` is 0, else a UTF-8 error message. */
  data: Uint8Array;
}

/** HELLO: the client's handshake offer (PROTOCOL.md 4). */
export interface HelloMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.HELLO;
  /** The JSON object of the payload. */
  hello: Record<string, unknown>;
}

/** HELLO_ACK: the server's handshake answer (PROTOCOL.md 4). */
export interface HelloAckMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.HELLO_ACK;
  /** The JSON object of the payload. */
  ack: Record<string, unknown>;
}

/** PING or PONG with its opaque payload (at most 64 bytes). */
export interface PingMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.PING | typeof FrameType.PONG;
  /** Opaque bytes, echoed by PONG. */
  payload: Uint8Array;
}

/** GOAWAY: the sender accepts no new calls above `lastId`. */
export interface GoawayMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.GOAWAY;
  /** Status code, usually `unavailable`. */
  code: number;
  /** Highest call id the sender will still complete. */
  lastId: number;
  /** Human-readable reason. */
  reason: string;
}

/** A frame carrying one call entry: REQUEST, NOTIFY, BROADCAST or OPEN. */
export interface CallMessage extends MessageBase, CallEntry {
  /** Frame type. */
  type:
    | typeof FrameType.REQUEST
    | typeof FrameType.NOTIFY
    | typeof FrameType.BROADCAST
    | typeof FrameType.OPEN;
}

/** A frame carrying one codec-encoded value: RESPONSE or DATA. */
export interface ValueMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.RESPONSE | typeof FrameType.DATA;
  /** Codec bytes. */
  data: Uint8Array;
}

/** BATCH: several call entries under one call id. */
export interface BatchMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.BATCH;
  /** The calls, in request order; empty when {@linkcode BatchMessage.declared} is set. */
  entries: CallEntry[];
  /**
   * Set by the decoder only when the frame declared more entries than its
   * `maxBatchEntries` allowed: the declared count. The entries were then
   * checked but not built, and `entries` is empty, so that the receiver can
   * refuse the batch with `resource_exhausted` from the count alone. Such a
   * message cannot be encoded again.
   */
  declared?: number;
}

/** BATCH_RESULT: one result per BATCH entry, in request order. */
export interface BatchResultMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.BATCH_RESULT;
  /** The results. */
  results: BatchResultEntry[];
}

/** END: the sender will send no more DATA on this call. */
export interface EndMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.END;
}

/** CANCEL or ERROR: a status code and a UTF-8 text. */
export interface StatusMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.CANCEL | typeof FrameType.ERROR;
  /** Status code; CANCEL without one decodes as `cancelled`. */
  code: number;
  /** Reason or error message. */
  message: string;
}

/** CREDIT: the sender accepts `credit` more DATA frames on this call. */
export interface CreditMessage extends MessageBase {
  /** Frame type. */
  type: typeof FrameType.CREDIT;
  /** Additional DATA frames granted. */
  credit: number;
}

/** Any message of protocol v1, discriminated by `type`. */
export type Message =
  | HelloMessage
  | HelloAckMessage
  | PingMessage
  | GoawayMessage
  | CallMessage
  | ValueMessage
  | BatchMessage
  | BatchResultMessage
  | EndMessage
  | StatusMessage
  | CreditMessage;

function malformed(what: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, what);
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] * 0x1000000) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8Decode(bytes);
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
}

/**
 * The `n` bytes at `start` as text: short ASCII without TextDecoder (about
 * 100 ns a call) or a view, as extension values (metadata, trace context)
 * nearly always are.
 */
function textAt(bytes: Uint8Array, start: number, n: number, what: string): string {
  if (n <= SHORT_TEXT) {
    const ascii = shortAscii(bytes, start, n);
    if (ascii !== undefined) return ascii;
  }
  return text(bytes.subarray(start, start + n), what);
}

/** Longest text tried as ASCII first: a traceparent (55 bytes) fits. */
const SHORT_TEXT = 64;

function json(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text(bytes, what));
  } catch (error) {
    if (error instanceof StreamwireError) throw error;
    throw malformed(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed(`${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Decodes an extension block's entries (without the u16 `extLen`).
 *
 * @param entries The bytes after `extLen`.
 * @returns The known extensions; unknown keys are skipped.
 * @throws {StreamwireError} `invalid_argument` if an entry overruns the block.
 *
 * @example Usage
 * ```ts
 * import { decodeExtensions } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const ext = decodeExtensions(Uint8Array.of(0x03, 0, 4, 0, 0, 0x05, 0xdc));
 * assert.deepEqual(ext, { timeoutMs: 1500 });
 * ```
 */
export function decodeExtensions(entries: Uint8Array): Extensions {
  const ext: Extensions = {};
  let o = 0;
  while (o < entries.length) {
    if (entries.length - o < 3) {
      throw malformed(`Extension entry header at '${o}' overruns extLen '${entries.length}'`);
    }
    const key = entries[o];
    const len = u16(entries, o + 1);
    const start = o + 3;
    const end = start + len;
    if (end > entries.length) {
      throw malformed(
        `Extension 0x${
          key.toString(16)
        } of length '${len}' at '${o}' overruns extLen '${entries.length}'`,
      );
    }
    switch (key) {
      case ExtKey.TRACEPARENT:
        ext.traceparent = textAt(entries, start, len, "traceparent");
        break;
      case ExtKey.TRACESTATE:
        ext.tracestate = textAt(entries, start, len, "tracestate");
        break;
      case ExtKey.TIMEOUT:
        if (len !== 4) throw malformed(`Timeout extension has length '${len}', expected '4'`);
        ext.timeoutMs = u32(entries, start);
        break;
      case ExtKey.METADATA: {
        const nameLength = len < 1 ? 0 : entries[start];
        if (len < 1 || 1 + nameLength > len) {
          throw malformed(`Metadata entry name overruns its entry of length '${len}'`);
        }
        const name = textAt(entries, start + 1, nameLength, "metadata name");
        const valueStart = start + 1 + nameLength;
        (ext.metadata ??= []).push([
          name,
          textAt(entries, valueStart, end - valueStart, "metadata value"),
        ]);
        break;
      }
        // Unknown keys are skipped (PROTOCOL.md 1.2).
    }
    o = end;
  }
  return ext;
}

/**
 * Splits a frame body into its extension entries and its payload.
 *
 * @param flags The frame's flags byte.
 * @param body The frame body.
 * @returns `ext`: the entries after `extLen` (undefined without the EXT flag), and `payload`.
 * @throws {StreamwireError} `invalid_argument` if `extLen` overruns the body.
 *
 * @example Usage
 * ```ts
 * import { Flag, splitBody } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const { ext, payload } = splitBody(Flag.EXT, Uint8Array.of(0, 0, 42));
 * assert.equal(ext?.length, 0);
 * assert.deepEqual(payload, Uint8Array.of(42));
 * ```
 */
export function splitBody(
  flags: number,
  body: Uint8Array,
): { ext: Uint8Array | undefined; payload: Uint8Array } {
  if (!(flags & Flag.EXT)) return { ext: undefined, payload: body };
  if (body.length < 2) throw malformed(`Body of '${body.length}' bytes has no room for extLen`);
  const extLen = u16(body, 0);
  if (2 + extLen > body.length) {
    throw malformed(`extLen '${extLen}' overruns the body of '${body.length}' bytes`);
  }
  return { ext: body.subarray(2, 2 + extLen), payload: body.subarray(2 + extLen) };
}

/**
 * Checks the call entry at `o` (PROTOCOL.md 2.1) and returns where it ends;
 * {@linkcode entryMethod} and {@linkcode entryParams} then read it. `entry`
 * is the index within a BATCH, or -1 for the single entry of a call; the
 * error text is only built on failure.
 */
function callEntryEnd(p: Uint8Array, o: number, entry: number): number {
  if (p.length - o < 2) throw badEntry(entry, "methodLen overruns the payload");
  const methodLen = u16(p, o);
  if (methodLen === 0) throw badEntry(entry, "method name is empty");
  const paramsAt = o + 2 + methodLen;
  if (paramsAt + 4 > p.length) {
    throw badEntry(entry, `method of '${methodLen}' bytes overruns the payload`);
  }
  const paramsLen = u32(p, paramsAt);
  const end = paramsAt + 4 + paramsLen;
  if (end > p.length) {
    throw badEntry(entry, `params of '${paramsLen}' bytes overrun the payload`);
  }
  return end;
}

function badEntry(entry: number, what: string): StreamwireError {
  return malformed(`${entry < 0 ? "Call entry" : `BATCH entry ${entry}`}: ${what}`);
}

/** The method of the (checked) call entry at `o`. */
function entryMethod(p: Uint8Array, o: number): string {
  return methodText(p, o + 2, o + 2 + u16(p, o));
}

/** The params of the (checked) call entry at `o` that ends at `end`. */
function entryParams(p: Uint8Array, o: number, end: number): Uint8Array {
  return p.subarray(o + 6 + u16(p, o), end);
}

/**
 * Method names repeat: decoded names are kept in a small direct-mapped cache
 * keyed by their bytes, so that a repeated name costs a hash and a compare
 * instead of a view and a new string. Bounded: 256 names of at most 64 bytes,
 * whatever a peer sends.
 */
const METHOD_CACHE_SLOTS = 256;
const METHOD_CACHE_MAX_BYTES = 64;
const methodKeys: (Uint8Array | undefined)[] = new Array(METHOD_CACHE_SLOTS).fill(undefined);
const methodNames: string[] = new Array(METHOD_CACHE_SLOTS).fill("");

function methodText(p: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n > METHOD_CACHE_MAX_BYTES) return text(p.subarray(start, end), "method");
  let h = 0x811c9dc5 ^ n; // FNV-1a
  for (let i = start; i < end; i++) h = Math.imul(h ^ p[i], 0x01000193);
  const slot = (h ^ (h >>> 16)) & (METHOD_CACHE_SLOTS - 1);
  const key = methodKeys[slot];
  if (key !== undefined && key.length === n) {
    let i = 0;
    while (i < n && key[i] === p[start + i]) i++;
    if (i === n) return methodNames[slot];
  }
  // A copy: the key must neither pin the read buffer nor see it reused.
  const bytes = p.slice(start, end);
  const name = text(bytes, "method");
  methodKeys[slot] = bytes;
  methodNames[slot] = name;
  return name;
}

function statusPayload(p: Uint8Array, what: string, optional: boolean): [number, string] {
  if (p.length === 0 && optional) return [Status.CANCELLED, ""];
  if (p.length < 2) throw malformed(`${what} payload of '${p.length}' bytes has no code`);
  return [u16(p, 0), text(p.subarray(2), `${what} message`)];
}

function countAt(p: Uint8Array, minEntry: number, what: string): number {
  if (p.length < 4) throw malformed(`${what} payload of '${p.length}' bytes has no count`);
  const count = u32(p, 0);
  // Each entry takes at least `minEntry` bytes: refuse counts the payload
  // cannot hold before allocating anything for them.
  if (count * minEntry > p.length - 4) {
    throw malformed(`${what} count '${count}' does not fit in '${p.length}' bytes`);
  }
  return count;
}

/** Options of {@linkcode decodeMessage}. */
export interface DecodeMessageOptions {
  /**
   * Most BATCH entries built. A BATCH declaring more is decoded without its
   * entries: `entries` is empty and `declared` holds the count. A 16 MiB
   * frame can declare over two million entries of 7 bytes each, hundreds of
   * megabytes as objects; past this limit none of them is allocated. Without
   * it, every entry the payload holds is built.
   *
   * @default {Infinity}
   */
  maxBatchEntries?: number;
}

/**
 * Decodes an (uncompressed) frame into a typed message.
 *
 * @param frame A frame whose compression bits are 0.
 * @param options Bound on the BATCH entries built.
 * @returns The message; byte fields are views into `frame.body`.
 * @throws {StreamwireError} `invalid_argument` for a malformed body.
 *
 * @example Usage
 * ```ts
 * import { decodeMessage, encodeMessage, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeMessage({
 *   type: FrameType.REQUEST,
 *   seq: 7,
 *   method: "add",
 *   params: new TextEncoder().encode("[2,40]"),
 * });
 * const message = decodeMessage(frame);
 * assert.equal(message.type, FrameType.REQUEST);
 * assert.equal(message.type === FrameType.REQUEST && message.method, "add");
 * ```
 *
 * @example A BATCH over the limit is decoded from its count alone
 * ```ts
 * import { decodeMessage, encodeMessage, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const entries = Array.from({ length: 3 }, () => ({ method: "m", params: new Uint8Array(0) }));
 * const frame = encodeMessage({ type: FrameType.BATCH, seq: 1, entries });
 * const message = decodeMessage(frame, { maxBatchEntries: 2 });
 * assert.deepEqual(message, { type: FrameType.BATCH, seq: 1, entries: [], declared: 3 });
 * ```
 */
export function decodeMessage(frame: Frame, options?: DecodeMessageOptions): Message {
  const { type, seq, flags } = frame;
  if (flags & Flag.COMPRESSION_MASK) {
    throw new StreamwireError(
      Status.INTERNAL,
      `Frame seq '${seq}' is still compressed: decompress before decoding`,
    );
  }
  let p = frame.body;
  let ext: Extensions | undefined;
  if (flags & Flag.EXT) {
    const split = splitBody(flags, p);
    ext = decodeExtensions(split.ext!);
    p = split.payload;
  }
  let message: Message;
  switch (type) {
    case FrameType.REQUEST:
    case FrameType.NOTIFY:
    case FrameType.BROADCAST:
    case FrameType.OPEN: {
      const end = callEntryEnd(p, 0, -1);
      if (end !== p.length) {
        throw malformed(`Call entry leaves '${p.length - end}' trailing bytes`);
      }
      message = { type, seq, method: entryMethod(p, 0), params: entryParams(p, 0, end) };
      break;
    }
    case FrameType.RESPONSE:
    case FrameType.DATA:
      message = { type, seq, data: p };
      break;
    case FrameType.BATCH: {
      const count = countAt(p, 6, "BATCH");
      const max = options?.maxBatchEntries;
      if (max !== undefined && count > max) {
        // Checked entry by entry, nothing built: the count is what the receiver refuses.
        let o = 4;
        for (let i = 0; i < count; i++) o = callEntryEnd(p, o, i);
        if (o !== p.length) throw malformed(`BATCH leaves '${p.length - o}' trailing bytes`);
        message = { type, seq, entries: [], declared: count };
        break;
      }
      const entries: CallEntry[] = new Array(count);
      let o = 4;
      for (let i = 0; i < count; i++) {
        const end = callEntryEnd(p, o, i);
        entries[i] = { method: entryMethod(p, o), params: entryParams(p, o, end) };
        o = end;
      }
      if (o !== p.length) throw malformed(`BATCH leaves '${p.length - o}' trailing bytes`);
      message = { type, seq, entries };
      break;
    }
    case FrameType.BATCH_RESULT: {
      const count = countAt(p, 6, "BATCH_RESULT");
      const results: BatchResultEntry[] = new Array(count);
      let o = 4;
      for (let i = 0; i < count; i++) {
        if (p.length - o < 6) throw malformed(`BATCH_RESULT entry ${i} overruns the payload`);
        const len = u32(p, o + 2);
        const end = o + 6 + len;
        if (end > p.length) {
          throw malformed(`BATCH_RESULT entry ${i} of '${len}' bytes overruns the payload`);
        }
        results[i] = { code: u16(p, o), data: p.subarray(o + 6, end) };
        o = end;
      }
      if (o !== p.length) throw malformed(`BATCH_RESULT leaves '${p.length - o}' trailing bytes`);
      message = { type, seq, results };
      break;
    }
    case FrameType.HELLO:
      message = { type, seq, hello: json(p, "HELLO payload") };
      break;
    case FrameType.HELLO_ACK:
      message = { type, seq, ack: json(p, "HELLO_ACK payload") };
      break;
    case FrameType.PING:
    case FrameType.PONG:
      if (p.length > MAX_PING_PAYLOAD) {
        throw malformed(`PING payload of '${p.length}' bytes exceeds '${MAX_PING_PAYLOAD}'`);
      }
      message = { type, seq, payload: p };
      break;
    case FrameType.GOAWAY:
      if (p.length < 6) throw malformed(`GOAWAY payload of '${p.length}' bytes is too short`);
      message = {
        type,
        seq,
        code: u16(p, 0),
        lastId: u32(p, 2),
        reason: text(p.subarray(6), "GOAWAY reason"),
      };
      break;
    case FrameType.END:
      if (p.length !== 0) throw malformed(`END carries '${p.length}' payload bytes`);
      message = { type, seq };
      break;
    case FrameType.CANCEL:
    case FrameType.ERROR: {
      const [code, msg] = statusPayload(
        p,
        type === FrameType.CANCEL ? "CANCEL" : "ERROR",
        type === FrameType.CANCEL,
      );
      message = { type, seq, code, message: msg };
      break;
    }
    case FrameType.CREDIT:
      if (p.length !== 4) throw malformed(`CREDIT payload has '${p.length}' bytes, expected '4'`);
      message = { type, seq, credit: u32(p, 0) };
      break;
    default:
      throw new StreamwireError(
        Status.UNIMPLEMENTED,
        `Unknown frame type '0x${type.toString(16).padStart(2, "0")}'`,
      );
  }
  if (ext !== undefined) message.ext = ext;
  return message;
}
