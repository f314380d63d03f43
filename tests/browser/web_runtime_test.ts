import assert from "node:assert/strict";
import {
  compressFrame,
  Compression,
  encodeFrames,
  encodeMessages,
  Flag,
  type Frame,
  FrameType,
} from "../../codec/mod.ts";
import type { WebRuntimeRequest } from "./_web_runtime_worker.ts";

/** Runs one request in a fresh worker without node built-ins, as in a web page. */
async function inWebRuntime<T>(request: WebRuntimeRequest): Promise<T> {
  const worker = new Worker(new URL("./_web_runtime_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const answer = new Promise<T>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
    });
    worker.postMessage(request);
    return await answer;
  } finally {
    worker.terminate();
  }
}

/** DATA frames with payloads of `sizes` bytes, each compressed with `algorithm` (if any). */
function dataBytes(sizes: number[], algorithms: ("zlib" | "lz4" | undefined)[]): Uint8Array {
  const text = new TextEncoder().encode("streamwire frame payload ".repeat(40_000));
  const messages = sizes.map((size, i) => ({
    type: FrameType.DATA,
    seq: i + 1,
    data: text.subarray(0, size),
  } as const));
  const frames: Frame[] = [...encodeMessages(messages)].map((frame, i) =>
    compressFrame(frame, { algorithm: algorithms[i] })
  );
  return encodeFrames(frames);
}

Deno.test("the codec without node built-ins uses JavaScript CRC-32, LZ4, and sends zlib frames plain", async () => {
  const facts = await inWebRuntime<Record<string, unknown>>({ kind: "facts" });
  assert.equal(facts.crc, 0xcbf43926);
  assert.deepEqual(facts.sync, [false, true, false]);
  assert.equal((facts.zlibFlags as number) & Flag.COMPRESSION_MASK, 0);
  assert.equal((facts.lz4Flags as number) & Flag.COMPRESSION_MASK, Compression.LZ4);
  assert.equal(facts.zstdError, "unimplemented");
  assert.deepEqual(facts.tokens, [true, false]);
  assert.deepEqual(facts.coalesced, [1, 2, 3]);
});

Deno.test("the codec without node built-ins inflates zlib asynchronously and keeps frame order", async () => {
  const bytes = dataBytes(
    [100_000, 10, 50_000, 20, 30_000],
    ["zlib", undefined, "lz4", undefined, "zlib"],
  );
  // One read holding all five frames, and the same bytes split mid-frame.
  for (const chunks of [[bytes], [bytes.subarray(0, 700), bytes.subarray(700)]]) {
    const { seen, error } = await inWebRuntime<{ seen: unknown[]; error?: string }>({
      kind: "decode",
      chunks,
    });
    assert.equal(error, undefined);
    assert.deepEqual(seen, [
      { type: FrameType.DATA, seq: 1, length: 100_000 },
      { type: FrameType.DATA, seq: 2, length: 10 },
      { type: FrameType.DATA, seq: 3, length: 50_000 },
      { type: FrameType.DATA, seq: 4, length: 20 },
      { type: FrameType.DATA, seq: 5, length: 30_000 },
    ]);
  }
});

Deno.test("the codec without node built-ins stops a zlib payload at maxFrame", async () => {
  const bytes = dataBytes([10, 900_000, 10], [undefined, "zlib", undefined]);
  assert.ok(bytes.length < 20_000);
  const { seen, error } = await inWebRuntime<{ seen: unknown[]; error?: string }>({
    kind: "decode",
    chunks: [bytes],
    maxFrame: 65_536,
  });
  assert.equal(error, "resource_exhausted");
  assert.deepEqual(seen, [{ type: FrameType.DATA, seq: 1, length: 10 }]);
});

Deno.test("the codec without node built-ins refuses a corrupt zlib payload", async () => {
  const data = new TextEncoder().encode("streamwire ".repeat(5_000));
  const [plain] = encodeMessages([{ type: FrameType.DATA, seq: 1, data }]);
  const packed = compressFrame(plain, { algorithm: "zlib" });
  const body = packed.body.slice();
  body[body.length - 1] ^= 0xff; // the Adler-32 trailer
  const { error } = await inWebRuntime<{ seen: unknown[]; error?: string }>({
    kind: "decode",
    chunks: [encodeFrames([{ ...packed, body }])],
  });
  assert.equal(error, "invalid_argument");
});
