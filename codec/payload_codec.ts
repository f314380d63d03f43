/**
 * Payload codecs of PROTOCOL.md 4: the value encodings negotiated in the
 * handshake for params, results and DATA (`json`, `msgpack`, `cbor`, `raw`).
 *
 * Every codec follows the same rules:
 *
 * - **Errors**: undecodable bytes and unencodable values throw
 *   {@linkcode StreamwireError} with code `INVALID_ARGUMENT` (3, a malformed
 *   payload in PROTOCOL.md 6), quoting the codec name and the reason. No other
 *   exception type escapes `encode` or `decode`.
 * - **Absent values**: `undefined` encodes as empty bytes and empty bytes
 *   decode as `undefined`, so a void result or a NOTIFY without params costs
 *   no payload; `null` keeps its explicit encoding (`null`, `c0`, `f6`).
 *   `raw` is bytes in, bytes out: `undefined` encodes as empty bytes too, but
 *   empty bytes decode as an empty `Uint8Array`.
 * - **Encode output**: the codec never writes to a returned array again, so it
 *   may be kept, queued and even modified. It may share its `ArrayBuffer` with
 *   other outputs (msgpack and cbor write into reused 8 KiB slabs, because
 *   allocating an `ArrayBuffer` per payload costs more than encoding it): use
 *   `byteOffset`/`byteLength`, never transfer or detach `.buffer`, and
 *   `slice()` a copy when an exclusively owned buffer is needed. `json`
 *   returns a fresh array; `raw` returns the array it was given.
 * - **Decode input**: its bytes are never modified and the codec keeps no
 *   reference to it once `decode` returns. Byte strings inside decoded
 *   values (msgpack `bin`, cbor byte strings, the `raw` result itself) are
 *   views of the input, not copies: keep the input unchanged while they are
 *   in use.
 *
 * @module
 */

// The `pack` and `encode` subpaths load the pure-JS builds: the main entry
// points probe for native add-ons and need environment permissions to load.
import * as msgpackr from "msgpackr/pack";
import type { Options as MsgpackOptions } from "msgpackr";
import { Encoder as CborEncoder } from "cbor-x/encode";
import type { Options as CborOptions } from "cbor-x";
import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";

const { Packr } = msgpackr;
/** msgpackr's marker for the never-used 0xC1 byte (present at run time, absent from its types). */
const C1 = (msgpackr as unknown as { C1: unknown }).C1;

/** Codec names used in the handshake (PROTOCOL.md 4). */
export type CodecName = "json" | "msgpack" | "cbor" | "raw";

/**
 * A payload encoding: turns values into bytes and back.
 *
 * @example Usage
 * ```ts
 * import { getCodec, type PayloadCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const codec: PayloadCodec = getCodec("msgpack");
 * assert.deepEqual(codec.decode(codec.encode({ ok: true })), { ok: true });
 * ```
 */
export interface PayloadCodec {
  /** The handshake name. */
  readonly name: CodecName;
  /**
   * Encodes a value.
   *
   * @param value The value; `undefined` encodes as empty bytes.
   * @returns The payload, never written to again by the codec.
   */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes a payload.
   *
   * @param bytes The whole payload; trailing bytes are an error.
   * @returns The value; empty bytes decode as `undefined` (`raw`: as themselves).
   */
  decode(bytes: Uint8Array): unknown;
}

/** Shared result of encoding `undefined`: an empty array has nothing to overwrite. */
const EMPTY = new Uint8Array(0);
/** Longest library message quoted in an error, so payload excerpts stay short. */
const MAX_REASON = 160;

function reasonOf(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? error.message : String(error);
  } catch {
    text = "unprintable error";
  }
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}...` : text;
}

function encodeError(codec: CodecName, error: unknown): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Cannot encode value as '${codec}': ${reasonOf(error)}`,
    { cause: error },
  );
}

