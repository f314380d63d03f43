import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  constants as zlibConstants,
  deflateRawSync,
  inflateSync,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { compressFrameSync, decompressFrameSync } from "lz4-napi";
import fc from "fast-check";
import { Compression, HEADER_SIZE, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import {
  compress,
  compressionName,
  decompress,
  parseCompression,
} from "../../codec/compression.ts";
import { xxh32 } from "../../codec/_lz4.ts";
import { lz4CompressFrame, lz4FrameBound } from "../../codec/_lz4_compress.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const MAX_FRAME = 16 * MiB;
const ALGORITHMS = [
  ["zlib", Compression.ZLIB],
  ["LZ4", Compression.LZ4],
  ["Zstandard", Compression.ZSTD],
] as const;
const VECTORS = Deno.env.get("STREAMWIRE_VECTORS") ??
  new URL("../testdata/vectors_v1.json", import.meta.url);

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Word salad with some structure, compressible like prose. */
function text(size: number, seed = 1): Uint8Array {
  const words = ("frame payload stream the of and to a in is that header length seq " +
    "checksum window credit open data end cancel ping pong hello error batch call " +
    "method params result deadline trace zlib lz4 zstd sender receiver peer").split(" ");
  const next = prng(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = words[next() % words.length] + (next() % 13 === 0 ? ".\n" : " ");
    parts.push(word);
    length += word.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, size);
}

/** Incompressible bytes. */
function random(size: number, seed = 2): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = next();
  return out;
}

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(actual.length, expected.length);
  assert.ok(Buffer.compare(actual, expected) === 0, "bytes differ");
}

/** Asserts that `fn` throws a StreamwireError with `code`, and nothing else. */
function assertCode(fn: () => unknown, code: number): StreamwireError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof StreamwireError, `not a StreamwireError: ${error}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected code ${code}, nothing was thrown`);
}

interface Vector {
  name: string;
  hex: string;
  expect: { ok: boolean; code?: number; payloadHex?: string };
}

async function vector(name: string): Promise<{ body: Uint8Array; expect: Vector["expect"] }> {
  const { vectors } = JSON.parse(await Deno.readTextFile(VECTORS)) as { vectors: Vector[] };
  const found = vectors.find((v) => v.name === name);
  assert.ok(found, `no vector '${name}'`);
  return { body: fromHex(found.hex).subarray(HEADER_SIZE), expect: found.expect };
}

// --- LZ4 frames by hand (LZ4 Frame Format Description, LZ4 Block Format) ---

function u32le(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
}

/** A frame header: magic, FLG, BD, optional content size, header checksum. */
function lz4Header(flg: number, bd: number, contentSize?: number): Uint8Array {
  const descriptor = contentSize === undefined
    ? Uint8Array.of(flg, bd)
    : concat(Uint8Array.of(flg | 0x08, bd), u32le(contentSize), u32le(contentSize / 2 ** 32));
  const hc = (xxh32(descriptor, 0, descriptor.length) >>> 8) & 0xff;
  return concat(u32le(0x184d2204), descriptor, Uint8Array.of(hc));
}

/** A compressed block: `block` bytes prefixed by its size word. */
function lz4Block(block: Uint8Array, stored = false): Uint8Array {
  return concat(u32le((block.length | (stored ? 0x80000000 : 0)) >>> 0), block);
}

const LZ4_END = u32le(0);

/** A compressed block that decodes to `size` zeros: one literal, one long match, five literals. */
function lz4ZeroBlock(size: number): Uint8Array {
  let rest = size - 6 - 4 - 15; // match length beyond the token's 4 + 15
  const ext: number[] = [];
  for (; rest >= 255; rest -= 255) ext.push(255);
  ext.push(rest);
  return Uint8Array.of(0x1f, 0, 1, 0, ...ext, 0x50, 0, 0, 0, 0, 0);
}

/** An LZ4 frame of `blocks` independent 4 MiB blocks of zeros, about 16 KiB each. */
function lz4ZeroFrame(blocks: number, blockSize = 4 * MiB): Uint8Array {
  const block = lz4Block(lz4ZeroBlock(blockSize));
  return concat(lz4Header(0x60, 0x70), ...Array(blocks).fill(block), LZ4_END);
}

// --- Zstandard and zlib bombs by hand ---

/** A Zstandard frame of 128 KiB RLE blocks of zeros that declares a 128 MiB window. */
function zstdZeroFrame(blocks: number): Uint8Array {
  const out = new Uint8Array(6 + 4 * blocks);
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3]); // no content size; window 2^(10 + 17)
  for (let i = 0; i < blocks; i++) {
    const header = (i === blocks - 1 ? 1 : 0) | (1 << 1) | ((128 * KiB) << 3); // last, RLE, size
    out.set([header & 0xff, (header >>> 8) & 0xff, header >>> 16, 0], 6 + 4 * i);
  }
  return out;
}

