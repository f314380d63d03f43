/**
 * Payload compression stages of the decode and encode chains
 * (PROTOCOL.md 1.1), as functions ({@linkcode decompressFrame},
 * {@linkcode compressFrame}), WHATWG `Transformer`s
 * ({@linkcode DecompressorStage}, {@linkcode CompressorStage}) and streams:
 * only the payload is compressed, never the extension block, and inflation
 * stops at `maxFrame`.
 *
 * In a runtime without synchronous zlib (a web page), the stages inflate
 * zlib payloads with `DecompressionStream`: `transform` then returns a
 * promise, and a composed chain holds the frames after it until it settles,
 * so messages keep their order. They never compress with zlib there: such
 * frames are sent plain, which every peer accepts.
 *
 * @module
 */

import {
  Compression,
  COMPRESSION_NAMES,
  type CompressionName,
  DEFAULT_MAX_FRAME,
  Flag,
  Status,
} from "./constants.ts";
import { compress, decompress, hasSyncCompression } from "./compression.ts";
import { inflateAsync } from "./_inflate_async.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { splitBody } from "./message.ts";
import { StageStream } from "./stage.ts";
import { CONNECT, StageInput } from "./_stage_input.ts";
import { byteLimit } from "./_limits.ts";

/** Default payload size from which {@linkcode CompressorStream} compresses: 1 KiB. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024;

const ALL: readonly CompressionName[] = ["zstd", "lz4", "zlib"];
const ALL_FROZEN: readonly CompressionName[] = Object.freeze([...ALL]);
const NAME_OF = ["none", "zlib", "lz4", "zstd"] as const;
/** Codes this runtime compresses synchronously, as a bit mask (all of them where it has node:zlib). */
const SYNC_MASK = [0, 1, 2, 3].reduce(
  (mask, code) => hasSyncCompression(code as Compression) ? mask | (1 << code) : mask,
  0,
);
/** Whether zlib frames are inflated asynchronously, with `DecompressionStream` (a web page). */
const ASYNC_ZLIB = !(SYNC_MASK & (1 << Compression.ZLIB));

/**
 * Options of {@linkcode decompressFrame}, {@linkcode DecompressorStage} and
 * {@linkcode DecompressorStream}.
 */
export interface DecompressOptions {
  /**
   * Bound on the decompressed body (extension block included). Inflation
   * stops as soon as it is passed, so a small "bomb" (a few KiB of zeros
   * compressed from gigabytes) fails with `resource_exhausted` instead of
   * expanding into unbounded memory (PROTOCOL.md 1.1).
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Algorithms this side accepted in the handshake; a frame compressed with
   * any other fails with `unimplemented`, so a peer cannot make the receiver
   * run a decoder it did not agree to.
   *
   * @default {["zstd", "lz4", "zlib"]}
   */
  accept?: readonly CompressionName[];
}

/**
 * Options of {@linkcode compressFrame}, {@linkcode CompressorStage} and
 * {@linkcode CompressorStream}.
 */
export interface CompressOptions {
  /**
   * Algorithm to compress with; it must be one the peer accepted in the
   * handshake. Without it frames pass through unchanged.
   *
   * @default {undefined}
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
  checkAccepted(frame, algorithm, mask);
  const { ext, payload } = splitBody(frame.flags, frame.body);
  const room = maxFrame - (ext === undefined ? 0 : 2 + ext.length);
  const plain = decompress(algorithm as 1 | 2 | 3, payload, { maxOutput: Math.max(0, room) });
  return plainFrame(frame, ext, plain);
}

/** {@linkcode decompressWith} for a zlib frame, through `DecompressionStream`. */
async function inflateLater(frame: Frame, limits: InflateLimits): Promise<Frame> {
  checkAccepted(frame, Compression.ZLIB, limits.mask);
  const { ext, payload } = splitBody(frame.flags, frame.body);
  const room = limits.maxFrame - (ext === undefined ? 0 : 2 + ext.length);
  return plainFrame(frame, ext, await inflateAsync(payload, Math.max(0, room)));
}

function checkAccepted(frame: Frame, algorithm: number, mask: number): void {
  if (!(mask & (1 << algorithm))) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `Frame seq '${frame.seq}' uses compression '${NAME_OF[algorithm]}', which was not accepted`,
    );
  }
}

