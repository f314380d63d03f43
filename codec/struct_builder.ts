/**
 * {@linkcode StructBuilder}: writes the fields of a struct (layout in
 * `struct.ts`) into one growing buffer.
 *
 * @module
 */

import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";

/** Strings up to this many UTF-16 units are encoded by a JS loop when ASCII. */
const SHORT_STRING_ENCODE = 64;
/** Largest length a u32 prefix can carry. */
const MAX_U32 = 0xffff_ffff;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MIN_I64 = -0x8000_0000_0000_0000n;
const MAX_I64 = 0x7fff_ffff_ffff_ffffn;

const encoder = new TextEncoder();

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
