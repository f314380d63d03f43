/**
 * The wire codec of protocol v1 as WHATWG `Transformer` stages, one frame or
 * message per chunk: bytes to frames ({@linkcode DeframerStage}), checksum
 * verification ({@linkcode ChecksumStage}), bounded decompression
 * ({@linkcode DecompressorStage}) and typed messages
 * ({@linkcode MessageDecoderStage}), and the way back. Each stage is also a
 * stream ({@linkcode DeframerStream} and so on); {@linkcode composeStages}
 * joins stages into one transformer, {@linkcode createDecodeStage} /
 * {@linkcode createEncodeStage} compose the whole chains from options, and
 * {@linkcode createDecodeChain} / {@linkcode createEncodeChain} make one
 * stream of them that passes a batch per read or write.
 *
 * This layer knows no sockets.
 *
 * @example Decode what was encoded
 * ```ts
 * import { createDecodeChain, createEncodeChain, FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const batches = await Array.fromAsync(
 *   ReadableStream.from([[{ type: FrameType.PING, seq: 1, payload: Uint8Array.of(7) } as const]])
 *     .pipeThrough(createEncodeChain())
 *     .pipeThrough(createDecodeChain()),
 * );
 * assert.equal(batches[0][0].type, FrameType.PING);
 * ```
 *
 * @module
 */

export * from "./constants.ts";
export * from "./error.ts";
export * from "./frame.ts";
export * from "./crc32.ts";
export * from "./deframer_stream.ts";
export * from "./checksum_stream.ts";
export * from "./compression.ts";
export * from "./compression_stream.ts";
export * from "./message.ts";
export * from "./message_encode.ts";
export * from "./message_stream.ts";
export * from "./frame_encoder_stream.ts";
export * from "./stage.ts";
export * from "./chain.ts";
export * from "./payload_codec.ts";
export * from "./struct.ts";
