import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cborCodec,
  type CompressionName,
  createDecodeChain,
  createEncodeChain,
  encodeFrames,
  encodeMessage,
  type Extensions,
  type Frame,
  FrameType,
  jsonCodec,
  type Message,
  msgpackCodec,
  StreamwireError,
} from "../../codec/mod.ts";
import { crc32 } from "../../codec/crc32.ts";
import { crc32JsRange } from "../../codec/_crc32_js.ts";

// ---------------------------------------------------------------------------
// Arbitraries

/** `fc.record` with plain objects, like the decoder builds. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Well-formed text (no lone surrogates), ASCII or not: UTF-8 round-trips it. */
const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: "grapheme", maxLength }),
  );
const method = fc.oneof(
  fc.stringMatching(/^[a-z][a-zA-Z0-9_.\/]{0,49}$/),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 50 }),
);
/** Random bytes, or a short pattern repeated so that compression has something to do. */
const bytes = (maxLength: number) =>
  fc.oneof(
    fc.uint8Array({ maxLength }),
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat(maxLength)).map(
      ([pattern, n]) => Uint8Array.from({ length: n }, (_, i) => pattern[i % pattern.length]),
    ),
  );
const params = bytes(3000);

const extensions: fc.Arbitrary<Extensions> = fc.record({
  traceparent: fc.string({ maxLength: 55 }),
  tracestate: fc.string({ maxLength: 200 }),
  timeoutMs: u32,
  metadata: fc.array(
    fc.tuple(fc.stringMatching(/^[a-z0-9-]{0,20}$/), text(40)),
    { minLength: 1, maxLength: 4 },
  ),
}, { requiredKeys: [], noNullPrototype: true });

/** JSON objects as they come back from `JSON.parse` (no -0). */
const jsonObject = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), {
  maxKeys: 5,
}).map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>);

const callEntry = record({ method, params: bytes(200) });

const body: fc.Arbitrary<Omit<Message, "seq" | "ext">> = fc.oneof(
  record({ type: fc.constant(FrameType.HELLO), hello: jsonObject }),
  record({ type: fc.constant(FrameType.HELLO_ACK), ack: jsonObject }),
  record({
    type: fc.constantFrom(FrameType.PING, FrameType.PONG),
    payload: fc.uint8Array({ maxLength: 64 }),
  }),
  record({ type: fc.constant(FrameType.GOAWAY), code: u16, lastId: u32, reason: text(80) }),
  record({
    type: fc.constantFrom(
      FrameType.REQUEST,
      FrameType.NOTIFY,
      FrameType.BROADCAST,
      FrameType.OPEN,
    ),
    method,
    params,
  }),
  record({ type: fc.constantFrom(FrameType.RESPONSE, FrameType.DATA), data: params }),
  record({
    type: fc.constant(FrameType.BATCH),
    entries: fc.array(callEntry, { maxLength: 10 }),
  }),
  record({
    type: fc.constant(FrameType.BATCH_RESULT),
    results: fc.array(record({ code: u16, data: bytes(200) }), { maxLength: 10 }),
  }),
  record({ type: fc.constant(FrameType.END) }),
  record({
    type: fc.constantFrom(FrameType.CANCEL, FrameType.ERROR),
    code: u16,
    message: text(80),
  }),
  record({ type: fc.constant(FrameType.CREDIT), credit: u32 }),
) as fc.Arbitrary<Omit<Message, "seq" | "ext">>;

const message: fc.Arbitrary<Message> = fc.tuple(body, u32, fc.option(extensions)).map(
  ([fields, seq, ext]) => (ext === null ? { ...fields, seq } : { ...fields, seq, ext }) as Message,
);

const algorithm = fc.constantFrom<CompressionName | undefined>(undefined, "zlib", "lz4", "zstd");

/** Sorted cut points in [1, length), drawn as fractions so they fit any length. */
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });

// ---------------------------------------------------------------------------
// Helpers

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function rechunk(bytes: Uint8Array, fractions: number[]): Uint8Array[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))]
    .filter((p) => p > 0 && p < bytes.length)
    .sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const end of [...points, bytes.length]) {
    chunks.push(bytes.slice(start, end));
    start = end;
  }
  return chunks;
}

async function encode(
  batches: Message[][],
  options: { algorithm?: CompressionName; threshold?: number },
): Promise<Uint8Array> {
  const chunks = await Array.fromAsync(
    ReadableStream.from(batches).pipeThrough(createEncodeChain(options)),
  );
  return concat(chunks);
}

async function decode(chunks: Uint8Array[], maxFrame?: number): Promise<Message[]> {
  const batches = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(createDecodeChain({ maxFrame })),
  );
  return batches.flat();
}

const TIMEOUT_MS = 2000;

/** A decode that did not settle in time: the property fails on it. */
class Hang extends Error {}

