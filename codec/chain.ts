/**
 * Whole decode and encode chains built from options, so a transport does
 * `conn.readable.pipeThrough(createDecodeChain(options))`.
 *
 * @module
 */

import { ChecksumStream } from "./checksum_stream.ts";
import {
  type CompressOptions,
  CompressorStream,
  type DecompressOptions,
  DecompressorStream,
} from "./compression_stream.ts";
import { DeframerStream } from "./deframer_stream.ts";
import { FrameEncoderStream } from "./frame_encoder_stream.ts";
import type { Message } from "./message.ts";
import { MessageDecoderStream, MessageEncoderStream } from "./message_stream.ts";

/** Options of {@linkcode createDecodeChain}. */
export interface DecodeChainOptions extends DecompressOptions {
  /**
   * Verify each frame's CRC-32. Turning it off trusts the transport's own
   * integrity checks (TLS, for instance).
   *
   * @default {true}
   */
  verifyChecksum?: boolean;
}

/** Options of {@linkcode createEncodeChain}. */
export type EncodeChainOptions = CompressOptions;

/**
 * Composes a pair of streams: what is written to `writable` passes through
 * `stages` in order and comes out of `readable`.
 */
function compose<I, O>(
  first: TransformStream<I, unknown>,
  rest: TransformStream<unknown, unknown>[],
): ReadableWritablePair<O, I> {
  let readable: ReadableStream<unknown> = first.readable;
  for (const stage of rest) readable = readable.pipeThrough(stage);
  return { writable: first.writable, readable: readable as ReadableStream<O> };
}

/**
 * The decode chain: deframer, checksum verifier, decompressor, message
 * decoder. Each output chunk holds the messages of one input chunk.
 *
 * @param options Limits, accepted compression and checksum verification.
 * @returns A writable of bytes and a readable of message batches.
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
): ReadableWritablePair<Message[], Uint8Array> {
  const stages: TransformStream<never, unknown>[] = [];
  if (options.verifyChecksum !== false) stages.push(new ChecksumStream());
  stages.push(new DecompressorStream(options), new MessageDecoderStream());
  return compose(
    new DeframerStream(options),
    stages as unknown as TransformStream<unknown, unknown>[],
  );
}

/**
 * The encode chain: message encoder, compressor (only when an algorithm is
 * given), frame encoder. Each input batch becomes one chunk of bytes.
 *
 * @param options Compression algorithm and threshold.
 * @returns A writable of message batches and a readable of bytes.
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
): ReadableWritablePair<Uint8Array, Message[]> {
  const stages: TransformStream<never, unknown>[] = [];
  if (options.algorithm !== undefined) stages.push(new CompressorStream(options));
  stages.push(new FrameEncoderStream());
  return compose(
    new MessageEncoderStream(),
    stages as unknown as TransformStream<unknown, unknown>[],
  );
}

/**
 * Flattens a stream of batches into a stream of items, for consumers that
 * want one frame or message per chunk.
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
