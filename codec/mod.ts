/**
 * The wire codec of protocol v1 as composable WHATWG streams: bytes to
 * frames ({@linkcode DeframerStream}), checksum verification
 * ({@linkcode ChecksumStream}), bounded decompression
 * ({@linkcode DecompressorStream}) and typed messages
 * ({@linkcode MessageDecoderStream}), and the way back. Every stage passes
 * batches (all frames of one read), and {@linkcode createDecodeChain} /
 * {@linkcode createEncodeChain} compose them from options.
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
export * from "./message_stream.ts";
export * from "./frame_encoder_stream.ts";
export * from "./stage.ts";
export * from "./chain.ts";
export * from "./payload_codec.ts";
export * from "./struct.ts";