function decodeError(codec: CodecName, bytes: Uint8Array, error: unknown): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Cannot decode '${codec}' payload of '${bytes.length}' bytes: ${reasonOf(error)}`,
    { cause: error },
  );
}

/**
 * Re-wraps a library output (a Node `Buffer` under Deno) as a plain
 * `Uint8Array` view: `Buffer#slice` returns a view, not a copy, which would
 * break the "`slice()` to copy" advice, and `Buffer`s fail `deepStrictEqual`
 * against `Uint8Array`s. A view costs no copy and no `ArrayBuffer`.
 */
function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const textEncoder = new TextEncoder();
// fatal: invalid UTF-8 is a malformed payload, not text to repair.
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * UTF-8 JSON (RFC 8259). Values go through `JSON.stringify`, so `toJSON` is
 * honoured, `undefined` members are dropped and `NaN` becomes `null`; a
 * `BigInt`, a cycle or a top-level function throws `INVALID_ARGUMENT`.
 * Decoding rejects invalid UTF-8.
 *
 * @example Usage
 * ```ts
 * import { jsonCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = jsonCodec.encode({ a: 1 });
 * assert.equal(new TextDecoder().decode(bytes), '{"a":1}');
 * assert.deepEqual(jsonCodec.decode(bytes), { a: 1 });
 * assert.throws(() => jsonCodec.encode(1n), { name: "StreamwireError", code: 3 });
 * ```
 */
export const jsonCodec: PayloadCodec = Object.freeze(
  {
    name: "json",
    encode(value: unknown): Uint8Array {
      if (value === undefined) return EMPTY;
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (error) {
        throw encodeError("json", error);
      }
      if (text === undefined) {
        throw encodeError("json", `JSON has no encoding for '${typeof value}'`);
      }
      return textEncoder.encode(text);
    },
    decode(bytes: Uint8Array): unknown {
      if (bytes.length === 0) return undefined;
      try {
        return JSON.parse(textDecoder.decode(bytes));
      } catch (error) {
        throw decodeError("json", bytes, error);
      }
    },
  } as const,
);

/**
 * msgpackr settings that any MessagePack implementation can read (measured
 * in `payload_codec_bench.ts`):
 * - `useRecords: false`: plain maps, not msgpackr's record extension `0x72`.
 * - `variableMapSize: true`: the shortest map header (`81` for one key, as
 *   other encoders write), 5-10% slower than msgpackr's fixed `map16`.
 * - `encodeUndefinedAsNil: true`: `nil`, not msgpackr's private `d4 00 00`.
 * - `mapsAsObjects: true`: maps decode as plain objects, like JSON.
 * - `int64AsType: "auto"`: `int 64`/`uint 64` from other encoders decode as
 *   numbers when within 2^53, as `BigInt` only beyond.
 * msgpackr's types omit `"auto"`, hence the cast.
 */
const MSGPACK_OPTIONS = {
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  int64AsType: "auto",
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
  copyBuffers: false,
} as unknown as MsgpackOptions;

const packr = new Packr(MSGPACK_OPTIONS);

/**
 * Byte arrays are the most common RPC payload and msgpackr's general path
 * costs about 270 ns for one (codec/payload_codec_bench.ts): they are
 * written here directly, as `bin 8/16/32` exactly as msgpackr writes them,
 * into a shared slab like msgpackr's own, so a small value costs no
 * allocation of its own. Values of 1 KiB or more get a buffer of their own.
 */
const SLAB_SIZE = 8192;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

function packBytes(value: Uint8Array): Uint8Array {
  const n = value.length;
  const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const size = head + n;
  let out: Uint8Array;
  if (size >= 1024) out = new Uint8Array(size);
  else out = slabTake(size);
  if (head === 2) {
    out[0] = 0xc4;
    out[1] = n;
  } else if (head === 3) {
    out[0] = 0xc5;
    out[1] = n >>> 8;
    out[2] = n;
  } else {
    out[0] = 0xc6;
    out[1] = n >>> 24;
    out[2] = n >>> 16;
    out[3] = n >>> 8;
    out[4] = n;
  }
  out.set(value, head);
  return out;
}

