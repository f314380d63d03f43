/**
 * Messages as JSON objects and back: the NDJSON form of `streamwire encode`,
 * `decode` and `capture --json` (docs/CLI_FRAMES.md).
 *
 * The form is canonical: keys come in a fixed order (`type`, `seq`, the
 * type's fields in wire order, then `ext`), so the JSON of a decoded frame
 * is the same text whatever produced the frame.
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { BatchResultEntry, CallEntry, Extensions, Message } from "../codec/message.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";

/** Options of {@linkcode messageToJson} and {@linkcode messageFromJson}. */
export interface MessageJsonOptions {
  /**
   * Codec of params, results and DATA. With one, payloads are JSON values
   * under `params`, `data` (decoded or encoded with it); without one, or for
   * a payload that does not decode to a plain JSON value (MessagePack `bin`,
   * a 64-bit integer, bytes that are not the codec's), they are lowercase
   * hex under `paramsHex`, `dataHex`.
   *
   * @default {undefined}
   */
  codec?: PayloadCodec;
}

const TYPE_NAMES = new Map<number, string>(
  Object.entries(FrameType).map(([name, code]) => [code, name]),
);

/** Keys `capture --json` adds to each line; {@linkcode messageFromJson} accepts and ignores them. */
const ANNOTATIONS = ["conn", "dir", "offset"] as const;

/** Keys each type may have besides `type`, `seq`, `ext` and the annotations. */
const FIELDS: Record<number, readonly string[]> = {
  [FrameType.HELLO]: ["hello"],
  [FrameType.HELLO_ACK]: ["ack"],
  [FrameType.PING]: ["payloadHex"],
  [FrameType.PONG]: ["payloadHex"],
  [FrameType.GOAWAY]: ["code", "lastId", "reason"],
  [FrameType.REQUEST]: ["method", "params", "paramsHex"],
  [FrameType.NOTIFY]: ["method", "params", "paramsHex"],
  [FrameType.BROADCAST]: ["method", "params", "paramsHex"],
  [FrameType.OPEN]: ["method", "params", "paramsHex"],
  [FrameType.RESPONSE]: ["data", "dataHex"],
  [FrameType.DATA]: ["data", "dataHex"],
  [FrameType.BATCH]: ["entries"],
  [FrameType.BATCH_RESULT]: ["results"],
  [FrameType.END]: [],
  [FrameType.CANCEL]: ["code", "message"],
  [FrameType.ERROR]: ["code", "message"],
  [FrameType.CREDIT]: ["credit"],
};
const KNOWN: Record<number, Set<string>> = Object.fromEntries(
  Object.entries(FIELDS).map((
    [type, keys],
  ) => [type, new Set(["type", "seq", "ext", ...ANNOTATIONS, ...keys])]),
);
const ENTRY_KEYS = new Set(["method", "params", "paramsHex"]);
const RESULT_KEYS = new Set(["code", "data", "dataHex", "message"]);
const EXT_KEYS = new Set(["traceparent", "tracestate", "timeoutMs", "metadata"]);

const EMPTY = new Uint8Array(0);
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const UTF8_ENCODER = new TextEncoder();

// ---------------------------------------------------------------------------
// To JSON

/**
 * A message as a JSON-friendly object in canonical key order: `type` by
 * name, `seq`, the type's fields in wire order, `ext` last. Bytes are
 * lowercase hex under a `Hex`-suffixed key, or JSON values when a codec is
 * given; an empty payload is `""` in hex and left out with a codec. A failed
 * BATCH_RESULT entry carries its UTF-8 `message`.
 *
 * @param message Any message.
 * @param options The payload codec.
 * @returns A plain object for `JSON.stringify`.
 *
 * @example Bytes as hex
 * ```ts
 * import { messageToJson } from "@streamwire/streamwire/cli";
 * import { FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const json = messageToJson({ type: FrameType.CREDIT, seq: 3, credit: 64 });
 * assert.deepEqual(json, { type: "CREDIT", seq: 3, credit: 64 });
 * const request = { type: FrameType.REQUEST, seq: 1, method: "add", params: Uint8Array.of(0x92, 2, 40) } as const;
 * assert.equal(JSON.stringify(messageToJson(request)), '{"type":"REQUEST","seq":1,"method":"add","paramsHex":"920228"}');
 * ```
 *
 * @example Payloads as values of a codec
 * ```ts
 * import { messageToJson } from "@streamwire/streamwire/cli";
 * import { FrameType, msgpackCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const request = { type: FrameType.REQUEST, seq: 1, method: "add", params: Uint8Array.of(0x92, 2, 40) } as const;
 * assert.deepEqual(messageToJson(request, { codec: msgpackCodec }), {
 *   type: "REQUEST",
 *   seq: 1,
 *   method: "add",
 *   params: [2, 40],
 * });
 * ```
 */
