/**
 * Whole decode and encode chains built from options: per-frame stages
 * composed into one WHATWG `Transformer` ({@linkcode createDecodeStage},
 * {@linkcode createEncodeStage}), and one stream over them that passes a
 * batch per read or write ({@linkcode createDecodeChain},
 * {@linkcode createEncodeChain}), so a transport does
 * `conn.readable.pipeThrough(createDecodeChain(options))`.
 *
 * @module
 */

import { ChecksumStage } from "./checksum_stream.ts";
import type { CompressionName } from "./constants.ts";
import {
  type CompressOptions,
  CompressorStage,
  type DecompressOptions,
  DecompressorStage,
} from "./compression_stream.ts";
import { DeframerStage } from "./deframer_stream.ts";
import type { Frame } from "./frame.ts";
import { encodeFrames, FrameEncoderStage } from "./frame_encoder_stream.ts";
import type { Message } from "./message.ts";
import {
  encodeMessages,
  type MessageDecoderOptions,
  MessageDecoderStage,
  MessageEncoderStage,
} from "./message_stream.ts";
import { composeStages, type Stage, StageStream } from "./stage.ts";

/** Options of {@linkcode createDecodeStage} and {@linkcode createDecodeChain}. */
export interface DecodeChainOptions extends DecompressOptions, MessageDecoderOptions {
  /**
   * Largest accepted body length in bytes, on the wire and decompressed.
   * A header declaring more fails before anything of its body is buffered,
   * and a payload inflating past it stops there (PROTOCOL.md 1.3).
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Verify each frame's CRC-32. Turning it off trusts the transport's own
   * integrity checks (TLS, for instance).
   *
   * @default {true}
   */
  verifyChecksum?: boolean;
}

/** Options of {@linkcode createEncodeStage} and {@linkcode createEncodeChain}. */
export type EncodeChainOptions = CompressOptions;

/**
 * The composed decode stage of {@linkcode createDecodeStage}: bytes in, one
 * message per frame out, with the limits of its stages settable between
 * chunks or from within a consumer of its messages.
 */
export interface DecodeStage extends Transformer<Uint8Array, Message> {
  /**
   * Largest body length, on the wire and decompressed; setting it takes
   * effect from the next header checked, even within the current chunk.
   */
  maxFrame: number;
  /** Accepted compression algorithms. */
  accept: readonly CompressionName[];
  /** Most BATCH entries built. */
  maxBatchEntries: number;
  /**
   * Decodes one chunk of bytes, enqueueing one message per frame completed.
   *
   * @param chunk Bytes as read; messages may be views into it.
   * @param controller Receives the messages.
   * @returns Nothing where every stage is synchronous (Deno, Node); in a
   *   web page a promise while a zlib payload inflates, which the next
   *   chunk must wait for.
   */
  transform(
    chunk: Uint8Array,
    controller: TransformStreamDefaultController<Message>,
  ): void | Promise<void>;
  /**
   * Checks that the byte stream ended on a frame boundary.
   *
   * @param controller The stream's controller.
   * @returns Nothing, or a promise as for `transform`.
   */
  flush(controller: TransformStreamDefaultController<Message>): void | Promise<void>;
}

class ComposedDecodeStage implements DecodeStage {
  #deframer: DeframerStage;
  #decompressor: DecompressorStage;
  #decoder: MessageDecoderStage;
  #composed: Stage<Uint8Array, Message>;

