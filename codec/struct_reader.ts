/**
 * {@linkcode StructReader}: reads the fields of a struct (layout in
 * `struct.ts`) in place, bounds-checked, without copying.
 *
 * @module
 */

import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";
import { shortAscii } from "./_short_ascii.ts";

/** Strings up to this many bytes are decoded by a JS loop when ASCII. */
const SHORT_STRING_DECODE = 32;
// fatal: invalid UTF-8 is a malformed payload, not text to repair.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

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
