/**
 * The decode chain on 10,000 REQUEST frames with 64-byte params, delivered
 * in 64 KiB reads like a socket's, in one group: a hand-fused single-loop
 * decoder of the same bytes (baseline), `createDecodeChain()` (the composed
 * per-frame stages in one `TransformStream`, a batch of messages per read)
 * piped from `ReadableStream.from` and written and read directly, the
 * composed stage `createDecodeStage()` driven by a plain loop, and the
 * synchronous functions a session calls (`Deframer.push`, `verifyChecksum`,
 * `decodeMessage`). Then the encode side: `encodeMessages` + `encodeFrames`
 * (baseline) against `createEncodeChain()` and against the composed
 * per-message stage `createEncodeStage()` in a loop.
 *
 * Target: the decode chain at least 90% of the fused decoder's frames/s.
 *
 * The fused decoder uses the same tricks as the codec's hot path (header
 * CRC in JavaScript, a method-name cache), so the ratio measures what the
 * stages and the stream cost, not a difference in technique.
 *
 * `deno bench -A codec/chain_bench.ts` prints the ratios; on a shared 2-core
 * VM their means swing with garbage collections (each iteration allocates
 * about 5 MB), so compare the min column or use
 * `deno run -A codec/chain_bench.ts`, which prints frames/s (best and median
 * of interleaved rounds), the ratios, and the heap each idle decode chain
 * holds, as one stream and as four piped ones.
 *
 * @module
 */

import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import * as zlib from "node:zlib";
import { ChecksumStream, verifyChecksum } from "./checksum_stream.ts";
import {
  createDecodeChain,
  createDecodeStage,
  createEncodeChain,
  createEncodeStage,
} from "./chain.ts";
import { DecompressorStream } from "./compression_stream.ts";
import { FrameType, HEADER_SIZE, MAGIC, Status, VERSION } from "./constants.ts";
import { Deframer, DeframerStream } from "./deframer_stream.ts";
import { StreamwireError } from "./error.ts";
import type { Frame } from "./frame.ts";
import { encodeFrames } from "./frame_encoder_stream.ts";
import { type CallMessage, decodeMessage, type Message } from "./message.ts";
import { encodeMessages, MessageDecoderStream } from "./message_stream.ts";
import { crc32Header, crc32JsRange } from "./_crc32_js.ts";

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
// same tricks as the codec's hot path (header CRC from the fields in
// JavaScript, body views built from the read's buffer, repeated method names
// from a cache), so that the ratio measures what the stages and streams
// cost, not a difference in technique.

const nativeCrc32 = (zlib as unknown as { crc32: (data: Uint8Array, value?: number) => number })
  .crc32;
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
    const buffer = b.buffer;
    const base = b.byteOffset;
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
      const seq = b[o + 9] * 0x1000000 + ((b[o + 10] << 16) | (b[o + 11] << 8) | b[o + 12]);
      const crc = crc32Header(flags, type, length, seq);
      // The same split as the stages: JavaScript for short bodies, native past them.
      const actual = length < 112
        ? crc32JsRange(b, start, end, crc)
        : nativeCrc32(new Uint8Array(buffer, base + start, length), crc);
      if (actual !== checksum) {
        fail(Status.DATA_LOSS, "Checksum mismatch");
      }
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
// The rows, each returning the number of messages (decode) or bytes (encode).

