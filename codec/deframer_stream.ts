/**
 * Bytes to frames: the first stage of the decode chain, as a synchronous
 * state machine ({@linkcode Deframer}), a WHATWG `Transformer`
 * ({@linkcode DeframerStage}) and a stream ({@linkcode DeframerStream}).
 *
 * @module
 */

import {
  DEFAULT_MAX_FRAME,
  Flag,
  HEADER_SIZE,
  isFrameType,
  MAGIC,
  Status,
  VERSION,
} from "./constants.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { StageStream } from "./stage.ts";
import { byteLimit } from "./_limits.ts";
import { CONNECT, StageInput } from "./_stage_input.ts";

/** Options of {@linkcode Deframer}, {@linkcode DeframerStage} and {@linkcode DeframerStream}. */
export interface DeframerOptions {
  /**
   * Largest accepted body length in bytes. Checked from the header alone,
   * before anything of the body is buffered, so a header declaring a huge
   * body (up to 4 GiB) makes the receiver neither allocate for it nor wait
   * for it: it fails with `resource_exhausted` at once (PROTOCOL.md 1.3).
   *
   * @default {16777216}
   */
  maxFrame?: number;
}

/**
 * Where {@linkcode Deframer.push} hands each completed frame: an array, or
 * any object with a `push` method, such as a consumer that acts on each
 * frame before the next header is read.
 */
export interface FrameSink {
  /**
   * Receives one frame, called as soon as the frame is complete.
   *
   * @param frame The frame; its body is a view into the pushed bytes.
   * @returns Ignored.
   */
  push(frame: Frame): unknown;
}

/**
 * Pieces of an incomplete frame shorter than this are copied rather than
 * kept as views: a view costs an object of its own and pins its whole buffer.
 */
const COALESCE = 4096;

function hex(n: number, width: number): string {
  return "0x" + n.toString(16).padStart(width, "0");
}

/**
 * Validates the 17-byte header at `offset` and returns its body length.
 * Throws the status code PROTOCOL.md 1.3 assigns to each violation.
 */
