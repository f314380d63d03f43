/**
 * CRC-32 verification of received frames (PROTOCOL.md 1).
 *
 * @module
 */

import { Status } from "./constants.ts";
import { crc32 } from "./crc32.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/**
 * Checks a received frame's CRC-32: `crc32(body, crc32(header[0..13]))`.
 * Frames without `header` (built locally, not read) pass unchecked.
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
  const { header } = frame;
  if (header === undefined) return;
  const actual = crc32(frame.body, crc32(header.subarray(0, 13)));
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
        for (let i = 0; i < frames.length; i++) verifyChecksum(frames[i]);
        controller.enqueue(frames);
      },
    });
  }
}
