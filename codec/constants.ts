/**
 * Wire constants of protocol v1: header layout, frame types, flag bits and
 * status codes (docs/PROTOCOL.md).
 *
 * @module
 */

/** First two header bytes of every frame. */
export const MAGIC = 0xcafe;
/** Protocol version spoken by this implementation. */
export const VERSION = 1;
/** Bytes of the fixed frame header: magic, version, flags, type, length, seq, crc32. */
export const HEADER_SIZE = 17;
/**
 * Default bound on a frame body and on a decompressed payload: 16 MiB.
 * Stops a peer from making the receiver buffer or inflate without limit.
 */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
/** Largest PING payload allowed by the protocol. */
export const MAX_PING_PAYLOAD = 64;

/** Frame types (PROTOCOL.md 2). */
export const FrameType = {
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  GOAWAY: 0x05,
  REQUEST: 0x10,
  RESPONSE: 0x11,
  NOTIFY: 0x12,
  BROADCAST: 0x13,
  BATCH: 0x14,
  BATCH_RESULT: 0x15,
  OPEN: 0x20,
  DATA: 0x21,
  END: 0x22,
  CANCEL: 0x23,
  CREDIT: 0x24,
  ERROR: 0xff,
} as const;

/** A frame type code. */
export type FrameType = typeof FrameType[keyof typeof FrameType];

const KNOWN_TYPES = new Uint8Array(256);
for (const code of Object.values(FrameType)) KNOWN_TYPES[code] = 1;

/**
 * Whether `code` is a frame type of protocol v1.
 *
 * @param code The type byte of a frame header.
 * @returns `true` for the types of PROTOCOL.md 2.
 *
 * @example Usage
 * ```ts
 * import { FrameType, isFrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isFrameType(FrameType.REQUEST), true);
 * assert.equal(isFrameType(0x77), false);
 * ```
 */
export function isFrameType(code: number): code is FrameType {
  return KNOWN_TYPES[code] === 1;
}

/** Flag bits of the header's flags byte (PROTOCOL.md 1.1). */
export const Flag = {
  /** Mask of the two payload compression bits. */
  COMPRESSION_MASK: 0x03,
  /** Reserved in v1: a receiver rejects frames with it. */
  ENCRYPTED: 0x04,
  /** The body starts with an extension block. */
  EXT: 0x08,
  /** Reserved bits, must be zero. */
  RESERVED_MASK: 0xf0,
} as const;

/** Payload compression algorithms, as stored in the two low flag bits. */
export const Compression = {
  NONE: 0,
  ZLIB: 1,
  LZ4: 2,
  ZSTD: 3,
} as const;

/** A compression algorithm code. */
export type Compression = typeof Compression[keyof typeof Compression];

/** Compression algorithm names used in the handshake. */
export type CompressionName = "zlib" | "lz4" | "zstd";

/** Handshake names of the compression codes. */
export const COMPRESSION_NAMES: Readonly<Record<CompressionName, Compression>> = {
  zlib: Compression.ZLIB,
  lz4: Compression.LZ4,
  zstd: Compression.ZSTD,
};

/** Extension keys (PROTOCOL.md 1.2). */
export const ExtKey = {
  TRACEPARENT: 0x01,
  TRACESTATE: 0x02,
  TIMEOUT: 0x03,
  METADATA: 0x04,
} as const;

/** Status codes: the gRPC canonical codes (PROTOCOL.md 6). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A status code number. */
export type Status = typeof Status[keyof typeof Status];
