/**
 * CRC-32 verification of received frames (PROTOCOL.md 1).
 *
 * @module
 */

import { HEADER_SIZE, Status } from "./constants.ts";
import { crc32 } from "./crc32.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { crc32JsRange } from "./_crc32_js.ts";

/** Bodies shorter than this are checksummed in JavaScript. */
const SHORT_BODY = 32;

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/**
 * Checks a received frame's CRC-32: `crc32(body, crc32(header[0..13]))`.
 * The header bytes are `frame.header` if given, else the 17 bytes right
 * before `body` in its buffer, where {@linkcode Deframer} leaves them.
 * Frames with neither `checksum` nor `header` (built locally, not read) pass
 * unchecked.
 *
 * @param frame A frame from {@linkcode DeframerStream}.
 * @throws {StreamwireError} `data_loss` on a mismatch.
 *
 * @example Usage
 * ```ts
 * import { Deframer, encodeFrames, FrameType, verifyChecksum, type Frame } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }]);
 * bytes[16] ^= 1;
 * const frames: Frame[] = [];
 * new Deframer().push(bytes, frames);
 * assert.throws(() => verifyChecksum(frames[0]), { codeName: "data_loss" });
 * ```
 */
export function verifyChecksum(frame: Frame): void {
  if (frame.header !== undefined) check(frame, frame.header, 0);
  else if (frame.checksum !== undefined) {
    const body = frame.body;
    check(frame, new Uint8Array(body.buffer), body.byteOffset - HEADER_SIZE);
  }
}

/** Verifies a batch; frames of one read share a buffer, and one view of it. */
function verifyChecksums(frames: readonly Frame[]): void {
  let buffer: ArrayBufferLike | undefined;
  let bytes: Uint8Array | undefined;
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i];
    if (frame.header !== undefined) check(frame, frame.header, 0);
    else if (frame.checksum !== undefined) {
      const body = frame.body;
      if (body.buffer !== buffer) {
        buffer = body.buffer;
        bytes = new Uint8Array(buffer);
      }
      check(frame, bytes!, body.byteOffset - HEADER_SIZE);
    }
  }
}

/**
 * Checks `frame` against the 13 checksummed header bytes at `at` in `bytes`.
 * Those and short bodies cost less in JavaScript than a native call
 * (codec/crc32_bench.ts).
 */
function check(frame: Frame, bytes: Uint8Array, at: number): void {
  const body = frame.body;
  const crc = crc32JsRange(bytes, at, at + 13);
  const actual = body.length < SHORT_BODY
    ? crc32JsRange(body, 0, body.length, crc)
    : crc32(body, crc);
  if (actual !== frame.checksum) {
    throw new StreamwireError(
      Status.DATA_LOSS,
      `Checksum mismatch on frame seq '${frame.seq}': header says '${
        hex32(frame.checksum ?? 0)
      }', computed '${hex32(actual)}'`,
    );
  }
}

/**
 * Verifies the CRC-32 of every frame passing through; a mismatch errors the
 * stream with `data_loss`, since the byte stream can no longer be trusted.
 *
 * @example Usage
 * ```ts
 * import { ChecksumStream, DeframerStream, encodeFrames, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }]);
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([bytes]).pipeThrough(new DeframerStream()).pipeThrough(new ChecksumStream()),
 * );
 * assert.equal(frames.flat()[0].seq, 5);
 * ```
 */
export class ChecksumStream extends TransformStream<Frame[], Frame[]> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(frames, controller) {
        verifyChecksums(frames);
        controller.enqueue(frames);
      },
    });
  }
}
