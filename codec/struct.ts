/**
 * A zero-copy struct encoding in the spirit of Cap'n Proto: fixed-width
 * big-endian fields and length-prefixed strings and bytes, written into one
 * growing buffer by {@linkcode StructBuilder} and read back in the same order
 * by {@linkcode StructReader} without copying.
 *
 * Layout: fields follow each other with no padding and no tags. Integers and
 * floats are big-endian like the frame header (PROTOCOL.md 1); `bool` is one
 * byte, 0 or 1; `string` and `bytes` are a u32 byte length followed by the
 * bytes (UTF-8 for strings). Both sides must agree on the field order.
 *
 * Malformed input (a read past the end, a length prefix larger than what
 * remains, a bool byte other than 0 or 1, invalid UTF-8) throws a
 * {@linkcode StreamwireError} with code `INVALID_ARGUMENT` (3): PROTOCOL.md 6
 * uses 3 for a malformed payload, while `OUT_OF_RANGE` (11) is kept for
 * iterating past a valid end.
 *
 * @module
 */

import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";

/** Strings up to this many UTF-16 units are encoded by a JS loop when ASCII. */
const SHORT_STRING_ENCODE = 64;
/** Strings up to this many bytes are decoded by a JS loop when ASCII. */
const SHORT_STRING_DECODE = 32;
/** Largest length a u32 prefix can carry. */
const MAX_U32 = 0xffff_ffff;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MIN_I64 = -0x8000_0000_0000_0000n;
const MAX_I64 = 0x7fff_ffff_ffff_ffffn;

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is a malformed payload, not text to repair.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalidValue(kind: string, value: unknown): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Struct field value '${String(value)}' is not a valid '${kind}'`,
  );
}

/** Options of {@linkcode StructBuilder}. */
export interface StructBuilderOptions {
  /**
   * Bytes allocated up front. The buffer doubles whenever a write does not
   * fit, so this only saves the first few copies for large structs.
   *
   * @default {256}
   */
  initialCapacity?: number;
}

/**
 * Writes fields into one growing buffer; {@linkcode StructBuilder.finish}
 * returns a view of the written bytes without copying.
 *
 * A builder is meant to be reused: call {@linkcode StructBuilder.reset} and
 * write the next struct into the same buffer. The view returned by `finish()`
 * aliases that buffer, so copy it (`slice()`) before `reset()` when it must
 * outlive the next struct.
 *
 * Writes check their value: a number that does not fit the field (`300` for
 * `u8`, `1.5` for `u32`, `NaN`) throws `INVALID_ARGUMENT` instead of wrapping.
 *
 * @example Usage
 * ```ts
 * import { StructBuilder, StructReader } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const builder = new StructBuilder();
 * const bytes = builder.u32(7).string("ada").bool(true).finish();
 * assert.deepEqual([...bytes], [0, 0, 0, 7, 0, 0, 0, 3, 0x61, 0x64, 0x61, 1]);
 *
 * const reader = new StructReader(bytes);
 * assert.equal(reader.u32(), 7);
 * assert.equal(reader.string(), "ada");
 * assert.equal(reader.bool(), true);
 * reader.assertEnd();
 * ```
 */
export class StructBuilder {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  /**
   * Creates a builder with an empty buffer.
   *
   * @param options Initial capacity.
   */
  constructor(options: StructBuilderOptions = {}) {
    const capacity = options.initialCapacity ?? 256;
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Struct initialCapacity '${capacity}' is not a non-negative integer`,
      );
    }
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  /**
   * Bytes written since the last reset.
   *
   * @returns The length `finish()` would return.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructBuilder().u16(1).f64(0.5).length, 10);
   * ```
   */
  get length(): number {
    return this.#pos;
  }

  /**
   * Forgets the written bytes and keeps the buffer for the next struct.
   *
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const builder = new StructBuilder();
   * builder.u32(1);
   * assert.deepEqual([...builder.reset().u8(2).finish()], [2]);
   * ```
   */
  reset(): this {
    this.#pos = 0;
    return this;
  }

  /**
   * The bytes written since the last reset, as a view of the builder's buffer.
   *
   * @returns A view, valid until the next `reset()`; `slice()` it to keep it.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const builder = new StructBuilder();
   * const kept = builder.u8(1).finish().slice();
   * builder.reset().u8(2);
   * assert.deepEqual([...kept], [1]);
   * ```
   */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** Makes room for `size` more bytes and returns the write position. */
  #reserve(size: number): number {
    const pos = this.#pos;
    if (pos + size > this.#buf.length) this.#grow(pos + size);
    return pos;
  }

  #grow(needed: number): void {
    // Amortised doubling: n writes cost O(n) copies in total.
    const next = new Uint8Array(Math.max(needed, this.#buf.length * 2, 64));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /**
   * Writes an unsigned 8-bit integer.
   *
   * @param value An integer in 0..255.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().u8(255).finish()], [255]);
   * assert.throws(() => new StructBuilder().u8(256), { name: "StreamwireError", code: 3 });
   * ```
   */
  u8(value: number): this {
    if ((value & 0xff) !== value) throw invalidValue("u8", value);
    const pos = this.#reserve(1);
    this.#buf[pos] = value;
    this.#pos = pos + 1;
    return this;
  }

  /**
   * Writes an unsigned 16-bit integer, big-endian.
   *
   * @param value An integer in 0..65535.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().u16(0x0102).finish()], [1, 2]);
   * ```
   */
  u16(value: number): this {
    if ((value & 0xffff) !== value) throw invalidValue("u16", value);
    const pos = this.#reserve(2);
    this.#view.setUint16(pos, value);
    this.#pos = pos + 2;
    return this;
  }

  /**
   * Writes an unsigned 32-bit integer, big-endian.
   *
   * @param value An integer in 0..4294967295.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().u32(0x01020304).finish()], [1, 2, 3, 4]);
   * ```
   */
  u32(value: number): this {
    if (value >>> 0 !== value) throw invalidValue("u32", value);
    const pos = this.#reserve(4);
    this.#view.setUint32(pos, value);
    this.#pos = pos + 4;
    return this;
  }

  /**
   * Writes a signed 32-bit integer, big-endian two's complement.
   *
   * @param value An integer in -2147483648..2147483647.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().i32(-2).finish()], [0xff, 0xff, 0xff, 0xfe]);
   * ```
   */
  i32(value: number): this {
    if ((value | 0) !== value) throw invalidValue("i32", value);
    const pos = this.#reserve(4);
    this.#view.setInt32(pos, value);
    this.#pos = pos + 4;
    return this;
  }

  /**
   * Writes a 64-bit float, big-endian. Every JS number is exact here,
   * including integers up to 2^53 such as millisecond timestamps.
   *
   * @param value Any number.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().f64(1).finish()], [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
   * ```
   */
  f64(value: number): this {
    const pos = this.#reserve(8);
    this.#view.setFloat64(pos, value);
    this.#pos = pos + 8;
    return this;
  }

  /**
   * Writes an unsigned 64-bit integer, big-endian.
   *
   * @param value A bigint in 0..2^64-1.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().u64(258n).finish()], [0, 0, 0, 0, 0, 0, 1, 2]);
   * ```
   */
  u64(value: bigint): this {
    if (typeof value !== "bigint" || value < 0n || value > MAX_U64) {
      throw invalidValue("u64", value);
    }
    const pos = this.#reserve(8);
    this.#view.setBigUint64(pos, value);
    this.#pos = pos + 8;
    return this;
  }

  /**
   * Writes a signed 64-bit integer, big-endian two's complement.
   *
   * @param value A bigint in -2^63..2^63-1.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().i64(-1n).finish()], new Array(8).fill(0xff));
   * ```
   */
  i64(value: bigint): this {
    if (typeof value !== "bigint" || value < MIN_I64 || value > MAX_I64) {
      throw invalidValue("i64", value);
    }
    const pos = this.#reserve(8);
    this.#view.setBigInt64(pos, value);
    this.#pos = pos + 8;
    return this;
  }

  /**
   * Writes a boolean as one byte, 1 or 0.
   *
   * @param value The flag.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().bool(true).bool(false).finish()], [1, 0]);
   * ```
   */
  bool(value: boolean): this {
    const pos = this.#reserve(1);
    this.#buf[pos] = value ? 1 : 0;
    this.#pos = pos + 1;
    return this;
  }

  /**
   * Writes a string as a u32 byte length and its UTF-8 bytes. Lone
   * surrogates become U+FFFD, as with `TextEncoder`.
   *
   * @param value The text.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new StructBuilder().string("é").finish()], [0, 0, 0, 2, 0xc3, 0xa9]);
   * ```
   */
  string(value: string): this {
    const units = value.length;
    // UTF-8 needs at most 3 bytes per UTF-16 unit (a surrogate pair: 4 for 2).
    const pos = this.#reserve(4 + units * 3);
    const buf = this.#buf;
    const start = pos + 4;
    let end = start;
    let ascii = units <= SHORT_STRING_ENCODE;
    if (ascii) {
      for (let i = 0; i < units; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) {
          ascii = false;
          break;
        }
        buf[end++] = code;
      }
    }
    if (!ascii) end = start + encoder.encodeInto(value, buf.subarray(start)).written;
    const size = end - start;
    if (size > MAX_U32) throw invalidValue("string", `<${size} bytes>`);
    this.#view.setUint32(pos, size);
    this.#pos = end;
    return this;
  }

  /**
   * Writes bytes as a u32 length and a copy of them.
   *
   * @param value The bytes.
   * @returns This builder.
   *
   * @example Usage
   * ```ts
   * import { StructBuilder } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const bytes = new StructBuilder().bytes(new Uint8Array([9, 8])).finish();
   * assert.deepEqual([...bytes], [0, 0, 0, 2, 9, 8]);
   * ```
   */
  bytes(value: Uint8Array): this {
    const size = value.length;
    if (size > MAX_U32) throw invalidValue("bytes", `<${size} bytes>`);
    const pos = this.#reserve(4 + size);
    this.#view.setUint32(pos, size);
    this.#buf.set(value, pos + 4);
    this.#pos = pos + 4 + size;
    return this;
  }
}