/** Takes `size` bytes of the slab. */
function slabTake(size: number): Uint8Array {
  if (slabUsed + size > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  return out;
}

const utf8Into = new TextEncoder();

/**
 * Scalars and short strings, written directly with the same encodings
 * msgpackr picks (the shortest integer of 32 bits or fewer; `fixstr`/`str 8`),
 * or undefined for anything else, which msgpackr then encodes.
 */
function packScalar(value: unknown): Uint8Array | undefined {
  switch (typeof value) {
    case "number": {
      const n = value;
      if (n >>> 0 === n) {
        if (n < 0x80) return slabTake(1).fill(n);
        if (n < 0x100) return write2(0xcc, n);
        if (n < 0x10000) return write3(0xcd, n);
        const out = slabTake(5);
        out[0] = 0xce;
        out[1] = n >>> 24;
        out[2] = n >>> 16;
        out[3] = n >>> 8;
        out[4] = n;
        return out;
      }
      if (n >> 0 === n) {
        if (n >= -32) return slabTake(1).fill(n & 0xff);
        if (n >= -128) return write2(0xd0, n & 0xff);
        if (n >= -32768) return write3(0xd1, n & 0xffff);
        const out = slabTake(5);
        out[0] = 0xd2;
        out[1] = n >>> 24;
        out[2] = n >>> 16;
        out[3] = n >>> 8;
        out[4] = n;
        return out;
      }
      return undefined;
    }
    case "boolean":
      return slabTake(1).fill(value ? 0xc3 : 0xc2);
    case "string": {
      // Up to 3 UTF-8 bytes per UTF-16 unit: room for any string of 85 units.
      if (value.length > 85) return undefined;
      const room = slabTake(2 + 3 * value.length);
      const { written } = utf8Into.encodeInto(value, room.subarray(2));
      slabUsed -= 3 * value.length - written;
      if (written < 32) {
        room[1] = 0xa0 | written;
        return room.subarray(1, 2 + written);
      }
      room[0] = 0xd9;
      room[1] = written;
      return room.subarray(0, 2 + written);
    }
    case "object":
      if (value === null) return slabTake(1).fill(0xc0);
  }
  return undefined;
}

function write2(tag: number, n: number): Uint8Array {
  const out = slabTake(2);
  out[0] = tag;
  out[1] = n;
  return out;
}

function write3(tag: number, n: number): Uint8Array {
  const out = slabTake(3);
  out[0] = tag;
  out[1] = n >>> 8;
  out[2] = n;
  return out;
}

/** A `bin 8/16/32` that is the whole payload, as a view; undefined for anything else. */
function unpackBytes(bytes: Uint8Array): Uint8Array | undefined {
  const tag = bytes[0];
  let head: number, n: number;
  if (tag === 0xc4) {
    head = 2;
    n = bytes[1];
  } else if (tag === 0xc5) {
    head = 3;
    n = (bytes[1] << 8) | bytes[2];
  } else if (tag === 0xc6) {
    head = 5;
    n = bytes[1] * 0x1000000 + ((bytes[2] << 16) | (bytes[3] << 8) | bytes[4]);
  } else return undefined;
  if (bytes.length !== head + n) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset + head, n);
}

/**
 * MessagePack, with settings any implementation can read: plain maps (no
 * msgpackr records), shortest headers, `undefined` members as `nil`. Byte
 * arrays encode as `bin`, `Date`s as the timestamp extension, `BigInt`s up to
 * 64 bits as `int 64`. Decoding yields plain objects; 64-bit integers decode
 * as numbers when exact, else `BigInt`; a `__proto__` key decodes as
 * `__proto_` (msgpackr's guard against prototype pollution).
 *
 * @example Usage
 * ```ts
 * import { msgpackCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = msgpackCodec.encode({ a: 1 });
 * assert.deepEqual([...bytes], [0x81, 0xa1, 0x61, 0x01]);
 * assert.deepEqual(msgpackCodec.decode(bytes), { a: 1 });
 * assert.throws(() => msgpackCodec.decode(bytes.subarray(0, 2)), { code: 3 });
 * ```
 */
