// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) in JavaScript with
// slicing-by-8 tables. Kept as the portable fallback and as the measured
// alternative to node:zlib's native crc32 (codec/crc32_bench.ts).

import { MAGIC, VERSION } from "./constants.ts";

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0][n];
    for (let t = 1; t < 8; t++) {
      c = tables[0][c & 0xff] ^ (c >>> 8);
      tables[t][n] = c >>> 0;
    }
  }
  return tables;
})();

/** CRC-32 of `data`, continuing from `initial` (the CRC of the preceding bytes). */
export function crc32Js(data: Uint8Array, initial = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let crc = ~initial >>> 0;
  let i = 0;
  const end8 = data.length - 8;
  for (; i <= end8; i += 8) {
    const a = (crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>>
      0;
    crc = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < data.length; i++) crc = t0[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/**
 * CRC-32 of `data[start..end)`, continuing from `initial`, without a
 * subarray: for short ranges such as the 13 checksummed header bytes, where
 * it beats a native call (codec/crc32_bench.ts).
 */
export function crc32JsRange(data: Uint8Array, start: number, end: number, initial = 0): number {
  const t0 = T0, t1 = T1, t2 = T2, t3 = T3, t4 = T4, t5 = T5, t6 = T6, t7 = T7;
  let crc = ~initial;
  let i = start;
  for (; i <= end - 8; i += 8) {
    const a = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    crc = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < end; i++) crc = t0[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * CRC-32 of the 13 checksummed bytes of a frame header (PROTOCOL.md 1:
 * magic, version, flags, type, length, seq), from the field values rather
 * than from bytes in a buffer. Magic and version are the constants of v1.
 */
export function crc32Header(flags: number, type: number, length: number, seq: number): number {
  let c = T0[(AFTER_PREFIX ^ flags) & 0xff] ^ (AFTER_PREFIX >>> 8);
  c = T0[(c ^ type) & 0xff] ^ (c >>> 8);
  // Length and seq four bytes at a time (slicing-by-4), most significant
  // byte first as on the wire.
  let a = c ^ byteSwap(length);
  c = T3[a & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T1[(a >>> 16) & 0xff] ^ T0[a >>> 24];
  a = c ^ byteSwap(seq);
  c = T3[a & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T1[(a >>> 16) & 0xff] ^ T0[a >>> 24];
  return ~c >>> 0;
}

function byteSwap(x: number): number {
  return (x >>> 24) | ((x >>> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24);
}

/** The CRC register (not inverted) after magic and version, the start of every v1 header. */
const AFTER_PREFIX = [MAGIC >>> 8, MAGIC & 0xff, VERSION].reduce(
  (c, byte) => T0[(c ^ byte) & 0xff] ^ (c >>> 8),
  ~0,
);
