/**
 * The decode chain (`createDecodeChain()`: DeframerStream, ChecksumStream,
 * DecompressorStream, MessageDecoderStream) on 10,000 REQUEST frames with
 * 64-byte params, delivered in 64 KiB reads like a socket's, against a
 * hand-fused single-loop decoder of the same bytes (baseline) and against the
 * synchronous stages (`Deframer.push`, `verifyChecksum`, `decodeMessage`)
 * called in a loop. Then the encode chain (`createEncodeChain()`) against
 * `encodeMessages` + `encodeFrames` (baseline).
 *
 * Targets: the decode chain reaches at least 70% of the fused decoder's
 * frames/s, and at least 2,000,000 frames/s.
 *
 * The fused decoder uses the same tricks as the codec's hot path (header
 * CRC in JavaScript, a method-name cache), so the ratio measures what the
 * stages and streams cost, not a difference in technique.
 *
 * `deno bench -A codec/chain_bench.ts` prints the ratios; on a shared 2-core
 * VM their means swing with garbage collections (each iteration allocates
 * about 5 MB), so compare the min column or use
 * `deno run -A codec/chain_bench.ts`, which prints frames/s (best and median
 * of 50 interleaved rounds) and the chain/fused ratios.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { verifyChecksum } from "./checksum_stream.ts";
import { createDecodeChain, createEncodeChain } from "./chain.ts";
import { FrameType, HEADER_SIZE, MAGIC, Status, VERSION } from "./constants.ts";
import { Deframer } from "./deframer_stream.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { encodeFrames } from "./frame_encoder_stream.ts";
import { type CallMessage, decodeMessage, type Message } from "./message.ts";
import { encodeMessages } from "./message_stream.ts";

const FRAMES = 10_000;
const READ_SIZE = 64 * 1024;
/** Messages per batch handed to the encoders, as a busy session would coalesce them. */
const ENCODE_BATCH = 100;
const METHODS = ["user.get", "user.list", "order.create", "order.cancel", "catalog.search"];

const MESSAGES: CallMessage[] = Array.from({ length: FRAMES }, (_, i): CallMessage => ({
  type: FrameType.REQUEST,
  seq: 2 * i + 1,
  method: METHODS[i % METHODS.length],
  params: Uint8Array.from({ length: 64 }, (_, j) => (i + j) & 0xff),
}));
const BATCHES: Message[][] = [];
for (let i = 0; i < FRAMES; i += ENCODE_BATCH) BATCHES.push(MESSAGES.slice(i, i + ENCODE_BATCH));

const BYTES = encodeFrames(encodeMessages(MESSAGES));
const READS: Uint8Array[] = [];
for (let o = 0; o < BYTES.length; o += READ_SIZE) {
  READS.push(BYTES.slice(o, Math.min(o + READ_SIZE, BYTES.length)));
}

// ---------------------------------------------------------------------------
// The hand-fused decoder: one loop per read, for this traffic (uncompressed
// call entries without extensions), with the same checks as the chain and the
// same tricks as the codec's hot path (header CRC in JavaScript, repeated
// method names from a cache), so that the ratio measures what the stages and
// streams cost, not a difference in technique.

const nativeCrc32 = (zlib as unknown as { crc32: (data: Uint8Array, value?: number) => number })
  .crc32;
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
const utf8 = new TextDecoder("utf-8", { fatal: true });

interface FusedCall {
  type: number;
  seq: number;
  method: string;
  params: Uint8Array;
}

function fail(code: number, message: string): never {
  throw new StreamwireError(code, message);
}

const cacheKeys: (Uint8Array | undefined)[] = new Array(256).fill(undefined);
const cacheNames: string[] = new Array(256).fill("");