export const msgpackCodec: PayloadCodec = Object.freeze(
  {
    name: "msgpack",
    encode(value: unknown): Uint8Array {
      if (value === undefined) return EMPTY;
      if (value instanceof Uint8Array && value.length <= 0xffffffff) return packBytes(value);
      const scalar = packScalar(value);
      if (scalar !== undefined) return scalar;
      try {
        // pack() returns a view of its current slab and never rewinds into it.
        return plainView(packr.pack(value));
      } catch (error) {
        throw encodeError("msgpack", error);
      }
    },
    decode(bytes: Uint8Array): unknown {
      if (bytes.length === 0) return undefined;
      const view = unpackBytes(bytes);
      if (view !== undefined) return view;
      let value: unknown;
      try {
        value = packr.unpack(bytes);
      } catch (error) {
        throw decodeError("msgpack", bytes, error);
      }
      // msgpackr returns a marker object for the never-used byte 0xc1; only a
      // top-level one is caught here, a nested one stays an opaque object.
      if (value === C1) {
        throw decodeError("msgpack", bytes, "byte '0xc1' is never used");
      }
      return value;
    },
  } as const,
);

/**
 * cbor-x settings for plain RFC 8949 CBOR (measured in
 * `payload_codec_bench.ts`):
 * - `useRecords: false`: plain maps, not cbor-x's record tag 105.
 * - `variableMapSize: true`: the shortest map header (`a1` for one key), at
 *   no measurable cost.
 * - `tagUint8Array: false`: a byte string, not tag 64 (cbor-x tags them by
 *   default whenever Node's `Buffer` exists, as under Deno).
 * - `useTag259ForMaps: false`: a `Map` is a plain map, not tag 259.
 * - `mapsAsObjects: true`: maps decode as plain objects, like JSON.
 * - `int64AsNumber: true`: 8-byte integers (other encoders use them from
 *   2^32 on, such as millisecond timestamps) decode as numbers like JSON
 *   would, not `BigInt`; cbor-x has no exact-when-possible mode.
 * `useTag259ForMaps` and `int64AsNumber` are read by cbor-x but missing from
 * its types, hence the cast.
 */
const CBOR_OPTIONS = {
  useRecords: false,
  variableMapSize: true,
  tagUint8Array: false,
  useTag259ForMaps: false,
  mapsAsObjects: true,
  int64AsNumber: true,
  pack: false,
  bundleStrings: false,
  structuredClone: false,
  copyBuffers: false,
} as CborOptions;

const cbor = new CborEncoder(CBOR_OPTIONS);

/**
 * CBOR (RFC 8949) with plain maps and byte strings, readable by any
 * implementation. `undefined` members encode as CBOR `undefined` (`f7`),
 * `Date`s as tag 1, `BigInt`s as integers or bignum tags 2/3. Decoding yields
 * plain objects; integers of 8 bytes decode as numbers; a `__proto__` key
 * decodes as `__proto_` (cbor-x's guard against prototype pollution).
 *
 * @example Usage
 * ```ts
 * import { cborCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = cborCodec.encode({ a: 1 });
 * assert.deepEqual([...bytes], [0xa1, 0x61, 0x61, 0x01]);
 * assert.deepEqual(cborCodec.decode(bytes), { a: 1 });
 * assert.throws(() => cborCodec.decode(new Uint8Array([0xff])), { code: 3 });
 * ```
 */