export function messageToJson(
  message: Message,
  options: MessageJsonOptions = {},
): Record<string, unknown> {
  const codec = options.codec;
  const out: Record<string, unknown> = { type: TYPE_NAMES.get(message.type), seq: message.seq };
  switch (message.type) {
    case FrameType.HELLO:
      out.hello = message.hello;
      break;
    case FrameType.HELLO_ACK:
      out.ack = message.ack;
      break;
    case FrameType.PING:
    case FrameType.PONG:
      out.payloadHex = message.payload.toHex();
      break;
    case FrameType.GOAWAY:
      out.code = message.code;
      out.lastId = message.lastId;
      out.reason = message.reason;
      break;
    case FrameType.REQUEST:
    case FrameType.NOTIFY:
    case FrameType.BROADCAST:
    case FrameType.OPEN:
      out.method = message.method;
      putPayload(out, "params", message.params, codec);
      break;
    case FrameType.RESPONSE:
    case FrameType.DATA:
      putPayload(out, "data", message.data, codec);
      break;
    case FrameType.BATCH:
      out.entries = message.entries.map((entry) => {
        const e: Record<string, unknown> = { method: entry.method };
        putPayload(e, "params", entry.params, codec);
        return e;
      });
      break;
    case FrameType.BATCH_RESULT:
      out.results = message.results.map((result) => {
        const r: Record<string, unknown> = { code: result.code };
        const text = result.code === 0 ? undefined : utf8(result.data);
        if (text !== undefined) r.message = text;
        else putPayload(r, "data", result.data, codec);
        return r;
      });
      break;
    case FrameType.END:
      break;
    case FrameType.CANCEL:
    case FrameType.ERROR:
      out.code = message.code;
      out.message = message.message;
      break;
    case FrameType.CREDIT:
      out.credit = message.credit;
      break;
  }
  if (message.ext !== undefined) out.ext = extToJson(message.ext);
  return out;
}

function putPayload(
  out: Record<string, unknown>,
  key: string,
  bytes: Uint8Array,
  codec: PayloadCodec | undefined,
): void {
  if (codec !== undefined) {
    if (bytes.length === 0) return;
    let value: unknown;
    try {
      value = codec.decode(bytes);
    } catch {
      value = undefined;
    }
    if (isJsonValue(value, 0)) {
      out[key] = value;
      return;
    }
  }
  out[`${key}Hex`] = bytes.toHex();
}

/** Deepest nesting printed as a value; deeper payloads are kept as hex. */
const MAX_DEPTH = 64;