function methodName(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  let h = 0x811c9dc5 ^ n;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], 0x01000193);
  const slot = (h ^ (h >>> 16)) & 255;
  const key = cacheKeys[slot];
  if (key !== undefined && key.length === n) {
    let i = 0;
    while (i < n && key[i] === b[start + i]) i++;
    if (i === n) return cacheNames[slot];
  }
  const bytes = b.slice(start, end);
  const name = utf8.decode(bytes);
  if (n <= 64) {
    cacheKeys[slot] = bytes;
    cacheNames[slot] = name;
  }
  return name;
}

class FusedDecoder {
  #pending: Uint8Array | undefined;

  decode(read: Uint8Array): FusedCall[] {
    let b = read;
    if (this.#pending !== undefined) {
      // Rare: a frame cut by the read boundary; join with the next read.
      const joined = new Uint8Array(this.#pending.length + read.length);
      joined.set(this.#pending);
      joined.set(read, this.#pending.length);
      b = joined;
      this.#pending = undefined;
    }
    const out: FusedCall[] = [];
    const n = b.length;
    let o = 0;
    while (n - o >= HEADER_SIZE) {
      if (((b[o] << 8) | b[o + 1]) !== MAGIC) fail(Status.INVALID_ARGUMENT, "Bad magic");
      if (b[o + 2] !== VERSION) fail(Status.UNIMPLEMENTED, "Bad version");
      const flags = b[o + 3];
      if (flags !== 0) fail(Status.UNIMPLEMENTED, "Unexpected flags");
      const type = b[o + 4];
      if (type !== FrameType.REQUEST) fail(Status.UNIMPLEMENTED, "Unexpected type");
      const length = b[o + 5] * 0x1000000 + ((b[o + 6] << 16) | (b[o + 7] << 8) | b[o + 8]);
      if (length > 16 * 1024 * 1024) fail(Status.RESOURCE_EXHAUSTED, "Too large");
      const start = o + HEADER_SIZE;
      const end = start + length;
      if (end > n) break;
      const checksum = b[o + 13] * 0x1000000 + ((b[o + 14] << 16) | (b[o + 15] << 8) | b[o + 16]);
      let crc = -1;
      for (let i = o; i < o + 13; i++) crc = CRC_TABLE[(crc ^ b[i]) & 0xff] ^ (crc >>> 8);
      if (nativeCrc32(b.subarray(start, end), ~crc >>> 0) !== checksum) {
        fail(Status.DATA_LOSS, "Checksum mismatch");
      }
      const seq = b[o + 9] * 0x1000000 + ((b[o + 10] << 16) | (b[o + 11] << 8) | b[o + 12]);
      const methodLen = (b[start] << 8) | b[start + 1];
      const paramsAt = start + 2 + methodLen;
      if (methodLen === 0 || paramsAt + 4 > end) fail(Status.INVALID_ARGUMENT, "Bad method");
      const paramsLen = b[paramsAt] * 0x1000000 +
        ((b[paramsAt + 1] << 16) | (b[paramsAt + 2] << 8) | b[paramsAt + 3]);
      if (paramsAt + 4 + paramsLen !== end) fail(Status.INVALID_ARGUMENT, "Bad params");
      out.push({
        type,
        seq,
        method: methodName(b, start + 2, paramsAt),
        params: b.subarray(paramsAt + 4, end),
      });
      o = end;
    }
    if (o < n) this.#pending = b.slice(o);
    return out;
  }
}

// ---------------------------------------------------------------------------
// The four decoders under test, each returning the number of messages.

function fused(): number {
  const decoder = new FusedDecoder();
  let count = 0;
  for (const read of READS) count += decoder.decode(read).length;
  return count;
}

function syncStages(): number {
  const deframer = new Deframer();
  let count = 0;
  for (const read of READS) {
    const frames: Frame[] = [];
    deframer.push(read, frames);
    for (let i = 0; i < frames.length; i++) {
      verifyChecksum(frames[i]);
      decodeMessage(frames[i]);
      count++;
    }
  }
  deframer.end();
  return count;
}

async function chain(): Promise<number> {
  const reader = ReadableStream.from(READS).pipeThrough(createDecodeChain()).getReader();
  let count = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return count;
    count += value.length;
  }
}

function encodeSync(): number {
  let bytes = 0;
  for (const batch of BATCHES) bytes += encodeFrames(encodeMessages(batch)).length;
  return bytes;
}

async function encodeChain(): Promise<number> {
  const reader = ReadableStream.from(BATCHES).pipeThrough(createEncodeChain()).getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.length;
  }
}

// Same results before anything is measured.
{
  const expected = MESSAGES.map(({ type, seq, method, params }) => ({ type, seq, method, params }));
  const decoder = new FusedDecoder();
  assert.deepEqual(READS.flatMap((read) => decoder.decode(read)), expected);
  const decoded = await Array.fromAsync(
    ReadableStream.from(READS).pipeThrough(createDecodeChain()),
  );
  assert.deepEqual(decoded.flat(), MESSAGES);
  assert.equal(syncStages(), FRAMES);
  assert.equal(await encodeChain(), BYTES.length);
  assert.equal(encodeSync(), BYTES.length);
}

const DECODE = `decode ${FRAMES} REQUEST frames (64 B params) in 64 KiB reads`;
const ENCODE = `encode ${FRAMES} REQUEST frames in batches of ${ENCODE_BATCH}`;

// Warm up every row, interleaved, before any is measured: whichever row ran
// first would otherwise pay for JIT tiering and heap growth (measured 1.5x).
for (let round = 0; round < 30; round++) {
  for (const fn of [fused, chain, syncStages, encodeSync, encodeChain]) await fn();
}

function bench(
  group: string,
  name: string,
  fn: () => number | Promise<number>,
  baseline = false,
): void {
  Deno.bench({
    group,
    name,
    baseline,
    // Many samples: each iteration allocates about 5 MB, and the collections
    // that triggers land in some of them.
    n: 300,
    async fn() {
      await fn();
    },
  });
}

bench(DECODE, "hand-fused decoder", fused, true);
bench(DECODE, "createDecodeChain() stream chain", chain);
bench(DECODE, "sync stages: Deframer + verifyChecksum + decodeMessage", syncStages);
bench(ENCODE, "encodeMessages + encodeFrames", encodeSync, true);
bench(ENCODE, "createEncodeChain() stream chain", encodeChain);

if (import.meta.main) {
  // Self-timed, rows interleaved so that a noisy neighbour hits them alike;
  // frames/s of the best and of the median round, collections included.
  const rows: [string, () => number | Promise<number>][] = [
    ["decode: hand-fused (baseline)", fused],
    ["decode: createDecodeChain()", chain],
    ["decode: sync stages", syncStages],
    ["encode: encodeMessages + encodeFrames (baseline)", encodeSync],
    ["encode: createEncodeChain()", encodeChain],
  ];
  const times: number[][] = rows.map(() => []);
  for (let round = 0; round < 50; round++) {
    for (let r = 0; r < rows.length; r++) {
      const start = performance.now();
      await rows[r][1]();
      times[r].push(performance.now() - start);
    }
  }
  const best = times.map((t) => FRAMES / (Math.min(...t) / 1000));
  const median = times.map((t) => FRAMES / (t.sort((a, b) => a - b)[t.length >> 1] / 1000));
  const m = (rate: number) => `${(rate / 1e6).toFixed(2)} M`;
  console.log(`${"".padEnd(50)}   best   median  (frames/s)`);
  rows.forEach(([name], r) => console.log(`${name.padEnd(50)} ${m(best[r])}  ${m(median[r])}`));
  const pct = (a: number[], i: number, j: number) =>
    `${(a[i] / a[j] * 100).toFixed(0)}% (median ${(median[i] / median[j] * 100).toFixed(0)}%)`;
  console.log(`decode chain / fused: ${pct(best, 1, 0)}`);
  console.log(`sync stages / fused:  ${pct(best, 2, 0)}`);
  console.log(`encode chain / sync:  ${pct(best, 4, 3)}`);
}
