/**
 * Payload compression: speed of each algorithm against a plain copy, on 1 MiB
 * of log-like text and on a 4 KiB JSON document, with the compression ratios
 * printed once at start. Our TypeScript LZ4 encoder and bounded decoder are
 * compared with the native add-on lz4-napi (which the library does not use:
 * it would need --allow-ffi).
 *
 * Run with `deno bench -A codec/compression_bench.ts`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { compressFrameSync, decompressFrameSync } from "lz4-napi";
import { Compression } from "./constants.ts";
import { compress, decompress } from "./compression.ts";

const MAX_OUTPUT = 16 * 1024 * 1024;

/** Deterministic generator (mulberry32), so that runs compare. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = ("the of and to in a is that for it as was with be by on not he this are or " +
  "his from at which but have an they you were her she there been one all we their has " +
  "would when if so no will more can out up about who other into what them some could " +
  "time these two may then do first any my now such like our over man me even most made " +
  "after also did many before must through back years where much your way well down " +
  "should because each just those people how too little state good very make world still " +
  "own see men work long get here between both life being under never day same another " +
  "know while last might us great old year off come since against go came right used " +
  "take three").split(" ");

/**
 * JSON lines of service logs: timestamps, levels, method names, ids and
 * English words picked with a skewed (Zipf-like) frequency.
 */
function logText(size: number, seed = 42): Uint8Array {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const services = ["billing", "auth", "search", "catalog", "orders", "gateway"];
  const methods = ["invoice.create", "user.get", "session.refresh", "item.search", "order.list"];
  const levels = ["info", "info", "info", "debug", "warn", "error"];
  const lines: string[] = [];
  let time = Date.UTC(2025, 2, 14, 9, 26, 53);
  for (let length = 0, seq = 100_000; length < size; seq++) {
    time += Math.floor(random() * 2000);
    const words = 4 + Math.floor(random() * 14);
    const line = JSON.stringify({
      ts: new Date(time).toISOString(),
      level: pick(levels),
      service: pick(services),
      method: pick(methods),
      seq,
      latencyMs: Math.round(random() * 250_000) / 1000,
      user: `u_${Math.floor(random() * 0xffffff).toString(16)}`,
      msg: Array.from({ length: words }, () => WORDS[Math.floor(WORDS.length * random() ** 3)])
        .join(" "),
    }) + "\n";
    lines.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(lines.join("")).subarray(0, size);
}

/** An API response of about 4 KiB: a page of user records. */
function jsonDocument(seed = 7): Uint8Array {
  const random = prng(seed);
  const first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"];
  const last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen"];
  const users = [];
  for (let id = 1_000; id < 1_025; id++) {
    const name = `${first[Math.floor(random() * first.length)]} ${
      last[Math.floor(random() * last.length)]
    }`;
    users.push({
      id,
      name,
      email: `${name.toLowerCase().replace(" ", ".")}${id}@example.com`,
      roles: random() < 0.3 ? ["admin", "user"] : ["user"],
      active: random() < 0.8,
      score: Math.round(random() * 10_000) / 100,
      createdAt: new Date(Date.UTC(2024, 0, 1) + Math.floor(random() * 3e10)).toISOString(),
    });
  }
  return new TextEncoder().encode(
    JSON.stringify({ page: 3, pageSize: users.length, total: 1_742, users }),
  );
}

const inputs = { "1 MiB text": logText(1024 * 1024), "4 KiB JSON": jsonDocument() };

const algorithms = [
  ["zlib level 4 (default)", Compression.ZLIB, undefined],
  ["zlib level 6", Compression.ZLIB, 6],
  ["lz4 (TypeScript)", Compression.LZ4, undefined],
  ["zstd level 3 (default)", Compression.ZSTD, undefined],
] as const;

async function deflateStream(data: Uint8Array): Promise<ArrayBuffer> {
  const stream = ReadableStream.from([data as Uint8Array<ArrayBuffer>])
    .pipeThrough(new CompressionStream("deflate"));
  return await new Response(stream).arrayBuffer();
}

async function inflateStream(data: Uint8Array): Promise<ArrayBuffer> {
  const stream = ReadableStream.from([data as Uint8Array<ArrayBuffer>])
    .pipeThrough(new DecompressionStream("deflate"));
  return await new Response(stream).arrayBuffer();
}

// Ratios, printed once.
for (const [input, data] of Object.entries(inputs)) {
  const ratios = [];
  for (const [name, code, level] of algorithms) {
    ratios.push(`${name} ${(data.length / compress(code, data, { level }).length).toFixed(2)}`);
  }
  for (const level of [1, 9]) {
    const packed = compress(Compression.ZLIB, data, { level });
    ratios.push(`zlib level ${level} ${(data.length / packed.length).toFixed(2)}`);
  }
  const native = compressFrameSync(Buffer.from(data.buffer, data.byteOffset, data.length));
  ratios.push(`lz4 via lz4-napi ${(data.length / native.length).toFixed(2)}`);
  const deflate = (await deflateStream(data)).byteLength;
  ratios.push(`CompressionStream deflate ${(data.length / deflate).toFixed(2)}`);
  console.log(`compression ratio, ${input} (${data.length} bytes): ${ratios.join(", ")}`);
}

for (const [input, data] of Object.entries(inputs)) {
  const compressGroup = `compress ${input}`;
  const decompressGroup = `decompress ${input}`;
  Deno.bench({ group: compressGroup, name: "copy", baseline: true }, () => {
    data.slice();
  });
  Deno.bench({ group: decompressGroup, name: "copy", baseline: true }, () => {
    data.slice();
  });
  for (const [name, code, level] of algorithms) {
    Deno.bench({ group: compressGroup, name }, () => {
      compress(code, data, { level });
    });
    const packed = compress(code, data, { level });
    Deno.bench({ group: decompressGroup, name }, () => {
      decompress(code, packed, { maxOutput: MAX_OUTPUT });
    });
  }
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.length);
  Deno.bench({ group: compressGroup, name: "lz4 via lz4-napi (native)" }, () => {
    compressFrameSync(buffer);
  });
  const lz4 = compress(Compression.LZ4, data);
  Deno.bench({ group: decompressGroup, name: "lz4 via lz4-napi (no output bound)" }, () => {
    decompressFrameSync(Buffer.from(lz4.buffer, lz4.byteOffset, lz4.length));
  });
  if (input === "1 MiB text") {
    Deno.bench({ group: compressGroup, name: 'CompressionStream("deflate")' }, async () => {
      await deflateStream(data);
    });
    const deflated = compress(Compression.ZLIB, data);
    Deno.bench({ group: decompressGroup, name: 'DecompressionStream("deflate")' }, async () => {
      await inflateStream(deflated);
    });
  }
}
