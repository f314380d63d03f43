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
import * as msgpackrUnpack from "msgpackr/unpack";
import type { Options as MsgpackOptions } from "msgpackr";
import { Encoder as CborEncoder } from "cbor-x/encode";
import type { Options as CborOptions } from "cbor-x";
import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";
import { packBytes, packScalar, unpackBytes } from "./_msgpack_direct.ts";

const { Packr } = msgpackr;
/**
 * msgpackr's marker for the never-used 0xC1 byte (present at run time,
 * absent from its types). From the unpack module: under the browser
 * condition `msgpackr/pack` does not export it.
 */
const C1 = (msgpackrUnpack as unknown as { C1: unknown }).C1;

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
