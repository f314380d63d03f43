/**
 * A bounded decoder for the LZ4 frame format (LZ4 Frame Format Description
 * v1.6) and the LZ4 block format it carries.
 *
 * Decoders that trust the frame (lz4-napi's, for one) decode without an
 * output bound, so a small hostile frame could make them allocate gigabytes.
 * This decoder reads hostile input in two passes: the first walks every
 * header and sequence token, checking each length against the input, and so
 * learns the exact decoded size without writing anything; only if that size
 * fits `maxOutput` is the output allocated, once, and the second pass
 * decodes into it, checking every match offset.
 *
 * The encoder is in `_lz4_compress.ts`.
 *
 * @module
 */

import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";

/** Frame magic number, read little-endian (bytes `04 22 4D 18`). */
const FRAME_MAGIC = 0x184d2204;
/** Skippable frames use the magics 0x184D2A50..0x184D2A5F. */
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Legacy frames (lz4 -l) have no header checksum nor end mark: not supported. */
const LEGACY_MAGIC = 0x184c2102;

/** xxHash32 primes. */
const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

/** Below this many bytes a plain loop beats `set`/`copyWithin` (measured). */
const SHORT_COPY = 32;

/** What the first pass learns about one frame. */
interface FrameInfo {
  /** Offset of the first block header. */
  blocks: number;
  /** Offset just past the frame. */
  end: number;
  /** Block maximum size from the BD byte. */
  blockMax: number;
  /** Blocks may not reference earlier blocks (FLG bit 5). */
  independent: boolean;
  /** Each block is followed by its xxHash32 (FLG bit 4). */
  blockChecksum: boolean;
  /** The end mark is followed by the xxHash32 of the content (FLG bit 2). */
  contentChecksum: boolean;
  /** Decoded size, from walking the blocks. */
  size: number;
}

/**
 * The error for output past the cap, shared by every algorithm so that peers
 * see one message.
 *
 * @param maxOutput The cap that was reached.
 * @returns A `resource_exhausted` error quoting the cap.
 */
export function payloadTooLarge(maxOutput: number): StreamwireError {
  return new StreamwireError(
    Status.RESOURCE_EXHAUSTED,
    `Decompressed payload exceeds maxFrame '${maxOutput}'`,
  );
}

function corrupt(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, `Invalid LZ4 payload: ${message}`);
}

function u32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * xxHash32 of `b[start..end)`, the checksum of the LZ4 frame format.
 *
 * @param b Bytes to hash.
 * @param start First byte.
 * @param end One past the last byte.
 * @param seed Hash seed; the frame format uses 0.
 * @returns The 32-bit hash, unsigned.
 */