/**
 * A zlib stream of `mib` MiB of zeros: one raw deflate chunk ended by a sync
 * flush (so not final) repeated, a final empty block, and the Adler-32 of
 * the zeros (a = 1, b = length mod 65521).
 */
function zlibZeroStream(mib: number): Uint8Array {
  const chunk = deflateRawSync(new Uint8Array(MiB), {
    level: 9,
    finishFlush: zlibConstants.Z_SYNC_FLUSH,
  });
  const adler = (((mib * MiB) % 65521) * 65536 + 1) >>> 0;
  const trailer = Uint8Array.of(adler >>> 24, (adler >>> 16) & 0xff, (adler >>> 8) & 0xff, adler);
  return concat(Uint8Array.of(0x78, 0xda), ...Array(mib).fill(chunk), Uint8Array.of(3, 0), trailer);
}

/** Runs `fn`, which must fail with code 8, and returns the memory it left behind. */
function memoryOfFailure(fn: () => unknown): { external: number; rss: number } {
  const before = Deno.memoryUsage();
  assertCode(fn, Status.RESOURCE_EXHAUSTED);
  const after = Deno.memoryUsage();
  return { external: after.external - before.external, rss: after.rss - before.rss };
}

function assertBounded(name: string, grown: { external: number; rss: number }): void {
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  console.log(`${name}: external +${mib(grown.external)}, rss +${mib(grown.rss)}`);
  // The cap itself (16 MiB) plus working buffers; a materialised bomb is 256 MiB.
  assert.ok(grown.external < MAX_FRAME + 8 * MiB, `external grew ${mib(grown.external)}`);
  assert.ok(grown.rss < MAX_FRAME + 24 * MiB, `rss grew ${mib(grown.rss)}`);
}

// --- Round trips ---

for (const [name, algorithm] of ALGORITHMS) {
  Deno.test(`compress and decompress round-trip ${name} payloads of every kind`, () => {
    const cases = {
      empty: new Uint8Array(0),
      tiny: Uint8Array.of(42),
      "1 MiB text": text(MiB),
      "1 MiB random": random(MiB),
      "a view into a larger buffer": text(10 * KiB).subarray(100, 5000),
    };
    for (const [what, data] of Object.entries(cases)) {
      const packed = compress(algorithm, data);
      const plain = decompress(algorithm, packed, { maxOutput: MAX_FRAME });
      assert.equal(Object.getPrototypeOf(plain), Uint8Array.prototype, what);
      assertBytes(plain, data);
    }
  });

  Deno.test(`decompress accepts ${name} output of exactly maxOutput bytes and refuses one more`, () => {
    const data = text(100_000);
    const packed = compress(algorithm, data);
    assertBytes(decompress(algorithm, packed, { maxOutput: data.length }), data);
    const error = assertCode(
      () => decompress(algorithm, packed, { maxOutput: data.length - 1 }),
      Status.RESOURCE_EXHAUSTED,
    );
    assert.equal(error.message, `Decompressed payload exceeds maxFrame '${data.length - 1}'`);
    assertCode(
      () => decompress(algorithm, compress(algorithm, Uint8Array.of(1)), { maxOutput: 0 }),
      8,
    );
    assert.equal(
      decompress(algorithm, compress(algorithm, new Uint8Array()), { maxOutput: 0 }).length,
      0,
    );
  });

  Deno.test(`decompress refuses every truncation of a ${name} payload with invalid_argument`, () => {
    const packed = compress(algorithm, text(3000));
    for (let length = 0; length < packed.length; length++) {
      assertCode(
        () => decompress(algorithm, packed.subarray(0, length), { maxOutput: MAX_FRAME }),
        3,
      );
    }
  });

  Deno.test(`decompress refuses bytes after a ${name} payload`, () => {
    const packed = compress(algorithm, text(3000));
    for (const extra of [Uint8Array.of(0), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9)]) {
      assertCode(() => decompress(algorithm, concat(packed, extra), { maxOutput: MAX_FRAME }), 3);
    }
  });
}