function fused(): number {
  const decoder = new FusedDecoder();
  let count = 0;
  for (const read of READS) count += decoder.decode(read).length;
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

/**
 * The same stream written and read directly, as a read loop that hands its
 * reads over would: without the pipe from `ReadableStream.from`, which costs
 * about 6 µs per read on this machine whatever the transform does.
 */
async function chainWritten(): Promise<number> {
  const stream = createDecodeChain();
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  let count = 0;
  for (const read of READS) {
    writer.write(read);
    const { value } = await reader.read();
    count += value!.length;
  }
  await writer.close();
  return count;
}

/** The composed stage in a loop, a batch of messages per read like the chain. */
function stageLoop(): number {
  const stage = createDecodeStage();
  let batch: Message[] = [];
  const controller = {
    enqueue: (message: Message) => void batch.push(message),
  } as TransformStreamDefaultController<Message>;
  let count = 0;
  for (const read of READS) {
    stage.transform(read, controller);
    count += batch.length;
    batch = [];
  }
  stage.flush(controller);
  return count;
}

function syncFunctions(): number {
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

/** The composed per-message stage in a loop: one chunk of bytes per message. */
function encodeStageLoop(): number {
  const stage = createEncodeStage();
  let bytes = 0;
  const controller = {
    enqueue: (chunk: Uint8Array) => void (bytes += chunk.length),
  } as TransformStreamDefaultController<Uint8Array>;
  for (const batch of BATCHES) {
    for (let i = 0; i < batch.length; i++) stage.transform!(batch[i], controller);
  }
  return bytes;
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
  assert.equal(await chainWritten(), FRAMES);
  assert.equal(stageLoop(), FRAMES);
  assert.equal(syncFunctions(), FRAMES);
  assert.equal(await encodeChain(), BYTES.length);
  assert.equal(encodeSync(), BYTES.length);
  assert.equal(encodeStageLoop(), BYTES.length);
}

const DECODE = `decode ${FRAMES} REQUEST frames (64 B params) in 64 KiB reads`;
const ENCODE = `encode ${FRAMES} REQUEST frames in batches of ${ENCODE_BATCH}`;

const ROWS: [group: string, name: string, fn: () => number | Promise<number>, baseline?: true][] = [
  [DECODE, "hand-fused decoder", fused, true],
  [DECODE, "createDecodeChain(): one TransformStream, piped", chain],
  [DECODE, "createDecodeChain(): one TransformStream, written and read", chainWritten],
  [DECODE, "createDecodeStage() driven by a loop", stageLoop],
  [DECODE, "functions: Deframer.push + verifyChecksum + decodeMessage", syncFunctions],
  [ENCODE, "encodeMessages + encodeFrames", encodeSync, true],
  [ENCODE, "createEncodeChain(): one TransformStream", encodeChain],
  [ENCODE, "createEncodeStage() driven by a loop, a chunk per message", encodeStageLoop],
];

// Warm up every row, interleaved, before any is measured: whichever row ran
// first would otherwise pay for JIT tiering and heap growth (measured 1.5x).
for (let round = 0; round < 30; round++) {
  for (const [, , fn] of ROWS) await fn();
}

for (const [group, name, fn, baseline] of ROWS) {
  Deno.bench({
    group,
    name,
    baseline: baseline ?? false,
    // Many samples: each iteration allocates about 5 MB, and the collections
    // that triggers land in some of them.
    n: 300,
    async fn() {
      await fn();
    },
  });
}

/** Forces a full garbage collection, exposing `gc` on first use. */
function gc(): void {
  v8.setFlagsFromString("--expose-gc");
  vm.runInNewContext("gc")();
}

/**
 * Heap held per idle decode chain (writer and reader held, a read pending),
 * after a full collection: `make` builds one readable/writable pair.
 */
async function heapPerChain(
  make: () => ReadableWritablePair<unknown, Uint8Array>,
  count: number,
): Promise<number> {
  const held: unknown[] = [];
  gc();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    const pair = make();
    const writer = pair.writable.getWriter();
    const reader = pair.readable.getReader();
    held.push(writer, reader, reader.read());
  }
  // Let the pipes start and the reads reach the first stream.
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  const after = Deno.memoryUsage().heapUsed;
  assert.equal(held.length, 3 * count);
  return (after - before) / count;
}

/** Four piped streams, the shape of the decode chain before it was one stream. */
function fourStreams(): ReadableWritablePair<unknown, Uint8Array> {
  const first = new DeframerStream();
  const readable = first.readable
    .pipeThrough(new ChecksumStream())
    .pipeThrough(new DecompressorStream())
    .pipeThrough(new MessageDecoderStream());
  return { writable: first.writable, readable };
}

if (import.meta.main) {
  // Self-timed, rows interleaved so that a noisy neighbour hits them alike;
  // frames/s of the best and of the median round, collections included.
  const rounds = Number(Deno.env.get("ROUNDS") ?? 100);
  const times: number[][] = ROWS.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let r = 0; r < ROWS.length; r++) {
      const start = performance.now();
      await ROWS[r][2]();
      times[r].push(performance.now() - start);
    }
  }
  const sorted = times.map((t) => t.slice().sort((a, b) => a - b));
  const best = sorted.map((t) => FRAMES / (t[0] / 1000));
  const median = sorted.map((t) => FRAMES / (t[t.length >> 1] / 1000));
  const m = (rate: number) => `${(rate / 1e6).toFixed(2)} M`;
  const pct = (r: number, base: number) =>
    `${(best[r] / best[base] * 100).toFixed(0)}% (median ${
      (median[r] / median[base] * 100).toFixed(0)
    }%)`;
  console.log(`${"".padEnd(64)}  best     median  (frames/s)  of baseline`);
  let base = 0;
  ROWS.forEach(([, name, , baseline], r) => {
    if (baseline) base = r;
    console.log(`${name.padEnd(64)} ${m(best[r])}  ${m(median[r])}  ${pct(r, base)}`);
  });
  const count = 2000;
  const one = await heapPerChain(() => createDecodeChain(), count);
  const four = await heapPerChain(fourStreams, count);
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(
    `heap per idle decode chain: one stream ${kib(one)}, four piped streams ${kib(four)}`,
  );
}