export const cborCodec: PayloadCodec = Object.freeze(
  {
    name: "cbor",
    encode(value: unknown): Uint8Array {
      if (value === undefined) return EMPTY;
      try {
        // encode() returns a view of its current slab and never rewinds into it.
        return plainView(cbor.encode(value));
      } catch (error) {
        throw encodeError("cbor", error);
      }
    },
    decode(bytes: Uint8Array): unknown {
      if (bytes.length === 0) return undefined;
      try {
        return cbor.decode(bytes);
      } catch (error) {
        throw decodeError("cbor", bytes, error);
      }
    },
  } as const,
);

/**
 * Opaque bytes: `encode` takes a `Uint8Array` (or `undefined`, as empty
 * bytes) and returns it unchanged; anything else throws `INVALID_ARGUMENT`.
 * `decode` returns its input, so empty bytes decode as an empty array.
 *
 * @example Usage
 * ```ts
 * import { rawCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([1, 2, 3]);
 * assert.equal(rawCodec.encode(bytes), bytes);
 * assert.equal(rawCodec.decode(bytes), bytes);
 * assert.throws(() => rawCodec.encode("text"), { name: "StreamwireError", code: 3 });
 * ```
 */
export const rawCodec: PayloadCodec = Object.freeze(
  {
    name: "raw",
    encode(value: unknown): Uint8Array {
      if (value instanceof Uint8Array) return value;
      if (value === undefined) return EMPTY;
      const kind = Object.prototype.toString.call(value).slice(8, -1);
      throw encodeError("raw", `expected a Uint8Array, got '${kind}'`);
    },
    decode(bytes: Uint8Array): unknown {
      return bytes;
    },
  } as const,
);

/**
 * The codecs by handshake name.
 *
 * @example Usage
 * ```ts
 * import { CODECS } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(Object.keys(CODECS).sort(), ["cbor", "json", "msgpack", "raw"]);
 * assert.equal(CODECS.cbor.name, "cbor");
 * ```
 */
export const CODECS: Readonly<Record<CodecName, PayloadCodec>> = Object.freeze({
  json: jsonCodec,
  msgpack: msgpackCodec,
  cbor: cborCodec,
  raw: rawCodec,
});

/**
 * The codecs a client offers in HELLO, most preferred first (PROTOCOL.md 4):
 * compact binary encodings before JSON, opaque bytes last.
 *
 * @example Usage
 * ```ts
 * import { DEFAULT_CODEC_PREFERENCE } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(DEFAULT_CODEC_PREFERENCE, ["msgpack", "cbor", "json", "raw"]);
 * ```
 */
export const DEFAULT_CODEC_PREFERENCE: readonly CodecName[] = Object.freeze([
  "msgpack",
  "cbor",
  "json",
  "raw",
]);

/**
 * Whether `name` is a codec of PROTOCOL.md 4, such as a name from a peer's
 * HELLO.
 *
 * @param name Any string.
 * @returns `true` for `json`, `msgpack`, `cbor` and `raw`.
 *
 * @example Usage
 * ```ts
 * import { isCodecName } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isCodecName("cbor"), true);
 * assert.equal(isCodecName("toString"), false);
 * ```
 */
export function isCodecName(name: string): name is CodecName {
  return Object.hasOwn(CODECS, name);
}

/**
 * Looks up a codec by handshake name.
 *
 * @param name A codec name.
 * @returns The codec.
 * @throws {StreamwireError} `INVALID_ARGUMENT` for an unknown name.
 *
 * @example Usage
 * ```ts
 * import { getCodec } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(getCodec("json").name, "json");
 * assert.throws(() => getCodec("yaml"), { name: "StreamwireError", code: 3 });
 * ```
 */
export function getCodec(name: string): PayloadCodec {
  if (isCodecName(name)) return CODECS[name];
  throw new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Unknown codec '${name}', expected one of '${DEFAULT_CODEC_PREFERENCE.join("', '")}'`,
  );
}
