/**
 * Payload compression of PROTOCOL.md 1.1 as synchronous functions: zlib
 * (RFC 1950), the LZ4 frame format and Zstandard frames (RFC 8878).
 *
 * Decompression takes a hard cap on its output (the receiver's `maxFrame`,
 * PROTOCOL.md 1.3) and stops inflating as soon as the cap is passed, so a
 * small hostile payload never makes the receiver allocate more than the cap.
 *
 * LZ4 is plain TypeScript (`_lz4_compress.ts`, `_lz4.ts`) and zlib and
 * Zstandard come from `node:zlib`: importing this module needs no
 * permissions. Where the runtime has no `node:zlib` (a web page), zlib and
 * Zstandard fail with `unimplemented`: a browser inflates zlib
 * asynchronously instead (`DecompressorStage`), and offers no Zstandard.
 *
 * @module
 */

import { Compression, COMPRESSION_NAMES, type CompressionName, Status } from "./constants.ts";
import { concat } from "./_bytes.ts";
import { StreamwireError } from "./error.ts";
import { decodeLz4, payloadTooLarge } from "./_lz4.ts";
import { lz4CompressFrame } from "./_lz4_compress.ts";
import { type InflateInfo, type NodeZlib, nodeZlib } from "./_platform.ts";

/** Options of {@linkcode compress}. */
export interface PayloadCompressOptions {
  /**
   * Compression level; its range and default depend on the algorithm:
   *
   * - zlib: 0 (stored) to 9. Default 4: on 1 MiB of JSON log lines it keeps
   *   97% of level 6's ratio at 1.6 times its speed, and on a 4 KiB JSON
   *   document 95% at the same speed (`codec/compression_bench.ts`).
   * - Zstandard: -7 (fastest) to 22. Default 3, the library's own default.
   * - LZ4: ignored, the encoder has a single level.
   *
   * @default {4 (zlib), 3 (Zstandard)}
   */
  level?: number;
}

/** Options of {@linkcode decompress}. */
export interface PayloadDecompressOptions {
  /**
   * Largest decompressed size accepted, in bytes: a hard cap. Decompression
   * stops as soon as the output would pass it, so a decompression bomb costs
   * at most this much memory. Use the connection's `maxFrame`
   * (PROTOCOL.md 1.3).
   */
  maxOutput: number;
}

/** Level ranges and defaults, per algorithm (see {@linkcode PayloadCompressOptions.level}). */
const LEVELS = {
  [Compression.ZLIB]: { min: 0, max: 9, default: 4 },
  [Compression.ZSTD]: { min: -7, max: 22, default: 3 },
} as const;

/** Smallest and largest output chunk handed to node:zlib while inflating. */
const MIN_CHUNK = 16 * 1024;
const MAX_CHUNK = 1024 * 1024;

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames use the magics 0x184D2A50..0x184D2A5F (RFC 8878 3.1.2). */
const SKIPPABLE_MAGIC = 0x184d2a50;

/**
 * Compresses a payload with one of the algorithms of PROTOCOL.md 1.1.
 *
 * zlib output is the RFC 1950 format of `CompressionStream("deflate")`. LZ4
 * output is one LZ4 frame that declares its content size, made of
 * independent blocks no larger than the payload needs (64 KiB to 4 MiB),
 * without checksums: the frame's CRC-32 already covers the body. Zstandard
 * output is one frame that declares its content size too, so a receiver can
 * refuse either before inflating.
 *
 * @param algorithm The algorithm; `Compression.NONE` returns `data` itself.
 * @param data The payload.
 * @param options The compression level.
 * @returns The compressed payload.
 * @throws {StreamwireError} `invalid_argument` for a level out of range,
 * `unimplemented` for an unknown algorithm code.
 *
 * @example Compress a payload with Zstandard
 * ```ts
 * import { Compression, compress, decompress } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const json = new TextEncoder().encode(JSON.stringify({ items: Array(100).fill("same") }));
 * const packed = compress(Compression.ZSTD, json, { level: 9 });
 * assert.ok(packed.length < json.length / 5);
 * assert.deepEqual(decompress(Compression.ZSTD, packed, { maxOutput: 1024 }), json);
 * ```
 */