function checkHeader(buf: Uint8Array, offset: number, maxFrame: number): number {
  const magic = (buf[offset] << 8) | buf[offset + 1];
  if (magic !== MAGIC) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Bad magic '${hex(magic, 4)}', expected '${hex(MAGIC, 4)}'`,
    );
  }
  const version = buf[offset + 2];
  if (version !== VERSION) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `Unsupported protocol version '${version}', expected '${VERSION}'`,
    );
  }
  const flags = buf[offset + 3];
  if (flags & Flag.RESERVED_MASK) {
    throw new StreamwireError(Status.UNIMPLEMENTED, `Reserved flag bits set in '${hex(flags, 2)}'`);
  }
  if (flags & Flag.ENCRYPTED) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `ENCRYPTED flag set in '${hex(flags, 2)}' is reserved in v1`,
    );
  }
  const type = buf[offset + 4];
  if (!isFrameType(type)) {
    throw new StreamwireError(Status.UNIMPLEMENTED, `Unknown frame type '${hex(type, 2)}'`);
  }
  const length = (buf[offset + 5] * 0x1000000) +
    ((buf[offset + 6] << 16) | (buf[offset + 7] << 8) | buf[offset + 8]);
  if (length > maxFrame) {
    throw new StreamwireError(
      Status.RESOURCE_EXHAUSTED,
      `Frame length '${length}' exceeds maxFrame '${maxFrame}'`,
    );
  }
  return length;
}

function u32(buf: Uint8Array, offset: number): number {
  return (buf[offset] * 0x1000000) +
    ((buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]);
}

/**
 * The frame at `offset` in `buf`, whose bytes start at `base` in `buffer`
 * (`buf.buffer` and `buf.byteOffset`, read once per chunk: a view built
 * from them costs less than `subarray`). No `header` view: the verifier
 * rebuilds the checksummed header bytes from the fields.
 */
function frameAt(
  buf: Uint8Array,
  offset: number,
  length: number,
  buffer: ArrayBufferLike,
  base: number,
): Frame {
  return {
    type: buf[offset + 4],
    flags: buf[offset + 3],
    seq: u32(buf, offset + 9),
    body: new Uint8Array(buffer, base + offset + HEADER_SIZE, length),
    checksum: u32(buf, offset + 13),
  };
}

/** Never written: `#keep` replaces it before adding a part. */
const NO_PARTS: Uint8Array[] = [];

/**
 * The synchronous deframing state machine behind {@linkcode DeframerStage},
 * for callers that run their own read loop.
 *
 * Frames that lie wholly inside one pushed chunk are views into it (no copy);
 * a frame split across chunks is assembled once, when its last byte arrives.
 * Until then the deframer keeps views of large pieces and copies small ones
 * (pieces under 4 KiB, or under half of the buffer they view) into a buffer
 * of its own, so memory held stays within about twice what the peer actually
 * sent: a peer trickling one byte per read pins neither a read buffer nor an
 * array object per byte.
 *
 * @example Usage
 * ```ts
 * import { Deframer, type Frame } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const ping = Uint8Array.from([
 *   0xca, 0xfe, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0x3b, 0x5f, 0x3e, 0xb1,
 * ]);
 * const deframer = new Deframer();
 * const frames: Frame[] = [];
 * deframer.push(ping.subarray(0, 9), frames);
 * assert.equal(frames.length, 0);
 * deframer.push(ping.subarray(9), frames);
 * assert.equal(frames[0].seq, 5);
 * ```
 *
 * @example Lower the limit after the handshake, within one read
 * ```ts
 * import { Deframer, encodeFrames, type Frame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([
 *   { type: FrameType.HELLO, flags: 0, seq: 0, body: new TextEncoder().encode("{}") },
 *   { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(100) },
 * ]);
 * const deframer = new Deframer();
 * const seen: number[] = [];
 * assert.throws(
 *   () =>
 *     deframer.push(bytes, {
 *       push(frame: Frame) {
 *         seen.push(frame.type);
 *         if (frame.type === FrameType.HELLO) deframer.maxFrame = 64; // negotiated
 *       },
 *     }),
 *   { codeName: "resource_exhausted" },
 * );
 * assert.deepEqual(seen, [FrameType.HELLO]);
 * ```
 */
export class Deframer {
  #maxFrame: number;
  /**
   * Pieces of the incomplete frame at the end of the last chunk; the shared
   * empty list while nothing is kept, so an idle deframer holds no array.
   */
  #parts: Uint8Array[] = NO_PARTS;
  #partBytes = 0;
  /** Full size of the incomplete frame, or 0 while its header is incomplete. */
  #need = 0;
  /** Owned buffer that small pieces are copied into; its filled part is the last of `#parts`. */
  #tail: Uint8Array | undefined;
  #tailUsed = 0;

  /**
   * Creates a deframer.
   *
   * @param options Limits.
   * @throws {StreamwireError} `invalid_argument` for a `maxFrame` that is not a non-negative integer.
   */
  constructor(options: DeframerOptions = {}) {
    this.#maxFrame = byteLimit("maxFrame", options.maxFrame ?? DEFAULT_MAX_FRAME);
  }

  /** Bytes held from an incomplete frame. */
  get buffered(): number {
    return this.#partBytes;
  }

  /**
   * Largest accepted body length in bytes (see {@linkcode DeframerOptions.maxFrame}).
   * Setting it takes effect from the next header checked, even within the
   * chunk being pushed: a consumer that negotiates a smaller limit on one
   * frame has the very next frame checked against it.
   *
   * @throws {StreamwireError} `invalid_argument` when set to anything but a non-negative integer.
   */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  set maxFrame(value: number) {
    this.#maxFrame = byteLimit("maxFrame", value);
  }

  /**
   * Feeds bytes and hands each completed frame to `out`, synchronously and
   * as soon as its header and body are complete: before the header of the
   * next frame in the same chunk is validated.
   *
   * The caller must not modify `chunk` afterwards: frames are views into it.
   * If `out.push` throws, the error propagates and the rest of the chunk is
   * dropped: the byte stream is then unusable, as after a bad header.
   *
   * @param chunk Bytes as read, of any size.
   * @param out Receives the completed frames: an array, or any `{ push(frame) }`.
   * @throws {StreamwireError} On an invalid header; the frames before it were
   *   already handed to `out`, and the byte stream is unusable.
   */
  push(chunk: Uint8Array, out: FrameSink): void {
    let offset = 0;
    const n = chunk.length;
    if (this.#partBytes > 0) {
      offset = this.#continue(chunk, out);
      if (offset < 0) return;
    }
    if (n - offset < HEADER_SIZE) {
      if (offset < n) this.#keep(chunk.subarray(offset));
      return;
    }
    const buffer = chunk.buffer;
    const base = chunk.byteOffset;
    // Arrays and other consumers get a call site each: one that sees both
    // cannot be inlined, which costs a stage chain about 5% (chain_bench.ts).
    const array = Array.isArray(out) ? out as Frame[] : undefined;
    do {
      // Read on every header: `out.push` may have changed it.
      const length = checkHeader(chunk, offset, this.#maxFrame);
      const end = offset + HEADER_SIZE + length;
      if (end > n) {
        this.#need = HEADER_SIZE + length;
        break;
      }
      const frame = frameAt(chunk, offset, length, buffer, base);
      if (array !== undefined) array.push(frame);
      else out.push(frame);
      offset = end;
    } while (n - offset >= HEADER_SIZE);
    if (offset < n) this.#keep(chunk.subarray(offset));
  }

  /** Keeps a piece of the incomplete frame, as a view if that pins little memory. */
  #keep(piece: Uint8Array): void {
    const n = piece.length;
    const before = this.#partBytes;
    this.#partBytes = before + n;
    if (this.#parts === NO_PARTS) this.#parts = [];
    if (n >= COALESCE && piece.buffer.byteLength <= 2 * n) {
      this.#parts.push(piece);
      this.#tail = undefined;
      return;
    }
    let tail = this.#tail;
    if (tail === undefined || tail.length - this.#tailUsed < n) {
      // Room for what the header or frame still lacks, bounded by COALESCE
      // so that a header declaring 16 MiB allocates nothing near that.
      const lacking = (this.#need > 0 ? this.#need : HEADER_SIZE) - before;
      tail = this.#tail = new Uint8Array(Math.max(n, Math.min(COALESCE, lacking)));
      this.#tailUsed = 0;
      this.#parts.push(tail);
    }
    tail.set(piece, this.#tailUsed);
    this.#tailUsed += n;
    this.#parts[this.#parts.length - 1] = tail.subarray(0, this.#tailUsed);
  }

  /**
   * Completes the pending frame from `chunk`; returns where the rest of the
   * chunk starts, or -1 if the chunk was consumed without completing it.
   */
  #continue(chunk: Uint8Array, out: FrameSink): number {
    if (this.#need === 0) {
      // The header itself is split: gather its 17 bytes first.
      const missing = HEADER_SIZE - this.#partBytes;
      if (chunk.length < missing) {
        this.#keep(chunk);
        return -1;
      }
      const header = new Uint8Array(HEADER_SIZE);
      let at = 0;
      for (const part of this.#parts) {
        header.set(part, at);
        at += part.length;
      }
      header.set(chunk.subarray(0, missing), at);
      this.#need = HEADER_SIZE + checkHeader(header, 0, this.#maxFrame);
    }
    const need = this.#need;
    const missing = need - this.#partBytes;
    if (chunk.length < missing) {
      this.#keep(chunk);
      return -1;
    }
    const frame = new Uint8Array(need);
    let at = 0;
    for (const part of this.#parts) {
      frame.set(part, at);
      at += part.length;
    }
    frame.set(chunk.subarray(0, missing), at);
    // Reset before handing the frame over: `out.push` may push again.
    this.#parts = NO_PARTS;
    this.#partBytes = 0;
    this.#need = 0;
    this.#tail = undefined;
    out.push(frameAt(frame, 0, need - HEADER_SIZE, frame.buffer, 0));
    return missing;
  }

  /**
   * Checks that the byte stream ended on a frame boundary.
   *
   * @throws {StreamwireError} `invalid_argument` if a frame was cut off.
   */
  end(): void {
    if (this.#partBytes > 0) {
      const expected = this.#need > 0 ? `'${this.#need}'` : "a header's";
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Stream ended inside a frame: '${this.#partBytes}' bytes of ${expected}`,
      );
    }
  }
}

/** A {@linkcode FrameSink} that enqueues into a stage's controller. */
class Enqueue {
  controller: TransformStreamDefaultController<Frame> | undefined;

  push(frame: Frame): void {
    this.controller!.enqueue(frame);
  }
}

/**
 * Bytes to frames as a WHATWG `Transformer`: for `new TransformStream(stage)`,
 * for {@linkcode composeStages}, or for a read loop that calls `transform`
 * itself. Each frame is enqueued as soon as it is complete, so a later stage
 * composed after this one sees (and may lower {@linkcode DeframerStage.maxFrame}
 * on) a frame before the next header of the same chunk is checked.
 *
 * Headers are validated before any body byte is buffered (PROTOCOL.md 1.3).
 *
 * @example Deframe in a loop
 * ```ts
 * import { DeframerStage, encodeFrames, type Frame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([
 *   { type: FrameType.END, flags: 0, seq: 1, body: new Uint8Array(0) },
 *   { type: FrameType.END, flags: 0, seq: 3, body: new Uint8Array(0) },
 * ]);
 * const stage = new DeframerStage();
 * const frames: Frame[] = [];
 * const controller = {
 *   enqueue: (f: Frame) => void frames.push(f),
 * } as TransformStreamDefaultController<Frame>;
 * stage.transform(bytes.subarray(0, 20), controller);
 * stage.transform(bytes.subarray(20), controller);
 * stage.flush();
 * assert.deepEqual(frames.map((f) => f.seq), [1, 3]);
 * ```
 */
export class DeframerStage implements Transformer<Uint8Array, Frame> {
  #deframer: Deframer;
  #sink = new Enqueue();

  /**
   * Creates the stage.
   *
   * @param options Limits.
   * @throws {StreamwireError} `invalid_argument` for a `maxFrame` that is not a non-negative integer.
   */
  constructor(options: DeframerOptions = {}) {
    this.#deframer = new Deframer(options);
  }

  /**
   * Largest accepted body length in bytes; setting it takes effect from the
   * next header checked (see {@linkcode Deframer.maxFrame}).
   */
  get maxFrame(): number {
    return this.#deframer.maxFrame;
  }

  set maxFrame(value: number) {
    this.#deframer.maxFrame = value;
  }

  /** Bytes held from an incomplete frame. */
  get buffered(): number {
    return this.#deframer.buffered;
  }

  /**
   * Deframes a chunk, enqueueing each completed frame.
   *
   * @param chunk Bytes as read; frames are views into it, so it must not change afterwards.
   * @param controller Receives the frames.
   * @throws {StreamwireError} On an invalid header, after the frames before it were enqueued.
   */
  transform(chunk: Uint8Array, controller: TransformStreamDefaultController<Frame>): void {
    const sink = this.#sink;
    sink.controller = controller;
    this.#deframer.push(chunk, sink);
  }

  /**
   * Checks that the byte stream ended on a frame boundary.
   *
   * @throws {StreamwireError} `invalid_argument` if a frame was cut off.
   */
  flush(): void {
    this.#deframer.end();
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
  ): TransformStreamDefaultController<Uint8Array> {
    return new DeframerInput(next, this.#deframer);
  }
}

class DeframerInput extends StageInput<Uint8Array, Frame> implements FrameSink {
  #deframer: Deframer;

  constructor(next: TransformStreamDefaultController<Frame>, deframer: Deframer) {
    super(next);
    this.#deframer = deframer;
  }

  enqueue(chunk: Uint8Array): void {
    this.#deframer.push(chunk, this);
  }

  push(frame: Frame): void {
    this.next.enqueue(frame);
  }
}

/**
 * Splits a byte stream into frames, one frame per output chunk, for any split
 * or coalescing of reads. Headers are validated before any body byte is
 * buffered (PROTOCOL.md 1.3); after a bad header, the frames before it can
 * still be read, then the stream errors.
 *
 * @example Usage
 * ```ts
 * import { DeframerStream, encodeFrames, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([
 *   { type: FrameType.PING, flags: 0, seq: 1, body: new Uint8Array(8) },
 *   { type: FrameType.PING, flags: 0, seq: 2, body: new Uint8Array(8) },
 * ]);
 * const oneByteReads = Array.from(bytes, (b) => Uint8Array.of(b));
 * const frames = await Array.fromAsync(
 *   ReadableStream.from(oneByteReads).pipeThrough(new DeframerStream()),
 * );
 * assert.deepEqual(frames.map((f) => f.seq), [1, 2]);
 * ```
 */
export class DeframerStream extends StageStream<Uint8Array, Frame> {
  #stage: DeframerStage;

  /**
   * Creates the stream.
   *
   * @param options Limits.
   * @throws {StreamwireError} `invalid_argument` for a `maxFrame` that is not a non-negative integer.
   */
  constructor(options: DeframerOptions = {}) {
    const stage = new DeframerStage(options);
    super(stage);
    this.#stage = stage;
  }

  /**
   * Largest accepted body length in bytes; setting it takes effect from the
   * next header checked (see {@linkcode Deframer.maxFrame}).
   */
  get maxFrame(): number {
    return this.#stage.maxFrame;
  }

  set maxFrame(value: number) {
    this.#stage.maxFrame = value;
  }
}
