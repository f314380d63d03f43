/**
 * Frames to typed messages and back, batch by batch.
 *
 * @module
 */

import { Flag, HEADER_SIZE } from "./constants.ts";
import type { Frame } from "./frame.ts";
import { decodeMessage, encodedBodySize, type Message, writeMessageBody } from "./message.ts";

/**
 * Decodes every frame of each batch into a typed {@linkcode Message}.
 * A malformed body errors the stream with `invalid_argument`.
 *
 * @example Usage
 * ```ts
 * import { encodeMessage, FrameType, MessageDecoderStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeMessage({ type: FrameType.CREDIT, seq: 3, credit: 64 });
 * const [[message]] = await Array.fromAsync(
 *   ReadableStream.from([[frame]]).pipeThrough(new MessageDecoderStream()),
 * );
 * assert.deepEqual(message, { type: FrameType.CREDIT, seq: 3, credit: 64 });
 * ```
 */
export class MessageDecoderStream extends TransformStream<Frame[], Message[]> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(frames, controller) {
        const messages: Message[] = new Array(frames.length);
        for (let i = 0; i < frames.length; i++) messages[i] = decodeMessage(frames[i]);
        controller.enqueue(messages);
      },
    });
  }
}

/**
 * Encodes a batch of messages into frames whose bodies share one buffer,
 * allocated once per batch, with room for each frame's header in front of
 * its body.
 *
 * @param messages Messages to encode.
 * @returns One uncompressed frame per message.
 *
 * @example Usage
 * ```ts
 * import { encodeMessages, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = encodeMessages([
 *   { type: FrameType.CREDIT, seq: 1, credit: 8 },
 *   { type: FrameType.END, seq: 1 },
 * ]);
 * assert.equal(a.body.length, 4);
 * assert.equal(b.body.buffer, a.body.buffer);
 * ```
 */
export function encodeMessages(messages: readonly Message[]): Frame[] {
  const sizes = new Array<number>(messages.length);
  let total = 0;
  for (let i = 0; i < messages.length; i++) {
    sizes[i] = encodedBodySize(messages[i]);
    total += HEADER_SIZE + sizes[i];
  }
  const arena = new Uint8Array(total);
  const frames: Frame[] = new Array(messages.length);
  let o = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const start = o + HEADER_SIZE;
    o = writeMessageBody(m, arena, start);
    frames[i] = {
      type: m.type,
      flags: m.ext ? Flag.EXT : 0,
      seq: m.seq,
      body: arena.subarray(start, o),
    };
  }
  return frames;
}

/**
 * Encodes each batch of messages into a batch of frames.
 *
 * @example Usage
 * ```ts
 * import { FrameType, MessageEncoderStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [[frame]] = await Array.fromAsync(
 *   ReadableStream.from([[{ type: FrameType.END, seq: 9 } as const]])
 *     .pipeThrough(new MessageEncoderStream()),
 * );
 * assert.equal(frame.seq, 9);
 * ```
 */
export class MessageEncoderStream extends TransformStream<Message[], Frame[]> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(messages, controller) {
        if (messages.length > 0) controller.enqueue(encodeMessages(messages));
      },
    });
  }
}