function plainFrame(frame: Frame, ext: Uint8Array | undefined, plain: Uint8Array): Frame {
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
  // Plain is always allowed: a runtime without a synchronous encoder sends plain frames.
  if (!(SYNC_MASK & (1 << code))) return frame;
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
 * Bounded decompression as a WHATWG `Transformer`: each frame whose
 * compression bits are set is passed on decompressed, the others unchanged.
 * `maxFrame` and `accept` can change between frames, for instance once the
 * handshake settled them.
 *
 * @example Decompress in a loop
 * ```ts
 * import { compressFrame, DecompressorStage, type Frame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const packed = compressFrame(
 *   { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) },
 *   { algorithm: "lz4" },
 * );
 * const stage = new DecompressorStage({ accept: ["zstd"] });
 * const out: Frame[] = [];
 * const controller = {
 *   enqueue: (f: Frame) => void out.push(f),
 * } as TransformStreamDefaultController<Frame>;
 * assert.throws(() => stage.transform(packed, controller), { codeName: "unimplemented" });
 * stage.accept = ["lz4"];
 * stage.transform(packed, controller);
 * assert.equal(out[0].body.length, 4096);
 * ```
 */
export class DecompressorStage implements Transformer<Frame, Frame> {
  #accept: readonly CompressionName[];
  /** Read by the stage and by its direct input, so that setters reach both. */
  #limits: InflateLimits;

  /**
   * Creates the stage.
   *
   * @param options Bound and accepted algorithms.
   * @throws {StreamwireError} `invalid_argument` for a `maxFrame` that is not a non-negative integer.
   */
  constructor(options: DecompressOptions = {}) {
    this.#accept = options.accept === undefined ? ALL_FROZEN : Object.freeze([...options.accept]);
    this.#limits = {
      maxFrame: byteLimit("maxFrame", options.maxFrame ?? DEFAULT_MAX_FRAME),
      mask: acceptMask(this.#accept),
    };
  }

  /** Bound on the decompressed body (see {@linkcode DecompressOptions.maxFrame}). */
  get maxFrame(): number {
    return this.#limits.maxFrame;
  }

  set maxFrame(value: number) {
    this.#limits.maxFrame = byteLimit("maxFrame", value);
  }

  /** Accepted algorithms (see {@linkcode DecompressOptions.accept}). */
  get accept(): readonly CompressionName[] {
    return this.#accept;
  }

  set accept(value: readonly CompressionName[]) {
    // A copy: changing the caller's array later must not change what the getter says.
    this.#accept = Object.freeze([...value]);
    this.#limits.mask = acceptMask(this.#accept);
  }

  /**
   * Passes one frame on, decompressed if its compression bits are set.
   *
   * @param frame A received frame (checksum already verified).
   * @param controller Receives the plain frame.
   * @returns Nothing, or a promise where zlib is inflated asynchronously (a
   *   web page); the frames after it must wait for it.
   * @throws {StreamwireError} `resource_exhausted` past `maxFrame`,
   *   `invalid_argument` for corrupt data, `unimplemented` for an algorithm not accepted.
   */
  transform(
    frame: Frame,
    controller: TransformStreamDefaultController<Frame>,
  ): void | Promise<void> {
    if (ASYNC_ZLIB && (frame.flags & Flag.COMPRESSION_MASK) === Compression.ZLIB) {
      return inflateLater(frame, this.#limits).then((plain) => controller.enqueue(plain));
    }
    controller.enqueue(inflate(frame, this.#limits));
  }

  /**
   * Direct input for {@linkcode composeStages}: a controller that runs this
   * stage on each chunk enqueued into it. None where zlib is inflated
   * asynchronously: {@linkcode composeStages} then calls `transform` and
   * holds later chunks while its promise runs.
   *
   * @param next Receives the stage's output.
   * @returns The controller to enqueue input into, or `undefined`.
   */
  [CONNECT](
    next: TransformStreamDefaultController<Frame>,
  ): TransformStreamDefaultController<Frame> | undefined {
    return ASYNC_ZLIB ? undefined : new DecompressorInput(next, this.#limits);
  }
}

interface InflateLimits {
  maxFrame: number;
  mask: number;
}

function inflate(frame: Frame, limits: InflateLimits): Frame {
  return frame.flags & Flag.COMPRESSION_MASK
    ? decompressWith(frame, limits.maxFrame, limits.mask)
    : frame;
}

class DecompressorInput extends StageInput<Frame, Frame> {
  #limits: InflateLimits;

  constructor(next: TransformStreamDefaultController<Frame>, limits: InflateLimits) {
    super(next);
    this.#limits = limits;
  }

  enqueue(frame: Frame): void {
    this.next.enqueue(inflate(frame, this.#limits));
  }
}

/**
 * Compression as a WHATWG `Transformer`: each frame whose payload reaches
 * `threshold` is passed on compressed with `algorithm` when that makes it
 * smaller (see {@linkcode compressFrame}). Without an algorithm frames pass
 * unchanged; both can change between frames.
 *
 * @example Compress in a loop
 * ```ts
 * import { CompressorStage, Flag, type Frame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stage = new CompressorStage();
 * const out: Frame[] = [];
 * const controller = {
 *   enqueue: (f: Frame) => void out.push(f),
 * } as TransformStreamDefaultController<Frame>;
 * const frame = { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) };
 * stage.transform(frame, controller);
 * stage.algorithm = "zstd";
 * stage.transform(frame, controller);
 * assert.deepEqual(out.map((f) => f.flags & Flag.COMPRESSION_MASK), [0, 3]);
 * ```
 */
export class CompressorStage implements Transformer<Frame, Frame> {
  #options: { algorithm: CompressionName | undefined; threshold: number };

  /**
   * Creates the stage.
   *
   * @param options Algorithm and threshold.
   * @throws {StreamwireError} `invalid_argument` for a `threshold` that is not a non-negative integer.
   */
  constructor(options: CompressOptions = {}) {
    this.#options = {
      algorithm: options.algorithm,
      threshold: byteLimit("threshold", options.threshold ?? DEFAULT_COMPRESSION_THRESHOLD),
    };
  }

  /** Algorithm to compress with, or `undefined` to pass frames unchanged. */
  get algorithm(): CompressionName | undefined {
    return this.#options.algorithm;
  }

  set algorithm(value: CompressionName | undefined) {
    this.#options.algorithm = value;
  }

  /** Smallest payload compressed, in bytes (see {@linkcode CompressOptions.threshold}). */
  get threshold(): number {
    return this.#options.threshold;
  }

  set threshold(value: number) {
    this.#options.threshold = byteLimit("threshold", value);
  }

  /**
   * Passes one frame on, compressed if worthwhile.
   *
   * @param frame An uncompressed frame.
   * @param controller Receives the frame or its compressed copy.
   */
  transform(frame: Frame, controller: TransformStreamDefaultController<Frame>): void {
    controller.enqueue(deflate(frame, this.#options));
  }

  /**
   * Direct input for {@linkcode composeStages}: a controller that runs this
   * stage on each chunk enqueued into it.
   *
   * @param next Receives the stage's output.
   * @returns The controller to enqueue input into.
   */
  [CONNECT](
    next: TransformStreamDefaultController<Frame>,
  ): TransformStreamDefaultController<Frame> {
    return new CompressorInput(next, this.#options);
  }
}

function deflate(frame: Frame, options: CompressOptions): Frame {
  return options.algorithm === undefined ? frame : compressFrame(frame, options);
}

class CompressorInput extends StageInput<Frame, Frame> {
  #options: CompressOptions;

  constructor(next: TransformStreamDefaultController<Frame>, options: CompressOptions) {
    super(next);
    this.#options = options;
  }

  enqueue(frame: Frame): void {
    this.next.enqueue(deflate(frame, this.#options));
  }
}

/**
 * Decompresses flagged payloads with a hard output bound, frame by frame.
 * After a failure, the frames before it can still be read.
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
 * const stream = ReadableStream.from([frame])
 *   .pipeThrough(new DecompressorStream({ maxFrame: 1024 }));
 * await assert.rejects(Array.fromAsync(stream), { codeName: "resource_exhausted" });
 * ```
 */
export class DecompressorStream extends StageStream<Frame, Frame> {
  #stage: DecompressorStage;

  /**
   * Creates the stream.
   *
   * @param options Bound and accepted algorithms.
   * @throws {StreamwireError} `invalid_argument` for a `maxFrame` that is not a non-negative integer.
   */
  constructor(options: DecompressOptions = {}) {
    const stage = new DecompressorStage(options);
    super(stage);
    this.#stage = stage;
  }

  /** Bound on the decompressed body (see {@linkcode DecompressOptions.maxFrame}). */
  get maxFrame(): number {
    return this.#stage.maxFrame;
  }

  set maxFrame(value: number) {
    this.#stage.maxFrame = value;
  }

  /** Accepted algorithms (see {@linkcode DecompressOptions.accept}). */
  get accept(): readonly CompressionName[] {
    return this.#stage.accept;
  }

  set accept(value: readonly CompressionName[]) {
    this.#stage.accept = value;
  }
}

/**
 * Compresses payloads above a threshold, frame by frame.
 *
 * @example Usage
 * ```ts
 * import { CompressorStream, Flag, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [frame] = await Array.fromAsync(
 *   ReadableStream.from([{ type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) }])
 *     .pipeThrough(new CompressorStream({ algorithm: "zstd" })),
 * );
 * assert.notEqual(frame.flags & Flag.COMPRESSION_MASK, 0);
 * ```
 */
export class CompressorStream extends StageStream<Frame, Frame> {
  #stage: CompressorStage;

  /**
   * Creates the stream.
   *
   * @param options Algorithm and threshold.
   */
  constructor(options: CompressOptions = {}) {
    const stage = new CompressorStage(options);
    super(stage);
    this.#stage = stage;
  }

  /** Algorithm to compress with, or `undefined` to pass frames unchanged. */
  get algorithm(): CompressionName | undefined {
    return this.#stage.algorithm;
  }

  set algorithm(value: CompressionName | undefined) {
    this.#stage.algorithm = value;
  }

  /** Smallest payload compressed, in bytes (see {@linkcode CompressOptions.threshold}). */
  get threshold(): number {
    return this.#stage.threshold;
  }

  set threshold(value: number) {
    this.#stage.threshold = value;
  }
}