export function compress(
  algorithm: Compression,
  data: Uint8Array,
  options: PayloadCompressOptions = {},
): Uint8Array {
  switch (algorithm) {
    case Compression.NONE:
      return data;
    case Compression.ZLIB: {
      const level = levelOf(algorithm, options.level);
      const zlib = native(algorithm);
      return run(() => zlib.deflateSync(data, { level }));
    }
    case Compression.LZ4:
      return run(() => lz4CompressFrame(data));
    case Compression.ZSTD: {
      const level = levelOf(algorithm, options.level);
      const zlib = native(algorithm);
      const zstdOptions = {
        // Writes Frame_Content_Size and sizes the window to the payload
        // (supported at run time, missing from the node:zlib typings).
        pledgedSrcSize: data.length,
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
      };
      return run(() => zlib.zstdCompressSync(data, zstdOptions));
    }
    default:
      throw unknownAlgorithm(algorithm);
  }
}

/**
 * Decompresses a payload, failing as soon as the output would pass
 * `options.maxOutput`; memory use stays within about that cap whatever the
 * payload claims or expands to.
 *
 * The payload must be exactly one or more complete frames of the algorithm
 * (zlib: one stream; LZ4 and Zstandard: frames and skippable frames), with no
 * trailing bytes.
 *
 * @param algorithm The algorithm; `Compression.NONE` returns `data` itself
 * when it fits the cap.
 * @param data The compressed payload.
 * @param options The cap on the output.
 * @returns The decompressed payload, at most `options.maxOutput` bytes.
 * @throws {StreamwireError} `resource_exhausted` when the output would pass
 * the cap, `invalid_argument` for a truncated or corrupt payload (or a bad
 * `maxOutput`), `unimplemented` for an unknown algorithm code.
 *
 * @example Round trip with LZ4
 * ```ts
 * import { Compression, compress, decompress } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const payload = new TextEncoder().encode("streamwire ".repeat(1000));
 * const packed = compress(Compression.LZ4, payload);
 * assert.deepEqual(decompress(Compression.LZ4, packed, { maxOutput: 16_777_216 }), payload);
 * ```
 *
 * @example Refuse a payload that inflates past the cap
 * ```ts
 * import { Compression, compress, decompress, Status } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bomb = compress(Compression.ZLIB, new Uint8Array(1_000_000));
 * assert.ok(bomb.length < 2_000);
 * assert.throws(() => decompress(Compression.ZLIB, bomb, { maxOutput: 65_536 }), {
 *   code: Status.RESOURCE_EXHAUSTED,
 *   message: "Decompressed payload exceeds maxFrame '65536'",
 * });
 * ```
 */
export function decompress(
  algorithm: Compression,
  data: Uint8Array,
  options: PayloadDecompressOptions,
): Uint8Array {
  const maxOutput = options.maxOutput;
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `maxOutput '${maxOutput}' is not a non-negative integer`,
    );
  }
  switch (algorithm) {
    case Compression.NONE:
      if (data.length > maxOutput) throw payloadTooLarge(maxOutput);
      return data;
    case Compression.ZLIB:
      return inflate(data, maxOutput);
    case Compression.LZ4:
      return decodeLz4(data, maxOutput);
    case Compression.ZSTD:
      return unzstd(data, maxOutput);
    default:
      throw unknownAlgorithm(algorithm);
  }
}

/**
 * The handshake name of a compression code (PROTOCOL.md 4).
 *
 * @param code A compression code, such as the two low bits of a frame's flags.
 * @returns `"zlib"`, `"lz4"` or `"zstd"`, or `undefined` for `Compression.NONE`
 * and unknown codes.
 *
 * @example Usage
 * ```ts
 * import { Compression, compressionName } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(compressionName(Compression.ZSTD), "zstd");
 * assert.equal(compressionName(Compression.NONE), undefined);
 * ```
 */
export function compressionName(code: number): CompressionName | undefined {
  switch (code) {
    case Compression.ZLIB:
      return "zlib";
    case Compression.LZ4:
      return "lz4";
    case Compression.ZSTD:
      return "zstd";
    default:
      return undefined;
  }
}

