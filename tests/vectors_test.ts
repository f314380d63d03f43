// Golden frames of PROTOCOL.md v1. The vector file is read from
// $STREAMWIRE_VECTORS (default testdata/vectors_v1.json beside this file), so
// any vector set in the same format runs through the same assertions.
import assert from "node:assert/strict";
import {
  createDecodeChain,
  decodeMessage,
  decompressFrame,
  Deframer,
  type Frame,
  FrameType,
  type Message,
  splitBody,
  StreamwireError,
  verifyChecksum,
} from "../codec/mod.ts";
import { fromHex, toHex } from "../codec/_bytes.ts";

interface Vector {
  name: string;
  hex: string;
  expect: {
    ok: boolean;
    code?: number;
    type?: number;
    seq?: number;
    flags?: number;
    payloadHex?: string;
    method?: string;
    paramsHex?: string;
    traceparent?: string;
    timeoutMs?: number;
    metadata?: Record<string, string>;
    count?: number;
    why?: string;
  };
}

const path = Deno.env.get("STREAMWIRE_VECTORS") ??
  new URL("./testdata/vectors_v1.json", import.meta.url);
const vectors: Vector[] = JSON.parse(await Deno.readTextFile(path)).vectors;
const good = vectors.filter((v) => v.expect.ok);
const bad = vectors.filter((v) => !v.expect.ok);

/** Decodes one frame with the synchronous stages; returns frame, payload and message. */
function decodeSync(bytes: Uint8Array): { frame: Frame; payload: Uint8Array; message: Message } {
  const frames: Frame[] = [];
  const deframer = new Deframer();
  deframer.push(bytes, frames);
  deframer.end();
  assert.equal(frames.length, 1);
  const [frame] = frames;
  verifyChecksum(frame);
  const plain = decompressFrame(frame);
  const { payload } = splitBody(plain.flags, plain.body);
  return { frame, payload, message: decodeMessage(plain) };
}

async function decodeChunks(chunks: Uint8Array[]): Promise<Message[]> {
  const batches = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(createDecodeChain()),
  );
  return batches.flat();
}

function checkGood(v: Vector, message: Message): void {
  const e = v.expect;
  assert.equal(message.type, e.type, v.name);
  assert.equal(message.seq, e.seq, v.name);
  if (e.method !== undefined) {
    assert.ok("method" in message, v.name);
    assert.equal(message.method, e.method);
  }
  if (e.paramsHex !== undefined) {
    assert.ok("params" in message, v.name);
    assert.equal(toHex(message.params), e.paramsHex);
  }
  if (e.traceparent !== undefined) assert.equal(message.ext?.traceparent, e.traceparent);
  if (e.timeoutMs !== undefined) assert.equal(message.ext?.timeoutMs, e.timeoutMs);
  if (e.metadata !== undefined) {
    assert.deepEqual(Object.fromEntries(message.ext?.metadata ?? []), e.metadata);
  }
  if (e.count !== undefined) {
    if (message.type === FrameType.BATCH) assert.equal(message.entries.length, e.count);
    else if (message.type === FrameType.BATCH_RESULT) assert.equal(message.results.length, e.count);
    else assert.fail(`${v.name}: count given for type ${message.type}`);
  }
}

function codeOf(error: unknown): number {
  assert.ok(error instanceof StreamwireError, `expected StreamwireError, got ${error}`);
  return error.code;
}

for (const v of good) {
  Deno.test(`vector "${v.name}" decodes to the expected fields`, async () => {
    const bytes = fromHex(v.hex);
    const { frame, payload, message } = decodeSync(bytes);
    assert.equal(frame.type, v.expect.type);
    assert.equal(frame.seq, v.expect.seq);
    assert.equal(frame.flags, v.expect.flags);
    assert.equal(toHex(payload), v.expect.payloadHex);
    checkGood(v, message);
    const [streamed] = await decodeChunks([bytes]);
    checkGood(v, streamed);
  });
}

for (const v of bad) {
  Deno.test(`vector "${v.name}" fails with code ${v.expect.code} (${v.expect.why})`, async () => {
    const bytes = fromHex(v.hex);
    let code: number | undefined;
    try {
      decodeSync(bytes);
    } catch (error) {
      code = codeOf(error);
    }
    assert.equal(code, v.expect.code);
    await assert.rejects(decodeChunks([bytes]), (error) => codeOf(error) === v.expect.code);
  });
}

Deno.test("every vector decodes the same when split at every byte boundary", async () => {
  for (const v of vectors) {
    const bytes = fromHex(v.hex);
    for (let cut = 1; cut < bytes.length; cut++) {
      const chunks = [bytes.slice(0, cut), bytes.slice(cut)];
      if (v.expect.ok) {
        const [message] = await decodeChunks(chunks);
        checkGood(v, message);
      } else {
        await assert.rejects(
          decodeChunks(chunks),
          (error) => codeOf(error) === v.expect.code,
          `${v.name} cut at ${cut}`,
        );
      }
    }
  }
});

Deno.test("every vector decodes the same when fed one byte at a time", async () => {
  for (const v of good) {
    const bytes = fromHex(v.hex);
    const [message] = await decodeChunks(Array.from(bytes, (b) => Uint8Array.of(b)));
    checkGood(v, message);
  }
});

Deno.test("all valid vectors coalesced into one chunk decode in order", async () => {
  const all = good.map((v) => fromHex(v.hex));
  const joined = new Uint8Array(all.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of all) {
    joined.set(b, o);
    o += b.length;
  }
  const messages = await decodeChunks([joined]);
  assert.equal(messages.length, good.length);
  good.forEach((v, i) => checkGood(v, messages[i]));
});

Deno.test("a malformed vector after valid ones in one chunk fails with its code", async () => {
  for (const v of bad) {
    const chunk = new Uint8Array([...fromHex(good[1].hex), ...fromHex(v.hex)]);
    await assert.rejects(decodeChunks([chunk]), (error) => codeOf(error) === v.expect.code);
  }
});