export function xxh32(b: Uint8Array, start: number, end: number, seed = 0): number {
  let i = start;
  let h: number;
  if (end - start >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (const last = end - 16; i <= last; i += 16) {
      v1 = Math.imul(rotl(v1 + Math.imul(u32(b, i), P2), 13), P1);
      v2 = Math.imul(rotl(v2 + Math.imul(u32(b, i + 4), P2), 13), P1);
      v3 = Math.imul(rotl(v3 + Math.imul(u32(b, i + 8), P2), 13), P1);
      v4 = Math.imul(rotl(v4 + Math.imul(u32(b, i + 12), P2), 13), P1);
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
  } else {
    h = seed + P5;
  }
  h = (h + end - start) | 0;
  for (; i + 4 <= end; i += 4) h = Math.imul(rotl(h + Math.imul(u32(b, i), P3), 17), P4);
  for (; i < end; i++) h = Math.imul(rotl(h + Math.imul(b[i], P5), 11), P1);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Decodes a payload made of LZ4 frames (and skippable frames) into at most
 * `maxOutput` bytes.
 *
 * A truncated payload, a malformed header or sequence length, or a payload
 * that decodes past `maxOutput` fails before any output is allocated; bad
 * match offsets and checksum mismatches are found while decoding.
 *
 * @param input The compressed payload.
 * @param maxOutput Largest decoded size accepted.
 * @returns The decoded bytes.
 * @throws {StreamwireError} `resource_exhausted` past `maxOutput`,
 * `invalid_argument` for anything that is not a valid frame.
 */
export function decodeLz4(input: Uint8Array, maxOutput: number): Uint8Array {
  if (input.length === 0) throw corrupt("empty payload");
  const frames: FrameInfo[] = [];
  let total = 0;
  for (let pos = 0; pos < input.length;) {
    if (input.length - pos < 4) throw corrupt(`'${input.length - pos}' stray bytes at '${pos}'`);
    const magic = u32(input, pos);
    if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
      if (input.length - pos < 8) throw corrupt(`truncated skippable frame at '${pos}'`);
      const end = pos + 8 + u32(input, pos + 4);
      if (end > input.length) throw corrupt(`truncated skippable frame at '${pos}'`);
      pos = end;
      continue;
    }
    if (magic !== FRAME_MAGIC) {
      const hex = magic.toString(16).padStart(8, "0");
      throw corrupt(
        magic === LEGACY_MAGIC
          ? `legacy frame format is not supported`
          : `bad magic '0x${hex}' at '${pos}'`,
      );
    }
    const frame = readFrame(input, pos, total, maxOutput);
    frames.push(frame);
    total += frame.size;
    pos = frame.end;
  }
  const out = new Uint8Array(total);
  let op = 0;
  for (const frame of frames) op = decodeFrame(input, frame, out, op);
  return out;
}

/**
 * Validates the frame at `start` and measures its decoded size, failing as
 * soon as `used` plus that size passes `maxOutput`.
 */
function readFrame(input: Uint8Array, start: number, used: number, maxOutput: number): FrameInfo {
  const n = input.length;
  const d = start + 4;
  if (d + 3 > n) throw corrupt(`truncated frame header at '${start}'`);
  const flg = input[d];
  const bd = input[d + 1];
  if (flg >>> 6 !== 1) throw corrupt(`unsupported frame version '${flg >>> 6}'`);
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw corrupt(`reserved header bits are set`);
  if ((flg & 0x01) !== 0) throw corrupt(`dictionary frames are not supported`);
  const sizeId = (bd >>> 4) & 7;
  if (sizeId < 4) throw corrupt(`bad block maximum size id '${sizeId}'`);
  // Ids 4..7 are 64 KiB, 256 KiB, 1 MiB and 4 MiB.
  const blockMax = 1 << (2 * sizeId + 8);
  const hasSize = (flg & 0x08) !== 0;
  const hcPos = d + 2 + (hasSize ? 8 : 0);
  if (hcPos >= n) throw corrupt(`truncated frame header at '${start}'`);
  // Past 2^53 the sum loses precision but stays far above any cap.
  const contentSize = hasSize ? u32(input, d + 2) + u32(input, d + 6) * 2 ** 32 : -1;
  const hc = (xxh32(input, d, hcPos) >>> 8) & 0xff;
  if (hc !== input[hcPos]) {
    throw corrupt(`header checksum '${input[hcPos]}' does not match '${hc}'`);
  }
  // A declared size is checked before reading on.
  if (used + contentSize > maxOutput) throw payloadTooLarge(maxOutput);

  const blockChecksum = (flg & 0x10) !== 0;
  const blocks = hcPos + 1;
  let size = 0;
  let p = blocks;
  for (;;) {
    if (p + 4 > n) throw corrupt(`truncated frame: no end mark`);
    const word = u32(input, p);
    p += 4;
    if (word === 0) break;
    const stored = word & 0x7fffffff;
    if (stored > blockMax) {
      throw corrupt(`block size '${stored}' exceeds block maximum '${blockMax}'`);
    }
    const end = p + stored;
    if (end + (blockChecksum ? 4 : 0) > n) throw corrupt(`truncated block`);
    // Bit 31 marks a block stored uncompressed.
    size += word >>> 31 ? stored : measureBlock(input, p, end, blockMax);
    // Stops a bomb after the first block past the cap, before any output.
    if (used + size > maxOutput) throw payloadTooLarge(maxOutput);
    p = end + (blockChecksum ? 4 : 0);
  }
  const contentChecksum = (flg & 0x04) !== 0;
  if (contentChecksum) {
    p += 4;
    if (p > n) throw corrupt(`truncated content checksum`);
  }
  if (hasSize && contentSize !== size) {
    throw corrupt(`content size '${contentSize}' does not match the blocks' '${size}'`);
  }
  return {
    blocks,
    end: p,
    blockMax,
    independent: (flg & 0x20) !== 0,
    blockChecksum,
    contentChecksum,
    size,
  };
}

/**
 * Reads the sequence tokens and lengths of a block without decoding it.
 *
 * A block is a run of sequences: a token (literal length in the high nibble,
 * match length - 4 in the low one, 15 meaning "more bytes follow, each added,
 * until one is not 255"), the literals, a 2-byte little-endian offset and the
 * match length bytes. The last sequence has literals only.
 *
 * @returns The decoded size of `src[ip..end)`, at most `blockMax`.
 */
function measureBlock(src: Uint8Array, ip: number, end: number, blockMax: number): number {
  let size = 0;
  for (;;) {
    const token = src[ip++];
    let length = token >>> 4;
    if (length === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt(`truncated literal length`);
        b = src[ip++];
        length += b;
      } while (b === 255);
    }
    ip += length;
    size += length;
    if (ip > end) throw corrupt(`literal length '${length}' overruns the block`);
    if (ip === end) break;
    ip += 2;
    if (ip >= end) throw corrupt(`block ends with a match, not literals`);
    length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt(`truncated match length`);
        b = src[ip++];
        length += b;
      } while (b === 255);
      if (ip >= end) throw corrupt(`block ends with a match, not literals`);
    }
    size += length + 4;
    // Also bounds the walk of a block made of 0xFF length bytes.
    if (size > blockMax) break;
  }
  if (size > blockMax) throw corrupt(`block decodes past the block maximum '${blockMax}'`);
  return size;
}