const EMPTY = new Uint8Array(0);

// Scratch for 8-byte fields: reading them through a DataView would need one
// per input, and creating a DataView costs more than decoding a small struct.
const SCRATCH = new ArrayBuffer(8);
const SCRATCH_U8 = new Uint8Array(SCRATCH);
const SCRATCH_F64 = new Float64Array(SCRATCH);
const SCRATCH_U64 = new BigUint64Array(SCRATCH);
const SCRATCH_I64 = new BigInt64Array(SCRATCH);
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Copies the big-endian 8 bytes at `pos` into the scratch in host order. */
function loadScratch(bytes: Uint8Array, pos: number): void {
  if (LITTLE_ENDIAN_HOST) {
    SCRATCH_U8[0] = bytes[pos + 7];
    SCRATCH_U8[1] = bytes[pos + 6];
    SCRATCH_U8[2] = bytes[pos + 5];
    SCRATCH_U8[3] = bytes[pos + 4];
    SCRATCH_U8[4] = bytes[pos + 3];
    SCRATCH_U8[5] = bytes[pos + 2];
    SCRATCH_U8[6] = bytes[pos + 1];
    SCRATCH_U8[7] = bytes[pos];
  } else {
    for (let i = 0; i < 8; i++) SCRATCH_U8[i] = bytes[pos + i];
  }
}

