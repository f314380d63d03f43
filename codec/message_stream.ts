/**
 * Frames to typed messages and back: functions for batches
 * ({@linkcode encodeMessages}), WHATWG `Transformer`s
 * ({@linkcode MessageDecoderStage}, {@linkcode MessageEncoderStage}) and
 * streams, one message per chunk.
 *
 * @module
 */

import { Flag, HEADER_SIZE } from "./constants.ts";
import type { Frame } from "./frame.ts";
import {
  decodeMessage,
  type DecodeMessageOptions,
  encodedBodySize,
  type Message,
  writeMessageBody,
} from "./message.ts";
import { StageStream } from "./stage.ts";
import { CONNECT, StageInput } from "./_stage_input.ts";
import { markArena, RoomyFrame } from "./_arena.ts";
import { countLimit } from "./_limits.ts";

/** Default of {@linkcode MessageDecoderOptions.maxBatchEntries}: 1,024 entries. */
export const DEFAULT_MAX_BATCH_ENTRIES = 1024;

/** Options of {@linkcode MessageDecoderStage} and {@linkcode MessageDecoderStream}. */
export interface MessageDecoderOptions extends DecodeMessageOptions {
  /**
   * Most BATCH entries built. A BATCH declaring more is passed on with
   * `entries: []` and `declared` set to its count, for the receiver to
   * refuse with `resource_exhausted`: a 16 MiB frame can declare over two
   * million entries of 7 bytes each, hundreds of megabytes as objects, and
   * none of them is allocated. The default is the RPC layer's default
   * `maxBatchSize`; `Infinity` builds every entry.
   *
   * @default {1024}
   */
  maxBatchEntries?: number;
}

/**
 * Message decoding as a WHATWG `Transformer`: each frame (uncompressed) is
 * passed on as a typed {@linkcode Message}; a malformed body throws
 * `invalid_argument`.
 *
 * @example Decode in a loop
 * ```ts
 * import { encodeMessage, FrameType, type Message, MessageDecoderStage } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stage = new MessageDecoderStage({ maxBatchEntries: 1 });
 * const out: Message[] = [];
 * const controller = {
 *   enqueue: (m: Message) => void out.push(m),
 * } as TransformStreamDefaultController<Message>;
 * const entries = [{ method: "a", params: new Uint8Array(0) }, { method: "b", params: new Uint8Array(0) }];
 * stage.transform(encodeMessage({ type: FrameType.BATCH, seq: 1, entries }), controller);
 * assert.deepEqual(out[0], { type: FrameType.BATCH, seq: 1, entries: [], declared: 2 });
 * ```
 */
export class MessageDecoderStage implements Transformer<Frame, Message> {
  #options: { maxBatchEntries: number };