Deno.test("compress writes the standard format of each algorithm", () => {
  const data = text(200 * KiB);
  const zlib = compress(Compression.ZLIB, data);
  assert.equal(zlib[0], 0x78); // deflate, 32 KiB window (RFC 1950 2.2)
  assert.equal((zlib[0] * 256 + zlib[1]) % 31, 0);
  assertBytes(inflateSync(zlib), data);

  const lz4 = compress(Compression.LZ4, data);
  assert.deepEqual([...lz4.subarray(0, 4)], [0x04, 0x22, 0x4d, 0x18]);
  assertBytes(new Uint8Array(decompressFrameSync(asBuffer(lz4))), data);

  const zstd = compress(Compression.ZSTD, data);
  assert.deepEqual([...zstd.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
  assert.notEqual(zstd[4] >>> 6, 0, "Frame_Content_Size is written");
  assertBytes(zstdDecompressSync(zstd), data);
});

Deno.test("zlib payloads interoperate with CompressionStream and DecompressionStream", async () => {
  const data = text(300 * KiB);
  const viaWeb = concat(
    ...await Array.fromAsync(
      ReadableStream.from([data as Uint8Array<ArrayBuffer>]).pipeThrough(
        new CompressionStream("deflate"),
      ),
    ),
  );
  assertBytes(decompress(Compression.ZLIB, viaWeb, { maxOutput: MAX_FRAME }), data);
  const ours = compress(Compression.ZLIB, data) as Uint8Array<ArrayBuffer>;
  const back = concat(
    ...await Array.fromAsync(
      ReadableStream.from([ours]).pipeThrough(new DecompressionStream("deflate")),
    ),
  );
  assertBytes(back, data);
});

Deno.test("compress honours the level and refuses levels out of range", () => {
  const data = text(256 * KiB);
  assert.ok(
    compress(Compression.ZLIB, data, { level: 9 }).length <
      compress(Compression.ZLIB, data, { level: 1 }).length,
  );
  assert.ok(
    compress(Compression.ZSTD, data, { level: 19 }).length <
      compress(Compression.ZSTD, data, { level: 1 }).length,
  );
  assertBytes(
    decompress(Compression.ZLIB, compress(Compression.ZLIB, data, { level: 0 }), {
      maxOutput: MAX_FRAME,
    }),
    data,
  );
  for (const level of [-1, 10, 1.5, NaN]) {
    const error = assertCode(() => compress(Compression.ZLIB, data, { level }), 3);
    assert.match(error.message, /^Compression level '.*' is out of range for zlib \(0\.\.9\)$/);
  }
  for (const level of [-8, 23]) assertCode(() => compress(Compression.ZSTD, data, { level }), 3);
  // LZ4 has one level: the option is ignored.
  assertBytes(compress(Compression.LZ4, data, { level: 99 }), compress(Compression.LZ4, data));
});

Deno.test("Compression.NONE passes payloads through, within the cap", () => {
  const data = text(100);
  assert.equal(compress(Compression.NONE, data), data);
  assert.equal(decompress(Compression.NONE, data, { maxOutput: 100 }), data);
  assertCode(() => decompress(Compression.NONE, data, { maxOutput: 99 }), 8);
});

Deno.test("compress and decompress refuse unknown algorithms and bad caps", () => {
  const unknown = 7 as Compression;
  assertCode(() => compress(unknown, Uint8Array.of(1)), Status.UNIMPLEMENTED);
  assertCode(() => decompress(unknown, Uint8Array.of(1), { maxOutput: 10 }), Status.UNIMPLEMENTED);
  for (const maxOutput of [-1, 1.5, NaN, Infinity]) {
    assertCode(() => decompress(Compression.ZLIB, Uint8Array.of(1), { maxOutput }), 3);
  }
});

Deno.test("compressionName and parseCompression map handshake names", () => {
  assert.equal(compressionName(Compression.ZLIB), "zlib");
  assert.equal(compressionName(Compression.LZ4), "lz4");
  assert.equal(compressionName(Compression.ZSTD), "zstd");
  assert.equal(compressionName(Compression.NONE), undefined);
  assert.equal(compressionName(4), undefined);
  assert.equal(parseCompression("zlib"), Compression.ZLIB);
  assert.equal(parseCompression("lz4"), Compression.LZ4);
  assert.equal(parseCompression("zstd"), Compression.ZSTD);
  for (const name of ["none", "ZSTD", "gzip", "__proto__", "toString", ""]) {
    assert.equal(parseCompression(name), undefined, name);
  }
});

// --- Golden vectors ---

for (const [name, algorithm] of [["zlib", 1], ["lz4", 2], ["zstd", 3]] as const) {
  Deno.test(`decompress reproduces the payload of golden vector 'request ${name}'`, async () => {
    const { body, expect } = await vector(`request ${name}`);
    const payload = decompress(algorithm, body, { maxOutput: MAX_FRAME });
    assertBytes(payload, fromHex(expect.payloadHex!));
  });
}

Deno.test("decompress refuses golden vector 'zstd bomb over maxFrame' with resource_exhausted", async () => {
  const { body, expect } = await vector("zstd bomb over maxFrame");
  assert.equal(expect.code, 8);
  const error = assertCode(
    () => decompress(Compression.ZSTD, body, { maxOutput: 16777216 }),
    Status.RESOURCE_EXHAUSTED,
  );
  assert.equal(error.message, "Decompressed payload exceeds maxFrame '16777216'");
});

// --- Bombs ---

Deno.test("decompress stops a zlib bomb at maxOutput with bounded memory", () => {
  assertBytes(inflateSync(zlibZeroStream(2)), new Uint8Array(2 * MiB)); // the builder is sound
  const bomb = zlibZeroStream(256);
  assert.ok(bomb.length < 300 * KiB);
  const grown = memoryOfFailure(() => decompress(Compression.ZLIB, bomb, { maxOutput: MAX_FRAME }));
  assertBounded("zlib bomb", grown);
});

Deno.test("decompress stops a Zstandard bomb at maxOutput with bounded memory", () => {
  assertBytes(zstdDecompressSync(zstdZeroFrame(16)), new Uint8Array(2 * MiB)); // sound builder
  const bomb = zstdZeroFrame(2048); // 256 MiB in 8 KiB, window 128 MiB, no declared size
  const grown = memoryOfFailure(() => decompress(Compression.ZSTD, bomb, { maxOutput: MAX_FRAME }));
  assertBounded("zstd bomb", grown);
});

Deno.test("decompress stops an LZ4 bomb at maxOutput with bounded memory", () => {
  const small = lz4ZeroFrame(2);
  assertBytes(new Uint8Array(decompressFrameSync(asBuffer(small))), new Uint8Array(8 * MiB));
  const bomb = lz4ZeroFrame(64); // 256 MiB in about 1 MiB
  assert.ok(bomb.length < 1.1 * MiB);
  const grown = memoryOfFailure(() => decompress(Compression.LZ4, bomb, { maxOutput: MAX_FRAME }));
  assertBounded("lz4 bomb", grown);
});

Deno.test("decompress refuses a declared content size over maxOutput before inflating", () => {
  // LZ4: a frame that says 256 MiB and holds one small block.
  const lz4 = concat(lz4Header(0x60, 0x40, 256 * MiB), lz4Block(Uint8Array.of(0x10, 7)), LZ4_END);
  assertCode(() => decompress(Compression.LZ4, lz4, { maxOutput: MAX_FRAME }), 8);
  // Zstandard: our own output declares its size; a 17 MiB payload is refused as declared.
  const zstd = compress(Compression.ZSTD, new Uint8Array(17 * MiB));
  const grown = memoryOfFailure(() => decompress(Compression.ZSTD, zstd, { maxOutput: MAX_FRAME }));
  assert.ok(grown.external < MiB, `external grew ${grown.external}`);
});

// --- LZ4 interoperability and decoder details ---

Deno.test("decompress reads lz4-napi frames of every shape", () => {
  const shapes: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", Uint8Array.of(9)],
    ["64 KiB", text(64 * KiB)],
    ["64 KiB + 1", text(64 * KiB + 1)],
    ["incompressible", random(300 * KiB)],
    ["5 MiB text", text(5 * MiB)],
    ["5 MiB zeros", new Uint8Array(5 * MiB)],
  ];
  let stored = 0;
  let multiBlock = 0;
  for (const [what, data] of shapes) {
    for (const checksums of [false, true]) {
      const frame = new Uint8Array(compressFrameSync(asBuffer(data), {
        contentChecksum: checksums,
        blockChecksums: checksums,
      }));
      const blocks = lz4Blocks(frame);
      if (blocks.some((block) => block.stored)) stored++;
      if (blocks.length > 1) multiBlock++;
      assertBytes(decompress(Compression.LZ4, frame, { maxOutput: 8 * MiB }), data);
      if (what === "5 MiB text") {
        assertCode(() => decompress(Compression.LZ4, frame, { maxOutput: 5 * MiB - 1 }), 8);
      }
    }
  }
  assert.ok(stored > 0, "some frame had stored (uncompressed) blocks");
  assert.ok(multiBlock > 0, "some frame had several blocks");
});

/** The block list of an LZ4 frame without content size nor dictionary. */
function lz4Blocks(frame: Uint8Array): { size: number; stored: boolean }[] {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const blockChecksum = (frame[4] & 0x10) !== 0;
  const blocks = [];
  for (let p = 7; view.getUint32(p, true) !== 0;) {
    const word = view.getUint32(p, true);
    blocks.push({ size: word & 0x7fffffff, stored: word >>> 31 === 1 });
    p += 4 + (word & 0x7fffffff) + (blockChecksum ? 4 : 0);
  }
  return blocks;
}

Deno.test("lz4-napi decodes our LZ4 payloads and hand-built frames", () => {
  for (const data of [new Uint8Array(), text(1000), text(3 * MiB), random(200 * KiB)]) {
    const packed = compress(Compression.LZ4, data);
    assertBytes(new Uint8Array(decompressFrameSync(asBuffer(packed))), data);
  }
  const head = text(16).subarray(0, 8);
  const linked = new Uint8Array(decompressFrameSync(asBuffer(lz4LinkedFrame())));
  assertBytes(linked, concat(head, head));
});

/**
 * Two linked blocks (FLG bit 5 clear): the second is a match into the first.
 * Decodes to the first 8 bytes of `text(16)` twice.
 */
function lz4LinkedFrame(independent = false): Uint8Array {
  const head = text(16).subarray(0, 8);
  return concat(
    lz4Header(independent ? 0x60 : 0x40, 0x40),
    lz4Block(concat(Uint8Array.of(0x80), head)),
    lz4Block(Uint8Array.of(0x04, 8, 0, 0x00)), // match of 8 at offset 8, then no literals
    LZ4_END,
  );
}

Deno.test("decompress follows matches across linked LZ4 blocks, not independent ones", () => {
  const head = text(16).subarray(0, 8);
  assertBytes(
    decompress(Compression.LZ4, lz4LinkedFrame(), { maxOutput: 100 }),
    concat(head, head),
  );
  assertCode(() => decompress(Compression.LZ4, lz4LinkedFrame(true), { maxOutput: 100 }), 3);
});

Deno.test("decompress reads concatenated and skippable LZ4 frames", () => {
  const a = compress(Compression.LZ4, text(1000, 1));
  const b = compress(Compression.LZ4, text(2000, 2));
  const skippable = concat(u32le(0x184d2a5f), u32le(3), Uint8Array.of(1, 2, 3));
  assertBytes(
    decompress(Compression.LZ4, concat(a, skippable, b), { maxOutput: 3000 }),
    concat(text(1000, 1), text(2000, 2)),
  );
  assertCode(() => decompress(Compression.LZ4, concat(a, b), { maxOutput: 2999 }), 8);
  assert.equal(decompress(Compression.LZ4, skippable, { maxOutput: 0 }).length, 0);
});

Deno.test("decompress checks a declared LZ4 content size", () => {
  const block = lz4Block(concat(Uint8Array.of(0x30), Uint8Array.of(1, 2, 3)));
  const frame = (size: number) => concat(lz4Header(0x60, 0x40, size), block, LZ4_END);
  assertBytes(decompress(Compression.LZ4, frame(3), { maxOutput: 3 }), Uint8Array.of(1, 2, 3));
  assertCode(() => decompress(Compression.LZ4, frame(4), { maxOutput: 100 }), 3);
  assertCode(() => decompress(Compression.LZ4, frame(2), { maxOutput: 100 }), 3);
});

Deno.test("decompress refuses malformed LZ4 frames with invalid_argument", () => {
  const good = compress(Compression.LZ4, text(5000));
  const withChecksums = new Uint8Array(compressFrameSync(asBuffer(text(5000)), {
    blockChecksums: true,
    contentChecksum: true,
  }));
  const flip = (bytes: Uint8Array, at: number, mask = 0xff) => {
    const copy = bytes.slice();
    copy[at < 0 ? copy.length + at : at] ^= mask;
    return copy;
  };
  const frame = (...blocks: number[][]) =>
    concat(lz4Header(0x60, 0x40), ...blocks.map((b) => lz4Block(Uint8Array.from(b))), LZ4_END);
  const cases: Record<string, Uint8Array> = {
    "empty payload": new Uint8Array(),
    "bad magic": flip(good, 0),
    "legacy frame": concat(u32le(0x184c2102), good.subarray(4)),
    "bad version": flip(good, 4, 0x80),
    "reserved FLG bit": concat(lz4Header(0x62, 0x40), LZ4_END),
    "reserved BD bit": concat(lz4Header(0x60, 0x41), LZ4_END),
    "block size id 3": concat(lz4Header(0x60, 0x30), LZ4_END),
    "dictionary id": concat(lz4Header(0x61, 0x40), u32le(1), LZ4_END),
    "bad header checksum": flip(good, 6, 1),
    "block checksum mismatch": flip(withChecksums, 20),
    "content checksum mismatch": flip(withChecksums, -1),
    "block over block maximum": concat(lz4Header(0x60, 0x40), u32le(64 * KiB + 1)),
    "offset 0": frame([0x10, 1, 0, 0, 0x50, 1, 2, 3, 4, 5]),
    "offset before the output": frame([0x10, 1, 2, 0, 0x50, 1, 2, 3, 4, 5]),
    "offset far past the output": frame([0x10, 1, 0xff, 0xff, 0x50, 1, 2, 3, 4, 5]),
    "literals past the block": frame([0x50, 1, 2]),
    "literal length bytes past the block": frame([0xf0, 255, 255]),
    "match length bytes past the block": frame([0x1f, 1, 1, 0, 255]),
    "match past the block maximum": frame([0x1f, 1, 1, 0, ...Array(257).fill(255), 0, 0]),
    "block ends with a match": frame([0x10, 1, 1, 0]),
    "truncated offset": frame([0x10, 1, 1]),
    "stored block past the block maximum": concat(
      lz4Header(0x60, 0x40),
      u32le(0x80000000 + 64 * KiB + 1),
      new Uint8Array(64 * KiB + 1),
      LZ4_END,
    ),
    "no end mark": good.subarray(0, good.length - 4),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    const error = assertCode(() => decompress(Compression.LZ4, bytes, { maxOutput: MAX_FRAME }), 3);
    assert.match(error.message, /^Invalid LZ4 payload: /, what);
  }
});

// --- The LZ4 compressor ---

/**
 * Payloads at the edges of the block format and of the block sizes, with
 * which of our blocks are stored rather than compressed.
 */
function lz4Shapes(): [string, Uint8Array, stored: boolean[]][] {
  return [
    ["empty", new Uint8Array(0), []],
    ["1 byte", Uint8Array.of(9), [true]],
    ["3 bytes", Uint8Array.of(1, 2, 3), [true]],
    ["12 zeros (too short for a match)", new Uint8Array(12), [true]],
    ["13 zeros (room for one match)", new Uint8Array(13), [false]],
    ["12 bytes of text", text(12), [true]],
    ["13 bytes of text", text(13), [true]],
    ["64 KiB - 1 of text", text(64 * KiB - 1), [false]],
    ["64 KiB of text", text(64 * KiB), [false]],
    ["64 KiB + 1 of text", text(64 * KiB + 1), [false]],
    ["64 KiB + 1 of zeros", new Uint8Array(64 * KiB + 1), [false]],
    ["1 MiB of text", text(MiB), [false]],
    ["1 MiB of random bytes", random(MiB), [true]],
    ["random bytes, then text", concat(random(100 * KiB), text(100 * KiB)), [false]],
    // Offsets are at most 65535: the repeat is out of reach, then just in reach.
    ["64 KiB of random bytes twice", concat(random(64 * KiB), random(64 * KiB)), [true]],
    ["64 KiB - 1 of random bytes twice", concat(random(64 * KiB - 1), random(64 * KiB)), [false]],
    ["4 MiB + 1 of text", text(4 * MiB + 1), [false, true]],
    // Blocks are independent: the second block's matches may not reach back into the first.
    ["4 MiB + 100 of zeros", new Uint8Array(4 * MiB + 100), [false, false]],
  ];
}

/** The descriptor and blocks of an LZ4 frame, checking its header checksum. */
function lz4Frame(frame: Uint8Array): {
  flg: number;
  bd: number;
  contentSize: number;
  blocks: { bytes: Uint8Array; stored: boolean }[];
} {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  assert.equal(view.getUint32(0, true), 0x184d2204);
  const flg = frame[4];
  let p = (flg & 0x08) !== 0 ? 14 : 6;
  const contentSize = p === 14 ? view.getUint32(6, true) + view.getUint32(10, true) * 2 ** 32 : -1;
  assert.equal(frame[p], (xxh32(frame, 4, p) >>> 8) & 0xff, "header checksum");
  const blocks = [];
  for (p++;;) {
    const word = view.getUint32(p, true);
    p += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    blocks.push({ bytes: frame.subarray(p, p + size), stored: word >>> 31 === 1 });
    p += size;
  }
  assert.equal(p, frame.length, "the frame ends at its end mark");
  return { flg, bd: frame[5], contentSize, blocks };
}

/** The decoded `[start, end)` of each match of a compressed LZ4 block, and its decoded size. */
function lz4Matches(block: Uint8Array): { matches: [number, number][]; size: number } {
  const matches: [number, number][] = [];
  const length = (nibble: number, at: number): [number, number] => {
    if (nibble !== 15) return [nibble, at];
    let b: number;
    do {
      b = block[at++];
      nibble += b;
    } while (b === 255);
    return [nibble, at];
  };
  let ip = 0;
  let op = 0;
  for (;;) {
    const token = block[ip++];
    let n: number;
    [n, ip] = length(token >>> 4, ip);
    ip += n;
    op += n;
    if (ip >= block.length) break;
    const offset = block[ip] | (block[ip + 1] << 8);
    [n, ip] = length(token & 15, ip + 2);
    assert.ok(offset > 0 && offset <= op, `offset ${offset} at ${op}`);
    matches.push([op, op + n + 4]);
    op += n + 4;
  }
  return { matches, size: op };
}

/**
 * Asserts that `frame` is our compressor's frame of `data`: the descriptor
 * we promise, the smallest block size that holds the payload, and blocks
 * that keep the end-of-block rules of the LZ4 Block Format (last match
 * starts 12 bytes or more before the end, last 5 bytes are literals), which
 * decoders may rely on without checking.
 */
function assertLz4Frame(frame: Uint8Array, data: Uint8Array): void {
  const { flg, bd, contentSize, blocks } = lz4Frame(frame);
  assert.equal(flg, 0x68, "version 01, independent blocks, content size, no checksums");
  const blockMax = [64 * KiB, 256 * KiB, MiB, 4 * MiB].find((size) => data.length <= size) ??
    4 * MiB;
  assert.equal(bd, (Math.log2(blockMax) / 2 - 4) << 4);
  assert.equal(contentSize, data.length);
  assert.ok(frame.length <= lz4FrameBound(data.length));
  assert.equal(frame.buffer.byteLength, frame.length, "a buffer of its own");
  assert.equal(blocks.length, Math.ceil(data.length / blockMax));
  blocks.forEach(({ bytes, stored }, i) => {
    const size = Math.min(blockMax, data.length - i * blockMax);
    if (stored) {
      assertBytes(bytes, data.subarray(i * blockMax, i * blockMax + size));
      return;
    }
    assert.ok(bytes.length < size, "a compressed block is smaller than the input");
    const { matches, size: decoded } = lz4Matches(bytes);
    assert.equal(decoded, size);
    for (const [start, end] of matches) {
      assert.ok(start <= size - 12 && end <= size - 5, `match [${start}, ${end}) of ${size}`);
    }
  });
}

Deno.test("lz4CompressFrame round-trips payloads at every block boundary", () => {
  for (const [what, data, stored] of lz4Shapes()) {
    const frame = lz4CompressFrame(data);
    assertLz4Frame(frame, data);
    assert.deepEqual(lz4Frame(frame).blocks.map((block) => block.stored), stored, what);
    assertBytes(decompress(Compression.LZ4, frame, { maxOutput: data.length }), data);
  }
  // 13 zeros: a literal, a match of 7 at offset 1, then the 5 last literals.
  const block = lz4Frame(lz4CompressFrame(new Uint8Array(13))).blocks[0].bytes;
  assert.deepEqual([...block], [0x13, 0, 1, 0, 0x50, 0, 0, 0, 0, 0]);
  assert.ok(lz4CompressFrame(text(MiB)).length < MiB / 2, "text compresses 2 times");
});

Deno.test("lz4-napi decodes lz4CompressFrame output, and decompress decodes lz4-napi output", () => {
  for (const [what, data] of lz4Shapes()) {
    const ours = lz4CompressFrame(data);
    assertBytes(new Uint8Array(decompressFrameSync(asBuffer(ours))), data);
    const theirs = new Uint8Array(compressFrameSync(asBuffer(data)));
    assertBytes(decompress(Compression.LZ4, theirs, { maxOutput: data.length }), data);
    // Comparable output: within 15% of the native encoder (11% on this text, measured).
    assert.ok(
      ours.length <= theirs.length * 1.15 + 8,
      `${what}: ${ours.length} vs ${theirs.length}`,
    );
  }
});

Deno.test("lz4CompressFrame output depends on the payload only, not on earlier calls", () => {
  const a = text(100 * KiB, 3);
  const b = text(100 * KiB, 4);
  const first = lz4CompressFrame(a);
  lz4CompressFrame(b);
  lz4CompressFrame(b.subarray(7));
  assertBytes(lz4CompressFrame(a), first);
  assertBytes(lz4CompressFrame(a.slice()), first);
  // Past 2 GiB of input, table entries would overflow an Int32 unless cleared.
  const zeros = new Uint8Array(4 * MiB);
  for (let i = 0; i < 513; i++) lz4CompressFrame(zeros);
  assertBytes(lz4CompressFrame(a), first);
});

Deno.test("lz4CompressFrame round-trips any bytes through both decoders", () => {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }));
  // size "max": fast-check would otherwise keep arrays to 10 elements or so.
  const payloads = fc.oneof(
    fc.uint8Array({ maxLength: 3000, size: "max" }),
    // Few distinct bytes: many short matches.
    fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3000, size: "max" })
      .map((a) => Uint8Array.from(a)),
    // A pattern repeated with a few edits: long and overlapping matches.
    fc.tuple(
      fc.uint8Array({ minLength: 1, maxLength: 40, size: "max" }),
      fc.integer({ min: 0, max: 5000 }),
      fc.array(edit, { maxLength: 8 }),
    ).map(([pattern, length, edits]) => {
      const out = Uint8Array.from({ length }, (_, i) => pattern[i % pattern.length]);
      for (const [at, value] of edits) if (length > 0) out[at % length] = value;
      return out;
    }),
  );
  fc.assert(
    fc.property(payloads, (data) => {
      const frame = lz4CompressFrame(data);
      assertLz4Frame(frame, data);
      assertBytes(decompress(Compression.LZ4, frame, { maxOutput: data.length }), data);
      assertBytes(new Uint8Array(decompressFrameSync(asBuffer(frame))), data);
    }),
    { numRuns: 1000 },
  );
});

