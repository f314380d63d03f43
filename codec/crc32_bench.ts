/**
 * CRC-32 of PROTOCOL.md 1: `node:zlib`'s native `crc32` (what
 * `codec/crc32.ts` uses) against the JavaScript slicing-by-8 table of
 * `codec/_crc32_js.ts` (baseline), at a frame header (13 B), a small body
 * (64 B), 4 KiB and 1 MiB; and the range variant the checksum stage uses for
 * headers and short bodies.
 *
 * `deno bench -A codec/crc32_bench.ts` prints the ratios;
 * `deno run -A codec/crc32_bench.ts` prints GB/s for each row.
 *
 * @module
 */

import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { crc32Js, crc32JsRange } from "./_crc32_js.ts";

const SIZES: [label: string, bytes: number][] = [
  ["13 B (header)", 13],
  ["64 B", 64],
  ["4 KiB", 4096],
  ["1 MiB", 1 << 20],
];

const IMPLEMENTATIONS: [name: string, fn: (data: Uint8Array, initial?: number) => number][] = [
  ["JS slicing-by-8", crc32Js],
  ["node:zlib crc32", crc32],
  // What ChecksumStream and writeHeader use for the 13 header bytes and
  // bodies under 32 bytes: slicing-by-8 over a range, without a subarray.
  ["JS range (crc32JsRange)", (data, initial) => crc32JsRange(data, 0, data.length, initial)],
];

function input(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff);
}

for (const [label, size] of SIZES) {
  const data = input(size);
  assert.equal(crc32(data), crc32Js(data));
  for (const [name, fn] of IMPLEMENTATIONS) {
    Deno.bench({
      group: `crc32 ${label}`,
      name,
      baseline: fn === crc32Js,
      n: size >= 1 << 20 ? 200 : undefined,
      fn() {
        fn(data);
      },
    });
  }
}

if (import.meta.main) {
  // Self-timed: enough iterations for about 200 ms per row, best of 5.
  for (const [label, size] of SIZES) {
    const data = input(size);
    const row: string[] = [];
    for (const [name, fn] of IMPLEMENTATIONS) {
      const iterations = Math.max(50, Math.ceil(40e6 / Math.max(size, 64)));
      let best = Infinity;
      for (let round = 0; round < 5; round++) {
        const start = performance.now();
        for (let i = 0; i < iterations; i++) fn(data, i);
        best = Math.min(best, (performance.now() - start) / iterations);
      }
      row.push(`${name}: ${(size / best / 1e6).toFixed(2)} GB/s (${(best * 1e6).toFixed(0)} ns)`);
    }
    console.log(`${label.padEnd(14)} ${row.join("  |  ")}`);
  }
}
