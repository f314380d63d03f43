/**
 * Frames to bytes: headers and CRC-32, the last stage of the encode chain,
 * as a function ({@linkcode encodeFrames}), a WHATWG `Transformer`
 * ({@linkcode FrameEncoderStage}) and a stream.
 *
 * @module
 */

import { Flag, HEADER_SIZE } from "./constants.ts";
import type { Frame } from "./frame.ts";
import { StageStream } from "./stage.ts";
import { CONNECT, StageInput } from "./_stage_input.ts";
import { isArena, RoomyFrame } from "./_arena.ts";
import { writeHeader } from "./_frame_write.ts";

/**
 * When every body sits in one buffer that an encoder allocated with exactly
 * a header's room before each body and nothing between frames (the layout
 * of {@linkcode encodeMessages}), the headers can be written in place:
 * returns that whole range, else undefined. The bytes before a caller's own
 * body view, and frames read from the wire (with `checksum` or `header`),
 * are never written.
 */
function inPlaceRange(frames: readonly Frame[]): Uint8Array | undefined {
  if (frames.length === 0) return undefined;
  const first = frames[0].body;
  const buffer = first.buffer;
  const start = first.byteOffset - HEADER_SIZE;
  if (start < 0 || !isArena(buffer)) return undefined;
  let end = start;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    if (f.checksum !== undefined || f.header !== undefined || f.body.buffer !== buffer) {
      return undefined;
    }
    if (f.body.byteOffset !== end + HEADER_SIZE) return undefined;
    end = f.body.byteOffset + f.body.length;
  }
  return new Uint8Array(buffer as ArrayBuffer, start, end - start);
}

/**
 * Encodes frames into one contiguous byte array (headers, bodies, CRC-32).
 * Frames from {@linkcode encodeMessages} get their headers written in the
 * room left before their bodies, and the result is a view of that buffer;
 * other frames are copied into a new one.
 *
 * @param frames Frames to encode; only the reserved-free flag bits are sent.
 * @returns The wire bytes of all frames, in order.
 *
 * @example Usage
 * ```ts
 * import { encodeFrames, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }]);
 * assert.equal(
 *   Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
 *   "cafe010022000000000000000598932878",
 * );
 * ```
 */
export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  const inPlace = inPlaceRange(frames);
  if (inPlace !== undefined) {
    let o = inPlace.byteOffset;
    const buf = new Uint8Array(inPlace.buffer);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      o = writeHeader(buf, o, f.type, f.flags & ~Flag.RESERVED_MASK, f.seq, f.body.length);
    }
    return inPlace;
  }
  let total = 0;
  for (let i = 0; i < frames.length; i++) total += HEADER_SIZE + frames[i].body.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    out.set(f.body, o + HEADER_SIZE);
    o = writeHeader(out, o, f.type, f.flags & ~Flag.RESERVED_MASK, f.seq, f.body.length);
  }
  return out;
}

/** Encodes one frame: in place when an encoder left room for its header, else into a copy. */
function encodeFrame(f: Frame): Uint8Array {
  const body = f.body;
  const length = body.length;
  const flags = f.flags & ~Flag.RESERVED_MASK;
  const start = body.byteOffset - HEADER_SIZE;
  if (
    RoomyFrame.hasRoom(f) ||
    (start >= 0 && f.checksum === undefined && f.header === undefined && isArena(body.buffer))
  ) {
    const buf = new Uint8Array(body.buffer as ArrayBuffer);
    writeHeader(buf, start, f.type, flags, f.seq, length);
    return buf.subarray(start, start + HEADER_SIZE + length);
  }
  const out = new Uint8Array(HEADER_SIZE + length);
  out.set(body, HEADER_SIZE);
  writeHeader(out, 0, f.type, flags, f.seq, length);
  return out;
}

/**
 * Frame encoding as a WHATWG `Transformer`: each frame is passed on as its
 * wire bytes. A frame from {@linkcode MessageEncoderStage} or
 * {@linkcode encodeMessages} gets its header written in the room before its
 * body (no copy); any other frame is copied.
 *
 * @example Encode in a loop
 * ```ts
 * import { FrameEncoderStage, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stage = new FrameEncoderStage();
 * const out: Uint8Array[] = [];
 * const controller = {
 *   enqueue: (b: Uint8Array) => void out.push(b),
 * } as TransformStreamDefaultController<Uint8Array>;
 * stage.transform({ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }, controller);
 * assert.deepEqual(out[0].subarray(0, 2), Uint8Array.of(0xca, 0xfe));
 * assert.equal(out[0].length, 17);
 * ```
 */
export class FrameEncoderStage implements Transformer<Frame, Uint8Array> {
  /**
   * Encodes one frame.
   *
   * @param frame Any frame; only the reserved-free flag bits are sent.
   * @param controller Receives the frame's wire bytes.
   */
  transform(frame: Frame, controller: TransformStreamDefaultController<Uint8Array>): void {
    controller.enqueue(encodeFrame(frame));
  }

  /**
   * Direct input for {@linkcode composeStages}: a controller that runs this
   * stage on each chunk enqueued into it.
   *
   * @param next Receives the stage's output.
   * @returns The controller to enqueue input into.
   */
  [CONNECT](
    next: TransformStreamDefaultController<Uint8Array>,
  ): TransformStreamDefaultController<Frame> {
    return new FrameEncoderInput(next);
  }
}

class FrameEncoderInput extends StageInput<Frame, Uint8Array> {
  enqueue(frame: Frame): void {
    this.next.enqueue(encodeFrame(frame));
  }
}

/**
 * Turns each frame into its wire bytes, one chunk per frame.
 *
 * @example Usage
 * ```ts
 * import { FrameEncoderStream, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [bytes] = await Array.fromAsync(
 *   ReadableStream.from([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }])
 *     .pipeThrough(new FrameEncoderStream()),
 * );
 * assert.equal(bytes.length, 17);
 * ```
 */
export class FrameEncoderStream extends StageStream<Frame, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super(new FrameEncoderStage());
  }
}
