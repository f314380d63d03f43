/**
 * CRC-32 verification of received frames (PROTOCOL.md 1), as a function
 * ({@linkcode verifyChecksum}), a WHATWG `Transformer`
 * ({@linkcode ChecksumStage}) and a stream ({@linkcode ChecksumStream}).
 *
 * @module
 */

import { Status } from "./constants.ts";
import { crc32 } from "./crc32.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { StageStream } from "./stage.ts";
import { CONNECT, StageInput } from "./_stage_input.ts";
import { crc32Header, crc32JsRange } from "./_crc32_js.ts";

/**
 * Bodies shorter than this are checksummed in JavaScript: below about 110
 * bytes the slicing-by-8 loop beats a native call and the view it needs
 * (35 ns against 143 ns at 32 bytes, 87 against 107 at 96, 110 against 65
 * at 128; Deno 2.9.6, codec/crc32_bench.ts).
 */
const SHORT_BODY = 112;

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/**
 * Checks a received frame's CRC-32: `crc32(body, crc32(header[0..13]))`.
 * The header bytes are `frame.header` if given, else rebuilt from the
 * frame's fields, as {@linkcode Deframer} read them. Frames with neither
 * `checksum` nor `header` (built locally, not read) pass unchecked.
 *
 * @param frame A frame from {@linkcode Deframer} or {@linkcode DeframerStream}.
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
  const header = frame.header;
  let expected = frame.checksum;
  let crc: number;
  if (header !== undefined) {
    crc = crc32JsRange(header, 0, 13);
    expected ??= ((header[13] << 24) | (header[14] << 16) | (header[15] << 8) | header[16]) >>> 0;
  } else if (expected !== undefined) {
    // Magic and version were checked by the deframer; the rest are fields.
    crc = crc32Header(frame.flags, frame.type, frame.body.length, frame.seq);
  } else {
    return;
  }
  // Short bodies cost less in JavaScript than a native call (codec/crc32_bench.ts).
  const body = frame.body;
  const actual = body.length < SHORT_BODY
    ? crc32JsRange(body, 0, body.length, crc)
    : crc32(body, crc);
  if (actual !== expected) {
    throw new StreamwireError(
      Status.DATA_LOSS,
      `Checksum mismatch on frame seq '${frame.seq}': header says '${hex32(expected)}', computed '${
        hex32(actual)
      }'`,
    );
  }
}

/**
 * CRC-32 verification as a WHATWG `Transformer`, for {@linkcode composeStages},
 * `new TransformStream(stage)` or a loop: passes each frame on after
 * {@linkcode verifyChecksum}, and throws `data_loss` on a mismatch.
 *
 * @example Verify frames in a loop
 * ```ts
 * import { ChecksumStage, type Frame, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stage = new ChecksumStage();
 * const out: Frame[] = [];
 * const controller = {
 *   enqueue: (f: Frame) => void out.push(f),
 * } as TransformStreamDefaultController<Frame>;
 * const good = { type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0), checksum: 0x98932878 };
 * stage.transform(good, controller);
 * assert.throws(() => stage.transform({ ...good, seq: 7 }, controller), { codeName: "data_loss" });
 * assert.equal(out.length, 1);
 * ```
 */
export class ChecksumStage implements Transformer<Frame, Frame> {
  /**
   * Verifies one frame and passes it on.
   *
   * @param frame A received frame.
   * @param controller Receives the frame if its checksum matches.
   * @throws {StreamwireError} `data_loss` on a mismatch.
   */
  transform(frame: Frame, controller: TransformStreamDefaultController<Frame>): void {
    verifyChecksum(frame);
    controller.enqueue(frame);
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
    return new ChecksumInput(next);
  }
}

class ChecksumInput extends StageInput<Frame, Frame> {
  enqueue(frame: Frame): void {
    verifyChecksum(frame);
    this.next.enqueue(frame);
  }
}

/**
 * Verifies the CRC-32 of every frame passing through; a mismatch errors the
 * stream with `data_loss`, since the byte stream can no longer be trusted.
 * The good frames before the bad one can still be read first.
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
 * assert.equal(frames[0].seq, 5);
 * ```
 */
export class ChecksumStream extends StageStream<Frame, Frame> {
  /** Creates the stream. */
  constructor() {
    super(new ChecksumStage());
  }
}