/**
 * The compression code of a handshake name (PROTOCOL.md 4). Names are exact
 * and lowercase; a peer's unknown names are to be skipped, not refused.
 *
 * @param name A name from a HELLO or HELLO_ACK `compression` list.
 * @returns The code, or `undefined` for a name this implementation does not know.
 *
 * @example Keep the algorithms both sides know, in the peer's order
 * ```ts
 * import { Compression, parseCompression } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const offered = ["brotli", "zstd", "zlib"];
 * const known = offered.map(parseCompression).filter((code) => code !== undefined);
 * assert.deepEqual(known, [Compression.ZSTD, Compression.ZLIB]);
 * ```
 */
export function parseCompression(name: string): Compression | undefined {
  return Object.hasOwn(COMPRESSION_NAMES, name)
    ? COMPRESSION_NAMES[name as CompressionName]
    : undefined;
}

function levelOf(algorithm: keyof typeof LEVELS, level: number | undefined): number {
  const range = LEVELS[algorithm];
  if (level === undefined) return range.default;
  if (!Number.isInteger(level) || level < range.min || level > range.max) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Compression level '${level}' is out of range for ${
        compressionName(algorithm)
      } (${range.min}..${range.max})`,
    );
  }
  return level;
}

/**
 * Whether this runtime compresses and decompresses `algorithm`
 * synchronously: LZ4 everywhere, zlib and Zstandard where it has
 * `node:zlib` (not in a web page).
 *
 * @param algorithm A compression code.
 * @returns `true` if {@linkcode compress} and {@linkcode decompress} handle it here.
 *
 * @example Usage
 * ```ts
 * import { Compression, hasSyncCompression } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hasSyncCompression(Compression.LZ4), true);
 * assert.equal(hasSyncCompression(Compression.ZSTD), "Deno" in globalThis);
 * ```
 */
export function hasSyncCompression(algorithm: Compression): boolean {
  switch (algorithm) {
    case Compression.NONE:
    case Compression.LZ4:
      return true;
    case Compression.ZLIB:
    case Compression.ZSTD:
      return nodeZlib !== undefined;
    default:
      return false;
  }
}

/** node:zlib for `algorithm`, or an `unimplemented` error where the runtime has none. */
function native(algorithm: typeof Compression.ZLIB | typeof Compression.ZSTD): NodeZlib {
  if (nodeZlib !== undefined) return nodeZlib;
  throw new StreamwireError(
    Status.UNIMPLEMENTED,
    `Compression '${compressionName(algorithm)}' has no synchronous implementation in this runtime`,
  );
}

function unknownAlgorithm(algorithm: number): StreamwireError {
  return new StreamwireError(Status.UNIMPLEMENTED, `Unknown compression '${algorithm}'`);
}

function corrupt(name: string, message: string, cause?: unknown): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, `Invalid ${name} payload: ${message}`, {
    cause,
  });
}

/** Runs an encoder, turning any failure into a `StreamwireError`. */
function run(encode: () => Uint8Array): Uint8Array {
  try {
    return own(encode());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new StreamwireError(Status.INTERNAL, `Compression failed: ${message}`, { cause: error });
  }
}

/**
 * A plain `Uint8Array` holding just the result. node:zlib returns Buffers
 * that may be views into a larger chunk or pool; a small payload should not
 * pin them.
 */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
}

/** Output chunk size for node:zlib: about four times the input, within bounds. */
function chunkSize(inputLength: number): number {
  const guess = 2 ** Math.ceil(Math.log2(Math.max(inputLength, 1) * 4));
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, guess));
}

/** Maps a node:zlib failure: the output cap, or else a corrupt payload. */
function fromNode(error: unknown, name: string, maxOutput: number): StreamwireError {
  // node:zlib stops inflating once output passes maxOutputLength.
  if ((error as { code?: unknown })?.code === "ERR_BUFFER_TOO_LARGE") {
    return payloadTooLarge(maxOutput);
  }
  return corrupt(name, error instanceof Error ? error.message : String(error), error);
}

function inflate(data: Uint8Array, maxOutput: number): Uint8Array {
  if (data.length === 0) throw corrupt("zlib", "empty payload");
  const zlib = native(Compression.ZLIB);
  let result: InflateInfo;
  try {
    // `info` exposes the engine, whose bytesWritten is the input consumed.
    result = zlib.inflateSync(data, {
      info: true,
      // node:zlib wants at least 1; a 1-byte result is refused below.
      maxOutputLength: Math.max(maxOutput, 1),
      chunkSize: chunkSize(data.length),
    });
  } catch (error) {
    throw fromNode(error, "zlib", maxOutput);
  }
  const stray = data.length - result.engine.bytesWritten;
  if (stray !== 0) throw corrupt("zlib", `'${stray}' stray bytes after the stream`);
  if (result.buffer.length > maxOutput) throw payloadTooLarge(maxOutput);
  return own(result.buffer);
}

function u32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * Splits a Zstandard payload into its frames, checking their structure
 * (RFC 8878 3.1): node:zlib's decoder returns short output without an error
 * for a truncated frame, decodes only the first of several frames, and
 * ignores trailing bytes.
 *
 * @returns Triples of frame start, frame end and declared content size (-1 if none).
 */
function zstdFrames(data: Uint8Array, maxOutput: number): number[] {
  const n = data.length;
  if (n === 0) throw corrupt("Zstandard", "empty payload");
  const truncated = () => corrupt("Zstandard", "truncated frame");
  const frames: number[] = [];
  let declared = 0;
  for (let pos = 0; pos < n;) {
    if (n - pos < 4) throw corrupt("Zstandard", `'${n - pos}' stray bytes at '${pos}'`);
    const magic = u32(data, pos);
    if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
      if (n - pos < 8) throw truncated();
      pos += 8 + u32(data, pos + 4);
      if (pos > n) throw truncated();
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      throw corrupt(
        "Zstandard",
        `bad magic '0x${magic.toString(16).padStart(8, "0")}' at '${pos}'`,
      );
    }
    if (pos + 5 > n) throw truncated();
    const fhd = data[pos + 4];
    if ((fhd & 0x08) !== 0) throw corrupt("Zstandard", "reserved header bit is set");
    const single = (fhd & 0x20) !== 0;
    const fcsFlag = fhd >>> 6;
    const fcsSize = fcsFlag === 0 ? (single ? 1 : 0) : 1 << fcsFlag;
    let p = pos + 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3] + fcsSize;
    if (p > n) throw truncated();
    let contentSize = -1;
    if (fcsSize !== 0) {
      contentSize = 0;
      for (let i = fcsSize - 1; i >= 0; i--) {
        contentSize = contentSize * 256 + data[p - fcsSize + i];
      }
      if (fcsSize === 2) contentSize += 256;
      // Check the declared size before inflating anything.
      declared += contentSize;
      if (declared > maxOutput) throw payloadTooLarge(maxOutput);
    }
    for (let last = 0; last === 0;) {
      if (p + 3 > n) throw truncated();
      const header = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16);
      const type = (header >>> 1) & 3;
      if (type === 3) throw corrupt("Zstandard", `reserved block type at '${p}'`);
      // An RLE block stores one byte; raw and compressed blocks store Block_Size.
      p += 3 + (type === 1 ? 1 : header >>> 3);
      if (p > n) throw truncated();
      last = header & 1;
    }
    if ((fhd & 0x04) !== 0) p += 4;
    if (p > n) throw truncated();
    frames.push(pos, p, contentSize);
    pos = p;
  }
  return frames;
}

function unzstd(data: Uint8Array, maxOutput: number): Uint8Array {
  const zlib = native(Compression.ZSTD);
  const frames = zstdFrames(data, maxOutput);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < frames.length; i += 3) {
    const frame = data.subarray(frames[i], frames[i + 1]);
    let part: Uint8Array;
    try {
      part = zlib.zstdDecompressSync(frame, {
        maxOutputLength: Math.max(maxOutput - total, 1),
        chunkSize: chunkSize(frame.length),
      });
    } catch (error) {
      throw fromNode(error, "Zstandard", maxOutput);
    }
    const declared = frames[i + 2];
    if (declared >= 0 && part.length !== declared) {
      throw corrupt("Zstandard", `content size '${part.length}' does not match '${declared}'`);
    }
    total += part.length;
    if (total > maxOutput) throw payloadTooLarge(maxOutput);
    parts.push(part);
  }
  return parts.length === 1 ? own(parts[0]) : concat(parts);
}