// --- zlib and Zstandard corruption ---

Deno.test("decompress refuses corrupt zlib payloads with invalid_argument", () => {
  const good = compress(Compression.ZLIB, text(5000));
  const flip = (at: number) => {
    const copy = good.slice();
    copy[at < 0 ? copy.length + at : at] ^= 0x55;
    return copy;
  };
  const cases: Record<string, Uint8Array> = {
    "empty payload": new Uint8Array(),
    "bad header": flip(0),
    "bad check bits": flip(1),
    "bad Adler-32": flip(-1),
    "preset dictionary": concat(Uint8Array.of(0x78, 0xbb), u32le(1), good.subarray(2)),
    "raw deflate": deflateRawSync(text(100)),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    const error = assertCode(
      () => decompress(Compression.ZLIB, bytes, { maxOutput: MAX_FRAME }),
      3,
    );
    assert.match(error.message, /^Invalid zlib payload: /, what);
  }
});

Deno.test("decompress refuses corrupt Zstandard payloads with invalid_argument", () => {
  const data = text(5000);
  const checked = new Uint8Array(zstdCompressSync(data, {
    params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 },
  }));
  assertBytes(decompress(Compression.ZSTD, checked, { maxOutput: MAX_FRAME }), data);
  const flip = (bytes: Uint8Array, at: number, mask = 0x55) => {
    const copy = bytes.slice();
    copy[at < 0 ? copy.length + at : at] ^= mask;
    return copy;
  };
  const cases: Record<string, Uint8Array> = {
    "empty payload": new Uint8Array(),
    "bad magic": flip(checked, 0),
    "reserved header bit": flip(checked, 4, 0x08),
    "bad checksum": flip(checked, -1),
    "reserved block type": concat(
      Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x20, 0),
      Uint8Array.of(7, 0, 0),
    ),
    "corrupt compressed block": flip(compress(Compression.ZSTD, text(50_000)), 40, 0xff),
    "only a skippable frame's header": concat(u32le(0x184d2a50), u32le(100)),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    const error = assertCode(
      () => decompress(Compression.ZSTD, bytes, { maxOutput: MAX_FRAME }),
      3,
    );
    assert.match(error.message, /^Invalid Zstandard payload: /, what);
  }
});