  constructor(options: DecodeChainOptions) {
    this.#deframer = new DeframerStage(options);
    this.#decompressor = new DecompressorStage(options);
    this.#decoder = new MessageDecoderStage(options);
    this.#composed = options.verifyChecksum === false
      ? composeStages(this.#deframer, this.#decompressor, this.#decoder)
      : composeStages(this.#deframer, new ChecksumStage(), this.#decompressor, this.#decoder);
  }

  get maxFrame(): number {
    return this.#deframer.maxFrame;
  }

  set maxFrame(value: number) {
    this.#deframer.maxFrame = value;
    this.#decompressor.maxFrame = value;
  }

  get accept(): readonly CompressionName[] {
    return this.#decompressor.accept;
  }

  set accept(value: readonly CompressionName[]) {
    this.#decompressor.accept = value;
  }

  get maxBatchEntries(): number {
    return this.#decoder.maxBatchEntries;
  }

  set maxBatchEntries(value: number) {
    this.#decoder.maxBatchEntries = value;
  }

  transform(
    chunk: Uint8Array,
    controller: TransformStreamDefaultController<Message>,
  ): void | Promise<void> {
    return this.#composed.transform!(chunk, controller) as void | Promise<void>;
  }

  flush(controller: TransformStreamDefaultController<Message>): void | Promise<void> {
    return this.#composed.flush!(controller) as void | Promise<void>;
  }
}

/**
 * The decode stages composed into one WHATWG `Transformer`: deframer,
 * checksum verifier (unless `verifyChecksum` is false), decompressor and
 * message decoder ({@linkcode DeframerStage}, {@linkcode ChecksumStage},
 * {@linkcode DecompressorStage}, {@linkcode MessageDecoderStage}). Each frame
 * goes through all of them before the next header is read, so a consumer of
 * the messages may change the limits for the very next frame.
 *
 * @param options Limits, accepted compression and checksum verification.
 * @returns The stage, for a loop, {@linkcode StageStream} or `new TransformStream()`.
 * @throws {StreamwireError} `invalid_argument` for a limit that is not a non-negative integer.
 *
 * @example Decode in a read loop, lowering maxFrame after the handshake
 * ```ts
 * import { createDecodeStage, encodeMessages, encodeFrames, FrameType, type Message } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrames(encodeMessages([
 *   { type: FrameType.HELLO, seq: 0, hello: { maxFrame: 64 } },
 *   { type: FrameType.DATA, seq: 1, data: new Uint8Array(100) },
 * ]));
 * const stage = createDecodeStage();
 * const seen: Message[] = [];
 * const controller = {
 *   enqueue(message: Message) {
 *     seen.push(message);
 *     if (message.type === FrameType.HELLO) stage.maxFrame = message.hello.maxFrame as number;
 *   },
 * } as TransformStreamDefaultController<Message>;
 * assert.throws(() => stage.transform(bytes, controller), { codeName: "resource_exhausted" });
 * assert.deepEqual(seen.map((m) => m.type), [FrameType.HELLO]);
 * ```
 */
export function createDecodeStage(options: DecodeChainOptions = {}): DecodeStage {
  return new ComposedDecodeStage(options);
}

/**
 * The encode stages composed into one WHATWG `Transformer`: message encoder,
 * compressor (only when an algorithm is given) and frame encoder
 * ({@linkcode MessageEncoderStage}, {@linkcode CompressorStage},
 * {@linkcode FrameEncoderStage}). Each message becomes one chunk of bytes.
 *
 * @param options Compression algorithm and threshold.
 * @returns The stage, for a loop, {@linkcode StageStream} or `new TransformStream()`.
 * @throws {StreamwireError} `invalid_argument` for a `threshold` that is not a non-negative integer.
 *
 * @example One stream, one chunk per message
 * ```ts
 * import { createEncodeStage, FrameType, type Message, StageStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const chunks = await Array.fromAsync(
 *   ReadableStream.from<Message>([{ type: FrameType.END, seq: 1 }, { type: FrameType.END, seq: 3 }])
 *     .pipeThrough(new StageStream(createEncodeStage())),
 * );
 * assert.deepEqual(chunks.map((c) => c.length), [17, 17]);
 * ```
 */
export function createEncodeStage(options: EncodeChainOptions = {}): Stage<Message, Uint8Array> {
  return options.algorithm === undefined
    ? composeStages(new MessageEncoderStage(), new FrameEncoderStage())
    : composeStages(
      new MessageEncoderStage(),
      new CompressorStage(options),
      new FrameEncoderStage(),
    );
}

/**
 * The controller a stage writes into while it handles one chunk: gathers
 * what it enqueues, to be passed on as one array.
 */
class Gather<T> implements TransformStreamDefaultController<T> {
  items: T[] = [];
  outer: TransformStreamDefaultController<unknown> | undefined;

  get desiredSize(): number | null {
    return this.outer?.desiredSize ?? 1;
  }

  enqueue(item: T): void {
    this.items.push(item);
  }

  error(reason?: unknown): void {
    throw reason;
  }

  terminate(): void {
    this.outer?.terminate();
  }

  /** Takes what was gathered so far. */
  take(): T[] {
    const items = this.items;
    if (items.length > 0) this.items = [];
    return items;
  }
}

/**
 * Runs a per-item stage over a whole input chunk and passes on everything it
 * produced as one array, also what it produced before failing.
 */
class Batched<I, O> implements Transformer<I, O[]> {
  #stage: Stage<I, O>;
  #gather = new Gather<O>();

  constructor(stage: Stage<I, O>) {
    this.#stage = stage;
  }

  transform(chunk: I, controller: TransformStreamDefaultController<O[]>): void | Promise<void> {
    const gather = this.#gather;
    gather.outer = controller;
    let held: void | PromiseLike<void>;
    try {
      held = this.#stage.transform!(chunk, gather);
    } finally {
      this.#emit(controller);
    }
    // An asynchronous stage (zlib in a web page): what it and the chunks
    // behind it produce is one more batch, once it is done.
    if (held !== undefined) return Promise.resolve(held).finally(() => this.#emit(controller));
  }

  flush(controller: TransformStreamDefaultController<O[]>): void | Promise<void> {
    const gather = this.#gather;
    gather.outer = controller;
    let held: void | PromiseLike<void>;
    try {
      held = this.#stage.flush?.(gather);
    } finally {
      this.#emit(controller);
    }
    if (held !== undefined) return Promise.resolve(held).finally(() => this.#emit(controller));
  }

  #emit(controller: TransformStreamDefaultController<O[]>): void {
    const items = this.#gather.take();
    if (items.length > 0) controller.enqueue(items);
  }
}

/**
 * Encodes each batch of messages with {@linkcode encodeMessages} (one buffer
 * with room for every header), passes each frame through the per-frame
 * stages between message and frame encoding (the compressor), and writes
 * the headers with {@linkcode encodeFrames}, in place when no frame was
 * compressed: one buffer and no copy per batch.
 */
class EncodeBatches implements Transformer<readonly Message[], Uint8Array> {
  #frames: Stage<Frame, Frame> | undefined;
  #gather = new Gather<Frame>();

  constructor(frames: Stage<Frame, Frame> | undefined) {
    this.#frames = frames;
  }

  transform(
    messages: readonly Message[],
    controller: TransformStreamDefaultController<Uint8Array>,
  ): void {
    if (messages.length === 0) return;
    let frames = encodeMessages(messages);
    const stage = this.#frames;
    if (stage !== undefined) {
      const gather = this.#gather;
      gather.outer = controller;
      try {
        for (let i = 0; i < frames.length; i++) stage.transform!(frames[i], gather);
      } finally {
        frames = gather.take();
      }
    }
    controller.enqueue(encodeFrames(frames));
  }
}

/**
 * The decode chain as one stream over {@linkcode createDecodeStage}: each
 * output chunk holds the messages of one input chunk, so a reader pays the
 * stream's cost once per read, not once per frame. After a malformed frame,
 * the messages before it can still be read, then the stream errors.
 *
 * @param options Limits, accepted compression and checksum verification.
 * @returns A stream of bytes to message batches.
 * @throws {StreamwireError} `invalid_argument` for a limit that is not a non-negative integer.
 *
 * @example Usage
 * ```ts
 * import { createDecodeChain, createEncodeChain, FrameType, type Message } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const messages: Message[] = [
 *   { type: FrameType.REQUEST, seq: 1, method: "echo", params: Uint8Array.of(1, 2, 3) },
 *   { type: FrameType.END, seq: 1 },
 * ];
 * const decoded = await Array.fromAsync(
 *   ReadableStream.from([messages])
 *     .pipeThrough(createEncodeChain())
 *     .pipeThrough(createDecodeChain()),
 * );
 * assert.deepEqual(decoded.flat(), messages);
 * ```
 */
export function createDecodeChain(
  options: DecodeChainOptions = {},
): StageStream<Uint8Array, Message[]> {
  return new StageStream(new Batched(createDecodeStage(options)));
}

/**
 * The encode chain as one stream: message encoder, compressor (only when an
 * algorithm is given), frame encoder. Each input batch becomes one chunk of
 * bytes, so a batch costs one write downstream.
 *
 * @param options Compression algorithm and threshold.
 * @returns A stream of message batches to bytes.
 * @throws {StreamwireError} `invalid_argument` for a `threshold` that is not a non-negative integer.
 *
 * @example Usage
 * ```ts
 * import { createEncodeChain, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const [bytes] = await Array.fromAsync(
 *   ReadableStream.from([[{ type: FrameType.END, seq: 5 } as const]])
 *     .pipeThrough(createEncodeChain()),
 * );
 * assert.equal(bytes.length, 17);
 * ```
 */
export function createEncodeChain(
  options: EncodeChainOptions = {},
): StageStream<readonly Message[], Uint8Array> {
  const frames = options.algorithm === undefined ? undefined : new CompressorStage(options);
  return new StageStream(new EncodeBatches(frames));
}

/**
 * Flattens a stream of batches into a stream of items, for consumers that
 * want one message per chunk from {@linkcode createDecodeChain}.
 *
 * @example Usage
 * ```ts
 * import { UnbatchStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const items = await Array.fromAsync(
 *   ReadableStream.from([[1, 2], [3]]).pipeThrough(new UnbatchStream<number>()),
 * );
 * assert.deepEqual(items, [1, 2, 3]);
 * ```
 */
export class UnbatchStream<T> extends TransformStream<readonly T[], T> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(batch, controller) {
        for (let i = 0; i < batch.length; i++) controller.enqueue(batch[i]);
      },
    });
  }
}