/**
 * Reads the fields written by {@linkcode StructBuilder}, in the same order,
 * from a cursor over a byte array. Nothing is copied: `bytes()` returns a view
 * of the input, and short ASCII strings are decoded without `TextDecoder`.
 *
 * Every read is bounds-checked before it touches the input: reading past the
 * end, or a length prefix larger than what remains, throws
 * `StreamwireError` with code `INVALID_ARGUMENT` (3) quoting the offset and
 * the lengths, and allocates nothing for the declared length.
 *
 * The input must not change while values read from it are in use, since
 * `bytes()` results share its memory.
 *
 * @example Usage
 * ```ts
 * import { StructReader } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const reader = new StructReader(new Uint8Array([0, 0, 0, 2, 7, 8, 1]));
 * const bytes = reader.bytes();
 * assert.deepEqual([...bytes], [7, 8]);
 * assert.equal(reader.u8(), 1);
 * assert.throws(() => reader.u8(), { name: "StreamwireError", code: 3 });
 * ```
 */
export class StructReader {
  #bytes: Uint8Array = EMPTY;
  #pos = 0;
  #end = 0;

  /**
   * Creates a reader positioned at the first byte of `bytes`.
   *
   * @param bytes The struct; it is read in place, never copied.
   */
  constructor(bytes: Uint8Array) {
    this.reset(bytes);
  }

  /**
   * Starts reading another input from its first byte; reusing a reader
   * allocates nothing.
   *
   * @param bytes The next struct.
   * @returns This reader.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const reader = new StructReader(new Uint8Array([1]));
   * assert.equal(reader.reset(new Uint8Array([2])).u8(), 2);
   * ```
   */
  reset(bytes: Uint8Array): this {
    this.#bytes = bytes;
    this.#pos = 0;
    this.#end = bytes.length;
    return this;
  }

