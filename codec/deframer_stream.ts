/**
 * Bytes to frames: the first stage of the decode chain.
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

/** Options of {@linkcode Deframer} and {@linkcode DeframerStream}. */
export interface DeframerOptions {
  /**
   * Largest accepted body length in bytes. Checked from the header alone,
   * before anything of the body is buffered, so a peer cannot make the
   * receiver hold more than one frame's worth of what it actually sent.
   *
   * @default {16777216}
   */
  maxFrame?: number;
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
 * The frame at `offset`. No `header` view: the verifier reads the header
 * bytes in place, right before `body` (a typed array fewer per frame).
 */
function frameAt(buf: Uint8Array, offset: number, length: number): Frame {
  const bodyStart = offset + HEADER_SIZE;
  return {
    type: buf[offset + 4],
    flags: buf[offset + 3],
    seq: u32(buf, offset + 9),
    body: buf.subarray(bodyStart, bodyStart + length),
    checksum: u32(buf, offset + 13),
  };
}

/**
 * The synchronous deframing state machine behind {@linkcode DeframerStream},
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
 */
export class Deframer {
  #maxFrame: number;
  /** Pieces of the incomplete frame at the end of the last chunk. */
  #parts: Uint8Array[] = [];
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
   */
  constructor(options: DeframerOptions = {}) {
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  /** Bytes held from an incomplete frame. */
  get buffered(): number {
    return this.#partBytes;
  }

  /**
   * Feeds bytes and appends every completed frame to `out`.
   *
   * The caller must not modify `chunk` afterwards: frames are views into it.
   *
   * @param chunk Bytes as read, of any size.
   * @param out Receives the completed frames.
   * @throws {StreamwireError} On an invalid header; the byte stream is then unusable.
   */
  push(chunk: Uint8Array, out: Frame[]): void {
    let offset = 0;
    const n = chunk.length;
    if (this.#partBytes > 0) {
      offset = this.#continue(chunk, out);
      if (offset < 0) return;
    }
    const maxFrame = this.#maxFrame;
    while (n - offset >= HEADER_SIZE) {
      const length = checkHeader(chunk, offset, maxFrame);
      const end = offset + HEADER_SIZE + length;
      if (end > n) {
        this.#need = HEADER_SIZE + length;
        break;
      }
      out.push(frameAt(chunk, offset, length));
      offset = end;
    }
    if (offset < n) this.#keep(chunk.subarray(offset));
  }

  /** Keeps a piece of the incomplete frame, as a view if that pins little memory. */
  #keep(piece: Uint8Array): void {
    const n = piece.length;
    const before = this.#partBytes;
    this.#partBytes = before + n;
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
  #continue(chunk: Uint8Array, out: Frame[]): number {
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
    const missing = this.#need - this.#partBytes;
    if (chunk.length < missing) {
      this.#keep(chunk);
      return -1;
    }
    const frame = new Uint8Array(this.#need);
    let at = 0;
    for (const part of this.#parts) {
      frame.set(part, at);
      at += part.length;
    }
    frame.set(chunk.subarray(0, missing), at);
    out.push(frameAt(frame, 0, this.#need - HEADER_SIZE));
    this.#parts = [];
    this.#partBytes = 0;
    this.#need = 0;
    this.#tail = undefined;
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

/**
 * Splits a byte stream into frames, for any split or coalescing of reads.
 *
 * Each output chunk is the array of all frames completed by one input chunk,
 * so later stages pay their per-chunk cost once per read, not once per frame.
 * Headers are validated before any body byte is buffered (PROTOCOL.md 1.3).
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
 * const batches = await Array.fromAsync(
 *   ReadableStream.from(oneByteReads).pipeThrough(new DeframerStream()),
 * );
 * assert.deepEqual(batches.flat().map((f) => f.seq), [1, 2]);
 * ```
 */
export class DeframerStream extends TransformStream<Uint8Array, Frame[]> {
  /**
   * Creates the stream.
   *
   * @param options Limits.
   */
  constructor(options: DeframerOptions = {}) {
    const deframer = new Deframer(options);
    super({
      transform(chunk, controller) {
        const frames: Frame[] = [];
        try {
          deframer.push(chunk, frames);
        } catch (error) {
          if (frames.length === 0) throw error;
          // Erroring a stream drops what it still holds: hand the frames
          // that came before the bad header to a reader that keeps up, and
          // fail one macrotask later.
          controller.enqueue(frames);
          return new Promise((_, reject) => setTimeout(() => reject(error), 0));
        }
        if (frames.length > 0) controller.enqueue(frames);
      },
      flush() {
        deframer.end();
      },
    });
  }
}