/** Decodes the blocks of one frame into `out` from `op`; returns the new end. */
function decodeFrame(input: Uint8Array, f: FrameInfo, out: Uint8Array, op: number): number {
  const frameStart = op;
  let p = f.blocks;
  for (;;) {
    const word = u32(input, p);
    p += 4;
    if (word === 0) break;
    const end = p + (word & 0x7fffffff);
    if (f.blockChecksum && xxh32(input, p, end) !== u32(input, end)) {
      throw corrupt(`block checksum mismatch at '${p}'`);
    }
    if (word >>> 31) {
      // Stored block: the frame format's answer to incompressible data.
      out.set(input.subarray(p, end), op);
      op += end - p;
    } else {
      const limit = Math.min(op + f.blockMax, out.length);
      op = decodeBlock(input, p, end, out, op, f.independent ? op : frameStart, limit);
    }
    p = end + (f.blockChecksum ? 4 : 0);
  }
  if (f.contentChecksum && xxh32(out, frameStart, op) !== u32(input, p)) {
    throw corrupt(`content checksum mismatch`);
  }
  return op;
}

/**
 * Decodes one block, `src[ip..end)`, into `dst` from `op` (see
 * {@linkcode measureBlock} for the layout). Lengths were checked by
 * `measureBlock` and are checked again, so that this loop stands on its own.
 *
 * @param low Lowest output position a match may reach back to.
 * @param limit Output position the block may not pass.
 * @returns The output position after the block.
 */
function decodeBlock(
  src: Uint8Array,
  ip: number,
  end: number,
  dst: Uint8Array,
  op: number,
  low: number,
  limit: number,
): number {
  for (;;) {
    const token = src[ip++];
    let length = token >>> 4;
    if (length === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt(`truncated literal length`);
        b = src[ip++];
        length += b;
      } while (b === 255);
    }
    if (length !== 0) {
      const litEnd = ip + length;
      if (litEnd > end || op + length > limit) throw corrupt(`bad literal length '${length}'`);
      if (length < SHORT_COPY) {
        while (ip < litEnd) dst[op++] = src[ip++];
      } else {
        dst.set(src.subarray(ip, litEnd), op);
        ip = litEnd;
        op += length;
      }
    }
    if (ip === end) return op;

    if (ip + 2 > end) throw corrupt(`truncated match offset`);
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    // 0 is invalid; past `low` would read before the block (or frame) start.
    if (offset === 0 || offset > op - low) throw corrupt(`bad match offset '${offset}'`);
    length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt(`truncated match length`);
        b = src[ip++];
        length += b;
      } while (b === 255);
    }
    length += 4;
    const matchEnd = op + length;
    if (matchEnd > limit) throw corrupt(`bad match length '${length}'`);
    let from = op - offset;
    if (length < SHORT_COPY) {
      // Byte by byte also repeats the pattern right when the match overlaps.
      while (op < matchEnd) dst[op++] = dst[from++];
    } else if (offset >= length) {
      dst.copyWithin(op, from, from + length);
      op = matchEnd;
    } else if (offset === 1) {
      dst.fill(dst[from], op, matchEnd);
      op = matchEnd;
    } else {
      // Overlapping: the output repeats with period `offset`. Copy whole
      // periods from `from`, doubling what is available at each step.
      while (op < matchEnd) {
        const n = Math.min(matchEnd - op, op - from);
        dst.copyWithin(op, from, from + n);
        op += n;
      }
    }
    if (ip >= end) throw corrupt(`block ends with a match, not literals`);
  }
}