  /**
   * Bytes read so far.
   *
   * @returns The cursor, relative to the start of the input.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const reader = new StructReader(new Uint8Array(6));
   * reader.u32();
   * assert.equal(reader.offset, 4);
   * ```
   */
  get offset(): number {
    return this.#pos;
  }

  /**
   * Bytes left to read.
   *
   * @returns The input length minus the offset.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const reader = new StructReader(new Uint8Array(6));
   * reader.u32();
   * assert.equal(reader.remaining, 2);
   * ```
   */
  get remaining(): number {
    return this.#end - this.#pos;
  }

  /**
   * Checks that the whole input was read, so trailing garbage is not ignored.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const reader = new StructReader(new Uint8Array([1, 2]));
   * reader.u8();
   * assert.throws(() => reader.assertEnd(), { name: "StreamwireError", code: 3 });
   * ```
   */
  assertEnd(): void {
    if (this.#pos !== this.#end) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Struct has '${this.#end - this.#pos}' trailing bytes at offset '${this.offset}'`,
      );
    }
  }

  /** Advances over `size` bytes and returns where they start, or throws. */
  #take(size: number, kind: string): number {
    const pos = this.#pos;
    if (size > this.#end - pos) throw this.#truncated(size, kind);
    this.#pos = pos + size;
    return pos;
  }

  #truncated(size: number, kind: string): StreamwireError {
    return new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Struct field '${kind}' at offset '${this.offset}' needs '${size}' bytes ` +
        `but '${this.#end - this.#pos}' remain`,
    );
  }

  /**
   * Reads the u32 length prefix at the cursor and checks that the prefix and
   * that many bytes remain; the cursor is left for the caller to move.
   */
  #length(kind: string): number {
    const pos = this.#pos;
    const remaining = this.#end - pos - 4;
    if (remaining < 0) throw this.#truncated(4, kind);
    const b = this.#bytes;
    const size = b[pos] * 0x100_0000 + ((b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]);
    if (size > remaining) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Struct field '${kind}' at offset '${pos}' declares length '${size}' ` +
          `but '${remaining}' bytes remain`,
      );
    }
    return size;
  }

  /**
   * Reads an unsigned 8-bit integer.
   *
   * @returns A number in 0..255.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([200])).u8(), 200);
   * ```
   */
  u8(): number {
    return this.#bytes[this.#take(1, "u8")];
  }

  /**
   * Reads an unsigned 16-bit big-endian integer.
   *
   * @returns A number in 0..65535.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([1, 2])).u16(), 0x0102);
   * ```
   */
  u16(): number {
    const pos = this.#take(2, "u16");
    const b = this.#bytes;
    return (b[pos] << 8) | b[pos + 1];
  }

  /**
   * Reads an unsigned 32-bit big-endian integer.
   *
   * @returns A number in 0..4294967295.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([0xff, 0, 0, 1])).u32(), 0xff000001);
   * ```
   */
  u32(): number {
    const pos = this.#take(4, "u32");
    const b = this.#bytes;
    return b[pos] * 0x100_0000 + ((b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]);
  }

  /**
   * Reads a signed 32-bit big-endian integer.
   *
   * @returns A number in -2147483648..2147483647.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([0xff, 0xff, 0xff, 0xfe])).i32(), -2);
   * ```
   */
  i32(): number {
    const pos = this.#take(4, "i32");
    const b = this.#bytes;
    return (b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3];
  }

  /**
   * Reads a 64-bit big-endian float.
   *
   * @returns A number.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([0x3f, 0xf0, 0, 0, 0, 0, 0, 0])).f64(), 1);
   * ```
   */
  f64(): number {
    loadScratch(this.#bytes, this.#take(8, "f64"));
    return SCRATCH_F64[0];
  }

  /**
   * Reads an unsigned 64-bit big-endian integer.
   *
   * @returns A bigint in 0..2^64-1.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2])).u64(), 258n);
   * ```
   */
  u64(): bigint {
    loadScratch(this.#bytes, this.#take(8, "u64"));
    return SCRATCH_U64[0];
  }

  /**
   * Reads a signed 64-bit big-endian integer.
   *
   * @returns A bigint in -2^63..2^63-1.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array(8).fill(0xff)).i64(), -1n);
   * ```
   */
  i64(): bigint {
    loadScratch(this.#bytes, this.#take(8, "i64"));
    return SCRATCH_I64[0];
  }

  /**
   * Reads a boolean byte; anything but 0 or 1 is malformed.
   *
   * @returns The flag.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([1])).bool(), true);
   * assert.throws(() => new StructReader(new Uint8Array([2])).bool(), { code: 3 });
   * ```
   */
  bool(): boolean {
    const pos = this.#take(1, "bool");
    const byte = this.#bytes[pos];
    if (byte > 1) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Struct field 'bool' at offset '${pos}' has byte '${byte}', not 0 or 1`,
      );
    }
    return byte === 1;
  }

  /**
   * Reads a u32 length and that many UTF-8 bytes as a string.
   *
   * @returns The text; invalid UTF-8 throws `INVALID_ARGUMENT`.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new StructReader(new Uint8Array([0, 0, 0, 2, 0xc3, 0xa9])).string(), "é");
   * ```
   */
  string(): string {
    const size = this.#length("string");
    const start = this.#pos + 4;
    const end = start + size;
    if (size <= SHORT_STRING_DECODE) {
      const text = shortAscii(this.#bytes, start, size);
      if (text !== undefined) {
        this.#pos = end;
        return text;
      }
    }
    let text: string;
    try {
      text = decoder.decode(this.#bytes.subarray(start, end));
    } catch (error) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Struct field 'string' at offset '${start - 4}' of length '${size}' ` +
          `is not valid UTF-8`,
        { cause: error },
      );
    }
    this.#pos = end;
    return text;
  }

  /**
   * Reads a u32 length and returns that many bytes as a view of the input.
   *
   * @returns A view sharing the input's buffer; `slice()` it to keep a copy.
   *
   * @example Usage
   * ```ts
   * import { StructReader } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const input = new Uint8Array([0, 0, 0, 1, 42]);
   * const bytes = new StructReader(input).bytes();
   * assert.equal(bytes.buffer, input.buffer);
   * assert.deepEqual([...bytes], [42]);
   * ```
   */
  bytes(): Uint8Array {
    const size = this.#length("bytes");
    const start = this.#pos + 4;
    this.#pos = start + size;
    return this.#bytes.subarray(start, start + size);
  }
}

const fcc = String.fromCharCode;

/**
 * Decodes `size` bytes at `start` when they are all ASCII, else returns
 * `undefined`. One `fromCharCode` call with a fixed argument count is the
 * fastest way V8 offers to build a short string (msgpackr does the same), and
 * unrolling the ASCII check per length measured 10% faster than a loop;
 * `TextDecoder` costs about 100 ns per call in Deno, a loop of `+=` 30 ns
 * per string.
 */
function shortAscii(b: Uint8Array, s: number, size: number): string | undefined {
  if (size > 16) {
    const head = shortAscii(b, s, 16);
    const tail = head === undefined ? undefined : shortAscii(b, s + 16, size - 16);
    return tail === undefined ? undefined : head + tail;
  }
  switch (size) {
    case 0:
      return "";
    case 1: {
      const c0 = b[s];
      return c0 < 0x80 ? fcc(c0) : undefined;
    }
    case 2: {
      const c0 = b[s], c1 = b[s + 1];
      return (c0 | c1) < 0x80 ? fcc(c0, c1) : undefined;
    }
    case 3: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2];
      return (c0 | c1 | c2) < 0x80 ? fcc(c0, c1, c2) : undefined;
    }
    case 4: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3];
      return (c0 | c1 | c2 | c3) < 0x80 ? fcc(c0, c1, c2, c3) : undefined;
    }
    case 5: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3], c4 = b[s + 4];
      return (c0 | c1 | c2 | c3 | c4) < 0x80 ? fcc(c0, c1, c2, c3, c4) : undefined;
    }
    case 6: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3], c4 = b[s + 4], c5 = b[s + 5];
      return (c0 | c1 | c2 | c3 | c4 | c5) < 0x80 ? fcc(c0, c1, c2, c3, c4, c5) : undefined;
    }
    case 7: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6)
        : undefined;
    }
    case 8: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7)
        : undefined;
    }
    case 9: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8)
        : undefined;
    }
    case 10: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        : undefined;
    }
    case 11: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)
        : undefined;
    }
    case 12: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11)
        : undefined;
    }
    case 13: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12)
        : undefined;
    }
    case 14: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13)
        : undefined;
    }
    case 15: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13],
        c14 = b[s + 14];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13 | c14) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14)
        : undefined;
    }
    case 16: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13],
        c14 = b[s + 14],
        c15 = b[s + 15];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13 | c14 | c15) <
          0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15)
        : undefined;
    }
  }
  return undefined;
}
