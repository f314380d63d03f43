/**
 * Payload compression stages of the decode and encode chains
 * (PROTOCOL.md 1.1): only the payload is compressed, never the extension
 * block, and inflation stops at `maxFrame`.
 *
 * @module
 */

import {
  COMPRESSION_NAMES,
  type CompressionName,
  DEFAULT_MAX_FRAME,
  Flag,
  Status,
} from "./constants.ts";
import { compress, decompress } from "./compression.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { splitBody } from "./message.ts";

/** Default payload size from which {@linkcode CompressorStream} compresses: 1 KiB. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024;

const ALL: readonly CompressionName[] = ["zstd", "lz4", "zlib"];
const NAME_OF = ["none", "zlib", "lz4", "zstd"] as const;

/** Options of {@linkcode DecompressorStream} and {@linkcode decompressFrame}. */
export interface DecompressOptions {
  /**
   * Bound on the decompressed payload. Inflation stops as soon as it is
   * passed, so a small "bomb" cannot expand into unbounded memory.
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Algorithms this side accepted in the handshake; a frame compressed with
   * any other fails with `unimplemented`.
   *
   * @default {["zstd", "lz4", "zlib"]}
   */
  accept?: readonly CompressionName[];
}

/** Options of {@linkcode CompressorStream} and {@linkcode compressFrame}. */
export interface CompressOptions {
  /**
   * Algorithm to compress with; it must be one the peer accepted in the
   * handshake. Without it frames pass through unchanged.
   */
  algorithm?: CompressionName;
  /**
   * Payloads shorter than this many bytes are sent plain: on small payloads
   * compression costs more time than it saves bytes.
   *
   * @default {1024}
   */
  threshold?: number;
}

function acceptMask(accept: readonly CompressionName[]): number {
  let mask = 1; // "none" is always accepted
  for (const name of accept) mask |= 1 << COMPRESSION_NAMES[name];
  return mask;
}

function withBody(ext: Uint8Array | undefined, payload: Uint8Array): Uint8Array {
  if (ext === undefined) return payload;
  const body = new Uint8Array(2 + ext.length + payload.length);
  body[0] = ext.length >>> 8;
  body[1] = ext.length;
  body.set(ext, 2);
  body.set(payload, 2 + ext.length);
  return body;
}

/**
 * Decompresses a frame's payload if its compression bits are set.
 *
 * @param frame A received frame (checksum already verified).
 * @param options Bound and accepted algorithms.
 * @returns `frame` itself if it is not compressed, else a frame with the
 *   plain body and the compression bits cleared.
 * @throws {StreamwireError} `resource_exhausted` past `maxFrame`,
 *   `invalid_argument` for corrupt data, `unimplemented` for an algorithm not accepted.
 *
 * @example Usage
 * ```ts
 * import { compressFrame, decompressFrame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const plain = { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) };
 * const packed = compressFrame(plain, { algorithm: "zstd" });
 * assert.ok(packed.body.length < 100);
 * assert.deepEqual(decompressFrame(packed).body, plain.body);
 * ```
 */
export function decompressFrame(frame: Frame, options: DecompressOptions = {}): Frame {
  if ((frame.flags & Flag.COMPRESSION_MASK) === 0) return frame;
  return decompressWith(
    frame,
    options.maxFrame ?? DEFAULT_MAX_FRAME,
    acceptMask(options.accept ?? ALL),
  );
}

function decompressWith(frame: Frame, maxFrame: number, mask: number): Frame {
  const algorithm = frame.flags & Flag.COMPRESSION_MASK;
  if (algorithm === 0) return frame;
  if (!(mask & (1 << algorithm))) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `Frame seq '${frame.seq}' uses compression '${NAME_OF[algorithm]}', which was not accepted`,
    );
  }
  const { ext, payload } = splitBody(frame.flags, frame.body);
  const room = maxFrame - (ext === undefined ? 0 : 2 + ext.length);
  const plain = decompress(algorithm as 1 | 2 | 3, payload, { maxOutput: Math.max(0, room) });
  return {
    type: frame.type,
    flags: frame.flags & ~Flag.COMPRESSION_MASK,
    seq: frame.seq,
    body: withBody(ext, plain),
  };
}

/**
 * Compresses a frame's payload when it is at least `threshold` bytes and
 * compression actually makes it smaller.
 *
 * @param frame An uncompressed frame.
 * @param options Algorithm and threshold.
 * @returns `frame` itself, or a compressed copy with the compression bits set.
 *
 * @example Usage
 * ```ts
 * import { compressFrame, Compression, Flag, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) };
 * const packed = compressFrame(frame, { algorithm: "lz4" });
 * assert.equal(packed.flags & Flag.COMPRESSION_MASK, Compression.LZ4);
 * assert.equal(compressFrame(frame, {}), frame);
 * ```
 */
export function compressFrame(frame: Frame, options: CompressOptions): Frame {
  const { algorithm } = options;
  if (algorithm === undefined || (frame.flags & Flag.COMPRESSION_MASK) !== 0) return frame;
  const threshold = options.threshold ?? DEFAULT_COMPRESSION_THRESHOLD;
  // The payload is at most the body: small frames skip the split entirely.
  if (frame.body.length < threshold) return frame;
  const { ext, payload } = splitBody(frame.flags, frame.body);
  if (payload.length < threshold) return frame;
  const code = COMPRESSION_NAMES[algorithm];
  const packed = compress(code, payload);
  if (packed.length >= payload.length) return frame;
  return {
    type: frame.type,
    flags: frame.flags | code,
    seq: frame.seq,
    body: withBody(ext, packed),
  };
}

/**
 * Decompresses flagged payloads, batch by batch, with a hard output bound.
 *
 * @example Usage
 * ```ts
 * import { compressFrame, DecompressorStream, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = compressFrame(
 *   { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(1 << 20) },
 *   { algorithm: "zlib" },
 * );
 * const stream = ReadableStream.from([[frame]])
 *   .pipeThrough(new DecompressorStream({ maxFrame: 1024 }));
 * await assert.rejects(Array.fromAsync(stream), { codeName: "resource_exhausted" });
 * ```
 */
export class DecompressorStream extends TransformStream<Frame[], Frame[]> {
  /**
   * Creates the stream.
   *
   * @param options Bound and accepted algorithms.
   */
  constructor(options: DecompressOptions = {}) {
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    const mask = acceptMask(options.accept ?? ALL);
    super({
      transform(frames, controller) {
        for (let i = 0; i < frames.length; i++) {
          if (frames[i].flags & Flag.COMPRESSION_MASK) {
            frames[i] = decompressWith(frames[i], maxFrame, mask);
          }
        }
        controller.enqueue(frames);
      },
    });
  }
}

/**
 * Compresses payloads above a threshold, batch by batch.
 *
 * @example Usage
 * ```ts
 * import { CompressorStream, Flag, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [[frame]] = await Array.fromAsync(
 *   ReadableStream.from([[{ type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) }]])
 *     .pipeThrough(new CompressorStream({ algorithm: "zstd" })),
 * );
 * assert.notEqual(frame.flags & Flag.COMPRESSION_MASK, 0);
 * ```
 */
export class CompressorStream extends TransformStream<Frame[], Frame[]> {
  /**
   * Creates the stream.
   *
   * @param options Algorithm and threshold.
   */
  constructor(options: CompressOptions = {}) {
    super({
      transform(frames, controller) {
        if (options.algorithm !== undefined) {
          for (let i = 0; i < frames.length; i++) frames[i] = compressFrame(frames[i], options);
        }
        controller.enqueue(frames);
      },
    });
  }
}