Deno.test("decompress reads concatenated and skippable Zstandard frames", () => {
  const a = compress(Compression.ZSTD, text(1000, 1));
  const b = new Uint8Array(zstdCompressSync(text(2000, 2))); // no declared size
  const skippable = concat(u32le(0x184d2a50), u32le(2), Uint8Array.of(1, 2));
  const both = concat(skippable, a, b);
  assertBytes(
    decompress(Compression.ZSTD, both, { maxOutput: 3000 }),
    concat(text(1000, 1), text(2000, 2)),
  );
  assertCode(() => decompress(Compression.ZSTD, both, { maxOutput: 2999 }), 8);
});

// --- Hostile input at random ---

/** Random bytes, and valid payloads with random damage, for `algorithm`. */
function hostile(algorithm: Compression): fc.Arbitrary<Uint8Array> {
  const valid = fc.uint8Array({ maxLength: 3000 }).map((data) => compress(algorithm, data));
  const damaged = fc.tuple(
    valid,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
      maxLength: 4,
    }),
    fc.nat(),
  ).map(([bytes, flips, cut]) => {
    const copy = bytes.slice(0, bytes.length - (cut % 3 === 0 ? cut % bytes.length : 0));
    for (const [at, mask] of flips) if (copy.length > 0) copy[at % copy.length] ^= mask;
    return copy;
  });
  // LZ4 and Zstandard headers followed by random blocks reach the block decoders.
  const framed = fc.uint8Array({ maxLength: 2000 }).map((body) =>
    algorithm === Compression.LZ4
      ? concat(lz4Header(0x40, 0x40), u32le(body.length), body, LZ4_END)
      : algorithm === Compression.ZSTD
      ? concat(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00), body)
      : concat(Uint8Array.of(0x78, 0x9c), body)
  );
  return fc.oneof(fc.uint8Array({ maxLength: 2000 }), damaged, framed);
}

for (const [name, algorithm] of ALGORITHMS) {
  Deno.test(`decompress returns bytes within the cap or throws StreamwireError for any ${name} input`, () => {
    fc.assert(
      fc.property(hostile(algorithm), fc.integer({ min: 0, max: 20_000 }), (bytes, maxOutput) => {
        try {
          const out = decompress(algorithm, bytes, { maxOutput });
          return out instanceof Uint8Array && out.length <= maxOutput;
        } catch (error) {
          return error instanceof StreamwireError && (error.code === 3 || error.code === 8);
        }
      }),
      { numRuns: 1000 },
    );
  });
}