/** Rejects if `promise` has not settled within {@linkcode TIMEOUT_MS}. */
async function withinTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Hang(`${what} did not settle in ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Decodes hostile bytes: messages, or a StreamwireError with a code of PROTOCOL.md 6. */
async function decodeHostile(chunks: Uint8Array[]): Promise<void> {
  try {
    await withinTimeout(decode(chunks, 1 << 20), "decoding");
  } catch (error) {
    if (error instanceof Hang) throw error;
    assert.ok(
      error instanceof StreamwireError,
      `expected StreamwireError, got ${(error as Error)?.stack ?? error}`,
    );
    assert.ok(error.code >= 1 && error.code <= 16, `code ${error.code}: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------
// Properties

Deno.test("crc32JsRange agrees with crc32 on any range, from any initial value", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 100 }),
      fc.nat(),
      fc.nat(),
      u32,
      (data, a, b, initial) => {
        const start = a % (data.length + 1);
        const end = start + b % (data.length - start + 1);
        assert.equal(
          crc32JsRange(data, start, end, initial),
          crc32(data.subarray(start, end), initial),
        );
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("encode chain, any re-chunking, decode chain return the messages", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(message, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }),
      algorithm,
      cuts,
      async (batches, algorithm, fractions) => {
        const bytes = await encode(batches, { algorithm, threshold: 0 });
        const decoded = await withinTimeout(decode(rechunk(bytes, fractions)), "decoding");
        assert.deepEqual(decoded, batches.flat());
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("compression with threshold 0 is used whenever it shrinks the payload", async () => {
  // Guards the property above against passing because nothing got compressed.
  const compressed = new Map<CompressionName, number>();
  await fc.assert(
    fc.asyncProperty(message, algorithm, async (m, algorithm) => {
      const bytes = await encode([[m]], { algorithm, threshold: 0 });
      if (algorithm !== undefined && (bytes[3] & 0x03) !== 0) {
        compressed.set(algorithm, (compressed.get(algorithm) ?? 0) + 1);
      }
      assert.deepEqual(await decode([bytes]), [m]);
    }),
    { numRuns: 500 },
  );
  for (const name of ["zlib", "lz4", "zstd"] as const) {
    assert.ok((compressed.get(name) ?? 0) > 5, `${name} compressed ${compressed.get(name)} frames`);
  }
});

Deno.test("payload codec values survive REQUEST params end to end", async () => {
  for (const codec of [jsonCodec, msgpackCodec, cborCodec]) {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), algorithm, u32, async (value, algorithm, seq) => {
        // msgpackr and cbor-x treat this key specially (tests/codec/payload_codec_test.ts).
        fc.pre(!JSON.stringify(value).includes('"__proto__"'));
        const request: Message = {
          type: FrameType.REQUEST,
          seq,
          method: "echo",
          params: codec.encode(value),
        };
        const bytes = await encode([[request]], { algorithm, threshold: 0 });
        const [decoded] = await decode(rechunk(bytes, [0.3, 0.7]));
        assert.ok(decoded.type === FrameType.REQUEST);
        assert.equal(decoded.seq, seq);
        // -0 does not survive JSON, msgpack or cbor: compare with what JSON keeps.
        assert.deepEqual(codec.decode(decoded.params), JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 400 },
    );
  }
});

Deno.test("the decode chain turns random bytes into messages or a StreamwireError", async () => {
  const frameLike = fc.tuple(
    fc.constantFrom(0x00, 0x03, 0x08, 0x0b),
    fc.constantFrom(...Object.values(FrameType), 0x77),
    fc.uint8Array({ maxLength: 64 }),
    u32,
  ).map(([flags, type, body, seq]) => {
    // A valid header and checksum around a random body: reaches the decoders.
    const frame: Frame = { type, flags, seq, body };
    return encodeFrames([frame]);
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), frameLike), { maxLength: 4 }),
      cuts,
      async (parts, fractions) => {
        await decodeHostile(rechunk(concat(parts), fractions));
      },
    ),
    { numRuns: 5000 },
  );
});

type Mutation =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  record({
    kind: fc.constant("flip" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  record({
    kind: fc.constant("truncate" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  record({
    kind: fc.constant("insert" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
);

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes: Uint8Array = input.slice();
  for (const m of mutations) {
    const at = Math.min(Math.floor(m.at * bytes.length), Math.max(0, bytes.length - 1));
    if (m.kind === "flip") {
      if (bytes.length > 0) bytes[at] ^= m.mask;
    } else if (m.kind === "truncate") {
      bytes = bytes.slice(0, at);
    } else {
      bytes = concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    }
  }
  return bytes;
}

Deno.test("mutated frames decode to messages or a StreamwireError, never hang", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(message, { minLength: 1, maxLength: 3 }),
      algorithm,
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      cuts,
      async (messages, algorithm, mutations, fixChecksum, fractions) => {
        let bytes: Uint8Array;
        if (fixChecksum) {
          // Mutate one frame's body, then give it a valid header and CRC,
          // so that decompression and message decoding see the damage.
          const frames = messages.map((m) => encodeMessage(m));
          const [first] = frames;
          const packed = await encode([[messages[0]]], { algorithm, threshold: 0 });
          const flags = packed[3];
          const body = mutate(packed.subarray(17), mutations);
          bytes = concat([
            encodeFrames([{ type: first.type, flags, seq: first.seq, body }]),
            encodeFrames(frames.slice(1)),
          ]);
        } else {
          bytes = mutate(await encode([messages], { algorithm, threshold: 0 }), mutations);
        }
        await decodeHostile(rechunk(bytes, fractions));
      },
    ),
    { numRuns: 4000 },
  );
});