/** Whether `value` prints as JSON and parses back to an equal value. */
function isJsonValue(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object": {
      if (value === null) return true;
      if (depth >= MAX_DEPTH) return false;
      if (Array.isArray(value)) {
        for (const item of value) if (!isJsonValue(item, depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

function extToJson(ext: Extensions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (ext.traceparent !== undefined) out.traceparent = ext.traceparent;
  if (ext.tracestate !== undefined) out.tracestate = ext.tracestate;
  if (ext.timeoutMs !== undefined) out.timeoutMs = ext.timeoutMs;
  // No entry on the wire: an empty list reads back as none.
  if (ext.metadata !== undefined && ext.metadata.length > 0) out.metadata = ext.metadata;
  return out;
}

// ---------------------------------------------------------------------------
// From JSON

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(
  object: Record<string, unknown>,
  known: Set<string>,
  where: string,
  type: string,
): void {
  for (const key in object) {
    if (!known.has(key)) throw invalid(`Unknown key '${where}${key}' for type ${type}`);
  }
}

function integer(value: unknown, name: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`'${name}' must be an integer in 0..${max}, got '${show(value)}'`);
  }
  return value;
}

function string(value: unknown, name: string): string {
  if (typeof value !== "string") throw invalid(`'${name}' must be a string, got '${show(value)}'`);
  // A lone surrogate has no UTF-8 encoding: it would be replaced on the wire.
  if (!value.isWellFormed()) throw invalid(`'${name}' holds a lone UTF-16 surrogate`);
  return value;
}

function hex(value: unknown, name: string): Uint8Array {
  if (typeof value !== "string") {
    throw invalid(`'${name}' must be a hex string, got '${show(value)}'`);
  }
  try {
    return Uint8Array.fromHex(value);
  } catch {
    if (value.length % 2 !== 0) {
      throw invalid(`'${name}' has an odd number of hex digits ('${value.length}')`);
    }
    const at = value.search(/[^0-9a-fA-F]/);
    throw invalid(`'${name}' has a non-hex digit '${show(value[at]).slice(1, -1)}' at '${at}'`);
  }
}

/**
 * The payload under `key` (a JSON value, encoded with the codec) or
 * `key`Hex; empty bytes ("no value") when neither is given.
 */
function payload(
  object: Record<string, unknown>,
  key: string,
  where: string,
  codec: PayloadCodec | undefined,
): Uint8Array {
  const hexKey = `${key}Hex`;
  const value = object[key];
  const hexValue = object[hexKey];
  if (value !== undefined) {
    if (codec === undefined) {
      throw invalid(
        `'${where}${key}' is a value and needs a codec (--codec); give bytes as '${where}${hexKey}'`,
      );
    }
    if (hexValue !== undefined) {
      throw invalid(`Give '${where}${key}' or '${where}${hexKey}', not both`);
    }
    return codec.encode(value);
  }
  return hexValue === undefined ? EMPTY : hex(hexValue, where + hexKey);
}

function jsonObject(value: unknown, name: string): Record<string, unknown> {
  if (!isObject(value)) throw invalid(`'${name}' must be a JSON object, got '${show(value)}'`);
  return value;
}

function array(value: unknown, name: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(`'${name}' must be an array, got '${show(value)}'`);
  return value;
}

function required(object: Record<string, unknown>, key: string, type: string): unknown {
  const value = object[key];
  if (value === undefined) throw invalid(`${type} needs '${key}'`);
  return value;
}

function callEntry(
  object: Record<string, unknown>,
  where: string,
  type: string,
  codec: PayloadCodec | undefined,
): CallEntry {
  const method = object.method;
  if (method === undefined) throw invalid(`${type} needs '${where}method'`);
  return {
    method: string(method, `${where}method`),
    params: payload(object, "params", where, codec),
  };
}

function batchResult(value: unknown, where: string, codec: PayloadCodec | undefined) {
  const r = jsonObject(value, where.slice(0, -1));
  checkKeys(r, RESULT_KEYS, where, "BATCH_RESULT");
  const code = integer(required(r, "code", where.slice(0, -1)), `${where}code`, 0xffff);
  if (r.message !== undefined) {
    if (code === 0) throw invalid(`'${where}message' is for a failed result: 'code' is 0`);
    if (r.data !== undefined || r.dataHex !== undefined) {
      throw invalid(`Give '${where}message' or '${where}data', not both`);
    }
    return { code, data: UTF8_ENCODER.encode(string(r.message, `${where}message`)) };
  }
  return { code, data: payload(r, "data", where, codec) } satisfies BatchResultEntry;
}

function extFromJson(value: unknown, type: string): Extensions {
  const object = jsonObject(value, "ext");
  checkKeys(object, EXT_KEYS, "ext.", type);
  const ext: Extensions = {};
  if (object.traceparent !== undefined) {
    ext.traceparent = string(object.traceparent, "ext.traceparent");
  }
  if (object.tracestate !== undefined) ext.tracestate = string(object.tracestate, "ext.tracestate");
  if (object.timeoutMs !== undefined) {
    ext.timeoutMs = integer(object.timeoutMs, "ext.timeoutMs", 0xffffffff);
  }
  if (object.metadata !== undefined) {
    ext.metadata = array(object.metadata, "ext.metadata").map((pair, i) => {
      const name = `ext.metadata[${i}]`;
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalid(`'${name}' must be a [name, value] pair, got '${show(pair)}'`);
      }
      return [string(pair[0], `${name}[0]`), string(pair[1], `${name}[1]`)];
    });
  }
  return ext;
}

/**
 * The inverse of {@linkcode messageToJson}, strict: an unknown key, a value
 * of the wrong type, a number out of its field's range, bad hex or a
 * missing required field (`method` of a call, `code` of ERROR and GOAWAY…)
 * is an error naming the key. `seq` defaults to 0, payloads to empty bytes,
 * texts to `""`. The annotations `capture --json` adds (`conn`, `dir`,
 * `offset`) are accepted and ignored, so that a capture can be replayed.
 * Lengths the wire limits (method names, extension entries, PING payloads)
 * are checked by `encodedBodySize` from `@streamwire/streamwire/codec`.
 *
 * @param json A parsed JSON value: an object with `type` (a name, or its
 *   number) and the type's fields.
 * @param options The payload codec of `params`, `data` values.
 * @returns The message.
 * @throws {StreamwireError} `invalid_argument`, with a message naming the key.
 *
 * @example Usage
 * ```ts
 * import { messageFromJson } from "@streamwire/streamwire/cli";
 * import { FrameType, jsonCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const message = messageFromJson({ type: "REQUEST", seq: 1, method: "echo", paramsHex: "c0" });
 * assert.equal(message.type, FrameType.REQUEST);
 * const add = messageFromJson({ type: "REQUEST", seq: 3, method: "add", params: [2, 40] }, {
 *   codec: jsonCodec,
 * });
 * assert.deepEqual(add.type === FrameType.REQUEST && add.params, new TextEncoder().encode("[2,40]"));
 * assert.throws(() => messageFromJson({ type: "REQUEST", seq: -1, method: "echo" }), {
 *   message: "'seq' must be an integer in 0..4294967295, got '-1'",
 * });
 * ```
 */
export function messageFromJson(json: unknown, options: MessageJsonOptions = {}): Message {
  if (!isObject(json)) throw invalid(`A message must be a JSON object, got '${show(json)}'`);
  const codec = options.codec;
  const name = json.type;
  let type: number | undefined;
  if (typeof name === "string") {
    type = Object.hasOwn(FrameType, name) ? FrameType[name as keyof typeof FrameType] : undefined;
  } else if (typeof name === "number" && TYPE_NAMES.has(name)) {
    type = name;
  } else if (name === undefined) {
    throw invalid("Missing 'type'");
  }
  if (type === undefined) {
    throw invalid(`Unknown frame type '${typeof name === "string" ? name : show(name)}'`);
  }
  const typeName = TYPE_NAMES.get(type)!;
  checkKeys(json, KNOWN[type], "", typeName);
  if (json.conn !== undefined) integer(json.conn, "conn", Number.MAX_SAFE_INTEGER);
  if (json.offset !== undefined) integer(json.offset, "offset", Number.MAX_SAFE_INTEGER);
  if (json.dir !== undefined && json.dir !== "c2s" && json.dir !== "s2c") {
    throw invalid(`'dir' must be 'c2s' or 's2c', got '${show(json.dir)}'`);
  }
  const seq = json.seq === undefined ? 0 : integer(json.seq, "seq", 0xffffffff);
  const text = (key: string) => json[key] === undefined ? "" : string(json[key], key);
  let message: Message;
  switch (type) {
    case FrameType.HELLO:
      message = { type, seq, hello: jsonObject(required(json, "hello", typeName), "hello") };
      break;
    case FrameType.HELLO_ACK:
      message = { type, seq, ack: jsonObject(required(json, "ack", typeName), "ack") };
      break;
    case FrameType.PING:
    case FrameType.PONG:
      message = {
        type,
        seq,
        payload: json.payloadHex === undefined ? EMPTY : hex(json.payloadHex, "payloadHex"),
      };
      break;
    case FrameType.GOAWAY:
      message = {
        type,
        seq,
        code: integer(required(json, "code", typeName), "code", 0xffff),
        lastId: integer(required(json, "lastId", typeName), "lastId", 0xffffffff),
        reason: text("reason"),
      };
      break;
    case FrameType.REQUEST:
    case FrameType.NOTIFY:
    case FrameType.BROADCAST:
    case FrameType.OPEN:
      message = { type, seq, ...callEntry(json, "", typeName, codec) };
      break;
    case FrameType.RESPONSE:
    case FrameType.DATA:
      message = { type, seq, data: payload(json, "data", "", codec) };
      break;
    case FrameType.BATCH:
      message = {
        type,
        seq,
        entries: array(required(json, "entries", typeName), "entries").map((entry, i) => {
          const where = `entries[${i}].`;
          const e = jsonObject(entry, `entries[${i}]`);
          checkKeys(e, ENTRY_KEYS, where, typeName);
          return callEntry(e, where, typeName, codec);
        }),
      };
      break;
    case FrameType.BATCH_RESULT:
      message = {
        type,
        seq,
        results: array(required(json, "results", typeName), "results").map((result, i) =>
          batchResult(result, `results[${i}].`, codec)
        ),
      };
      break;
    case FrameType.END:
      message = { type, seq };
      break;
    case FrameType.CANCEL:
    case FrameType.ERROR: {
      const code = json.code === undefined && type === FrameType.CANCEL
        ? Status.CANCELLED
        : integer(required(json, "code", typeName), "code", 0xffff);
      message = { type, seq, code, message: text("message") };
      break;
    }
    case FrameType.CREDIT:
      message = {
        type,
        seq,
        credit: integer(required(json, "credit", typeName), "credit", 0xffffffff),
      };
      break;
    default:
      throw invalid(`Unknown frame type '${show(name)}'`);
  }
  if (json.ext !== undefined) message.ext = extFromJson(json.ext, typeName);
  return message;
}