  /**
   * Creates the stage.
   *
   * @param options Bound on the BATCH entries built.
   * @throws {StreamwireError} `invalid_argument` for a `maxBatchEntries` that is not a
   *   non-negative integer or `Infinity`.
   */
  constructor(options: MessageDecoderOptions = {}) {
    this.#options = {
      maxBatchEntries: countLimit(
        "maxBatchEntries",
        options.maxBatchEntries ?? DEFAULT_MAX_BATCH_ENTRIES,
      ),
    };
  }

  /** Most BATCH entries built (see {@linkcode MessageDecoderOptions.maxBatchEntries}). */
  get maxBatchEntries(): number {
    return this.#options.maxBatchEntries;
  }

  set maxBatchEntries(value: number) {
    this.#options.maxBatchEntries = countLimit("maxBatchEntries", value);
  }

  /**
   * Decodes one frame.
   *
   * @param frame A frame whose compression bits are 0.
   * @param controller Receives the message.
   * @throws {StreamwireError} `invalid_argument` for a malformed body.
   */
  transform(frame: Frame, controller: TransformStreamDefaultController<Message>): void {
    controller.enqueue(decodeMessage(frame, this.#options));
  }

  /**
   * Direct input for {@linkcode composeStages}: a controller that runs this
   * stage on each chunk enqueued into it.
   *
   * @param next Receives the stage's output.
   * @returns The controller to enqueue input into.
   */
  [CONNECT](
    next: TransformStreamDefaultController<Message>,
  ): TransformStreamDefaultController<Frame> {
    return new MessageDecoderInput(next, this.#options);
  }
}

class MessageDecoderInput extends StageInput<Frame, Message> {
  #options: DecodeMessageOptions;

  constructor(next: TransformStreamDefaultController<Message>, options: DecodeMessageOptions) {
    super(next);
    this.#options = options;
  }

  enqueue(frame: Frame): void {
    this.next.enqueue(decodeMessage(frame, this.#options));
  }
}

/**
 * Decodes every frame into a typed {@linkcode Message}, one per chunk. A
 * malformed body errors the stream with `invalid_argument`, after the
 * messages before it were read.
 *
 * @example Usage
 * ```ts
 * import { encodeMessage, FrameType, MessageDecoderStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeMessage({ type: FrameType.CREDIT, seq: 3, credit: 64 });
 * const [message] = await Array.fromAsync(
 *   ReadableStream.from([frame]).pipeThrough(new MessageDecoderStream()),
 * );
 * assert.deepEqual(message, { type: FrameType.CREDIT, seq: 3, credit: 64 });
 * ```
 */
export class MessageDecoderStream extends StageStream<Frame, Message> {
  #stage: MessageDecoderStage;

  /**
   * Creates the stream.
   *
   * @param options Bound on the BATCH entries built.
   * @throws {StreamwireError} `invalid_argument` for a bad `maxBatchEntries`.
   */
  constructor(options: MessageDecoderOptions = {}) {
    const stage = new MessageDecoderStage(options);
    super(stage);
    this.#stage = stage;
  }

  /** Most BATCH entries built (see {@linkcode MessageDecoderOptions.maxBatchEntries}). */
  get maxBatchEntries(): number {
    return this.#stage.maxBatchEntries;
  }

  set maxBatchEntries(value: number) {
    this.#stage.maxBatchEntries = value;
  }
}

/**
 * Encodes a batch of messages into frames whose bodies share one buffer,
 * allocated once per batch, with room for each frame's header in front of
 * its body, so that {@linkcode encodeFrames} writes the headers in place.
 *
 * @param messages Messages to encode.
 * @param bodySizes Their {@linkcode encodedBodySize}s, when the caller has
 *   them already (a queue that measured each message as it accepted it).
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
export function encodeMessages(
  messages: readonly Message[],
  bodySizes?: readonly number[],
): Frame[] {
  let total = 0;
  if (bodySizes === undefined) {
    for (let i = 0; i < messages.length; i++) total += HEADER_SIZE + encodedBodySize(messages[i]);
  } else {
    for (let i = 0; i < bodySizes.length; i++) total += HEADER_SIZE + bodySizes[i];
  }
  const arena = new Uint8Array(total);
  markArena(arena.buffer);
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
 * Message encoding as a WHATWG `Transformer`: each message is passed on as
 * an uncompressed frame whose body has a header's room before it, so that
 * {@linkcode FrameEncoderStage} writes the header in place instead of
 * copying the body.
 *
 * @example Encode in a loop
 * ```ts
 * import { type Frame, FrameType, MessageEncoderStage } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stage = new MessageEncoderStage();
 * const out: Frame[] = [];
 * const controller = {
 *   enqueue: (f: Frame) => void out.push(f),
 * } as TransformStreamDefaultController<Frame>;
 * stage.transform({ type: FrameType.CREDIT, seq: 3, credit: 64 }, controller);
 * assert.deepEqual(out[0].body, Uint8Array.of(0, 0, 0, 64));
 * ```
 */
export class MessageEncoderStage implements Transformer<Message, Frame> {
  /**
   * Encodes one message.
   *
   * @param message Any message.
   * @param controller Receives the frame.
   * @throws {StreamwireError} `invalid_argument` for a message that cannot be encoded.
   */
  transform(message: Message, controller: TransformStreamDefaultController<Frame>): void {
    controller.enqueue(encodeWithRoom(message));
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
  ): TransformStreamDefaultController<Message> {
    return new MessageEncoderInput(next);
  }
}

/** One message as a frame whose body has a header's room before it. */
function encodeWithRoom(message: Message): Frame {
  const size = encodedBodySize(message);
  const buffer = new Uint8Array(HEADER_SIZE + size);
  writeMessageBody(message, buffer, HEADER_SIZE);
  return new RoomyFrame(
    message.type,
    message.ext ? Flag.EXT : 0,
    message.seq,
    buffer.subarray(HEADER_SIZE),
  );
}

class MessageEncoderInput extends StageInput<Message, Frame> {
  enqueue(message: Message): void {
    this.next.enqueue(encodeWithRoom(message));
  }
}

/**
 * Encodes each message into a frame, one per chunk.
 *
 * @example Usage
 * ```ts
 * import { FrameType, MessageEncoderStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [frame] = await Array.fromAsync(
 *   ReadableStream.from([{ type: FrameType.END, seq: 9 } as const])
 *     .pipeThrough(new MessageEncoderStream()),
 * );
 * assert.equal(frame.seq, 9);
 * ```
 */
export class MessageEncoderStream extends StageStream<Message, Frame> {
  /** Creates the stream. */
  constructor() {
    super(new MessageEncoderStage());
  }
}
