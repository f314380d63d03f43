import assert from "node:assert/strict";
import {
  ChecksumStream,
  Compression,
  type CompressionName,
  CompressorStream,
  createDecodeChain,
  createEncodeChain,
  decodeExtensions,
  decodeMessage,
  DecompressorStream,
  DeframerStream,
  encodedBodySize,
  encodeFrames,
  encodeMessage,
  encodeMessages,
  type Extensions,
  Flag,
  type Frame,
  FrameEncoderStream,
  FrameType,
  type Message,
  MessageDecoderStream,
  MessageEncoderStream,
  splitBody,
  Status,
  StreamwireError,
} from "../../codec/mod.ts";
import { encodeWire } from "../../codec/_frame_write.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const ALGORITHMS: [CompressionName, number][] = [
  ["zlib", Compression.ZLIB],
  ["lz4", Compression.LZ4],
  ["zstd", Compression.ZSTD],
];

/** Compressible bytes: JSON-like text of `size` bytes. */
function compressible(size: number): Uint8Array {
  const line = utf8('{"user":"ada","op":"add","args":[2,40],"ok":true}\n');
  return Uint8Array.from({ length: size }, (_, i) => line[i % line.length]);
}

/** Incompressible bytes (xorshift). */
function noise(size: number): Uint8Array {
  let x = 0x9e3779b9;
  return Uint8Array.from({ length: size }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  });
}

const FULL_EXT: Extensions = {
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
  timeoutMs: 1500,
  metadata: [
    ["authorization", "Bearer abc"],
    ["x-tag", "a"],
    ["x-tag", "b"],
    ["lang", "héllo ✓ 🚀"],
    ["empty", ""],
  ],
};

const EXT_VARIANTS: [string, Extensions | undefined][] = [
  ["no extensions", undefined],
  ["an empty extension block", {}],
  ["traceparent", { traceparent: FULL_EXT.traceparent }],
  ["tracestate", { tracestate: FULL_EXT.tracestate }],
  ["timeoutMs", { timeoutMs: 0xffffffff }],
  ["repeated metadata", { metadata: FULL_EXT.metadata }],
  ["all extensions", FULL_EXT],
];

/** One message of every type of PROTOCOL.md 2. */
const MESSAGES: Message[] = [
  {
    type: FrameType.HELLO,
    seq: 0,
    hello: { version: 1, codecs: ["msgpack", "json"], agent: "t/1" },
  },
  { type: FrameType.HELLO_ACK, seq: 0, ack: { version: 1, session: "s-1", window: 64 } },
  { type: FrameType.PING, seq: 7, payload: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
  { type: FrameType.PONG, seq: 7, payload: new Uint8Array(64).fill(9) },
  { type: FrameType.GOAWAY, seq: 0, code: Status.UNAVAILABLE, lastId: 0xfffffffe, reason: "bye ✓" },
  { type: FrameType.REQUEST, seq: 1, method: "math.add", params: utf8("[2,40]") },
  { type: FrameType.RESPONSE, seq: 1, data: utf8("42") },
  { type: FrameType.NOTIFY, seq: 0, method: "log", params: new Uint8Array(0) },
  { type: FrameType.BROADCAST, seq: 0, method: "news/日本", params: utf8('"hi"') },
  {
    type: FrameType.BATCH,
    seq: 3,
    entries: [
      { method: "a", params: Uint8Array.of(1) },
      { method: "ü".repeat(300), params: new Uint8Array(0) },
      { method: "c", params: compressible(100) },
    ],
  },
  { type: FrameType.BATCH, seq: 5, entries: [] },
  {
    type: FrameType.BATCH_RESULT,
    seq: 3,
    results: [
      { code: 0, data: Uint8Array.of(1) },
      { code: Status.NOT_FOUND, data: utf8("No method 'b'") },
      { code: 0, data: new Uint8Array(0) },
    ],
  },
  { type: FrameType.OPEN, seq: 9, method: "stream.tail", params: utf8("{}") },
  { type: FrameType.DATA, seq: 9, data: Uint8Array.of(0, 255) },
  { type: FrameType.END, seq: 9 },
  { type: FrameType.CANCEL, seq: 9, code: Status.CANCELLED, message: "user pressed ^C" },
  { type: FrameType.CREDIT, seq: 9, credit: 0xffffffff },
  { type: FrameType.ERROR, seq: 11, code: Status.INTERNAL, message: "" },
];

function withExt(message: Message, ext: Extensions | undefined): Message {
  return ext === undefined ? message : { ...message, ext };
}

async function pipeAll<T>(chunks: unknown[], ...stages: TransformStream[]): Promise<T[]> {
  let readable: ReadableStream = ReadableStream.from(chunks);
  for (const stage of stages) readable = readable.pipeThrough(stage);
  return (await Array.fromAsync(readable as ReadableStream<T[]>)).flat() as T[];
}

function decodeBytes(chunks: Uint8Array[], options = {}): Promise<Message[]> {
  return pipeAll<Message>(chunks, createDecodeChain(options) as TransformStream);
}

function assertCode(code: number, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StreamwireError, `expected StreamwireError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** A frame with a hand-made body, as wire bytes. */
function frameBytes(type: number, body: number[] | Uint8Array, flags = 0, seq = 1): Uint8Array {
  return encodeFrames([{ type, flags, seq, body: Uint8Array.from(body) }]);
}

Deno.test("decodeMessage inverts encodeMessage for every type, with and without extensions", () => {
  for (const message of MESSAGES) {
    for (const [name, ext] of EXT_VARIANTS) {
      const original = withExt(message, ext);
      const frame = encodeMessage(original);
      assert.equal(frame.type, message.type);
      assert.equal(frame.seq, message.seq);
      assert.equal(frame.flags, ext === undefined ? 0 : Flag.EXT);
      assert.deepEqual(
        decodeMessage(frame),
        original,
        `type 0x${message.type.toString(16)}, ${name}`,
      );
    }
  }
});

Deno.test("the encode and decode chains round-trip every type, with and without extensions", async () => {
  const messages = EXT_VARIANTS.flatMap(([, ext]) => MESSAGES.map((m) => withExt(m, ext)));
  const bytes = await pipeAll<Uint8Array>([messages], createEncodeChain() as TransformStream);
  assert.deepEqual(await decodeBytes([bytes.flat()[0]]), messages);
});

Deno.test("encodeWire writes every type as encodeFrames(encodeMessages()) does, in one buffer", () => {
  const messages = EXT_VARIANTS.flatMap(([, ext]) => MESSAGES.map((m) => withExt(m, ext)));
  const sizes = messages.map((m) => encodedBodySize(m));
  assert.deepEqual(encodeWire(messages, sizes), encodeFrames(encodeMessages(messages, sizes)));
  assert.deepEqual(encodeWire([], []), new Uint8Array(0));
});

Deno.test("decodeExtensions skips unknown keys", () => {
  const ext = decodeExtensions(Uint8Array.of(
    ...[0x7f, 0, 3, 0x61, 0x62, 0x63], // unknown key 0x7f, 3 bytes
    ...[0x03, 0, 4, 0, 0, 0x05, 0xdc], // timeout 1500
    ...[0x00, 0, 0], // unknown key 0, empty
    ...[0x04, 0, 3, 1, 0x6b, 0x76], // metadata k=v
    ...[0xff, 0, 1, 9], // unknown key 0xff
  ));
  assert.deepEqual(ext, { timeoutMs: 1500, metadata: [["k", "v"]] });
});

Deno.test("a frame with unknown extension keys decodes through the chain", async () => {
  const entries = [0x7f, 0, 2, 0xde, 0xad, 0x01, 0, 3, 0x30, 0x30, 0x2d, 0xee, 0, 0];
  const body = [0, entries.length, ...entries, 0, 0, 0, 8];
  const messages = await decodeBytes([frameBytes(FrameType.CREDIT, body, Flag.EXT, 4)]);
  assert.deepEqual(messages, [
    { type: FrameType.CREDIT, seq: 4, credit: 8, ext: { traceparent: "00-" } },
  ]);
});

Deno.test("extension entries that overrun their block are rejected with invalid_argument", async () => {
  const bad: [string, number[], RegExp][] = [
    ["value overruns extLen", [0x01, 0, 5, 0x41], /length '5' at '0' overruns extLen '4'/],
    ["entry header cut", [0x03, 0, 4, 0, 0, 0, 1, 0x01, 0], /entry header at '7' overruns/],
    ["timeout not 4 bytes", [0x03, 0, 3, 0, 0, 1], /Timeout extension has length '3'/],
    ["metadata name overruns", [0x04, 0, 2, 5, 0x61], /Metadata entry name overruns/],
    ["metadata without name length", [0x04, 0, 0], /Metadata entry name overruns/],
    ["invalid UTF-8", [0x02, 0, 2, 0xc3, 0x28], /tracestate is not valid UTF-8/],
  ];
  for (const [name, entries, pattern] of bad) {
    assert.throws(() => decodeExtensions(Uint8Array.from(entries)), assertCode(3, pattern), name);
    const body = [0, entries.length, ...entries];
    await assert.rejects(
      decodeBytes([frameBytes(FrameType.END, body, Flag.EXT)]),
      assertCode(Status.INVALID_ARGUMENT, pattern),
      name,
    );
  }
});

Deno.test("an extLen that overruns the body is rejected with invalid_argument", async () => {
  assert.throws(
    () => splitBody(Flag.EXT, Uint8Array.of(0, 5, 1, 2)),
    assertCode(3, /'5' overruns/),
  );
  assert.throws(() => splitBody(Flag.EXT, Uint8Array.of(0)), assertCode(3, /no room for extLen/));
  assert.deepEqual(splitBody(0, Uint8Array.of(0, 5)).payload, Uint8Array.of(0, 5));
  for (const body of [[], [0], [0xff, 0xff, 0, 0, 0, 0]]) {
    await assert.rejects(
      decodeBytes([frameBytes(FrameType.CREDIT, body, Flag.EXT)]),
      assertCode(Status.INVALID_ARGUMENT),
    );
  }
});

Deno.test("a batch count larger than the payload can hold is rejected before allocating", () => {
  for (const type of [FrameType.BATCH, FrameType.BATCH_RESULT]) {
    const before = Deno.memoryUsage().heapUsed;
    for (const count of [0xffffffff, 0x7fffffff, 100_000_000, 2]) {
      const body = Uint8Array.of(count >>> 24, count >>> 16, count >>> 8, count, 0, 1, 0x61, 0, 0);
      assert.throws(
        () => decodeMessage({ type, flags: 0, seq: 1, body }),
        assertCode(
          Status.INVALID_ARGUMENT,
          new RegExp(`count '${count}' does not fit in '9' bytes`),
        ),
      );
    }
    const grown = Deno.memoryUsage().heapUsed - before;
    assert.ok(grown < 1024 * 1024, `heap grew by ${grown} bytes`);
  }
  // A count the payload could hold but whose entries are not there.
  const body = Uint8Array.of(0, 0, 0, 2, 0, 1, 0x61, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert.throws(
    () => decodeMessage({ type: FrameType.BATCH, flags: 0, seq: 1, body }),
    assertCode(Status.INVALID_ARGUMENT, /BATCH entry 1/),
  );
});

Deno.test("malformed bodies of each type are rejected with invalid_argument", async () => {
  const bad: [string, number, number[]][] = [
    ["empty method", FrameType.REQUEST, [0, 0, 0, 0, 0, 0]],
    ["method overruns", FrameType.REQUEST, [0, 9, 0x61, 0, 0, 0, 0]],
    ["params overrun", FrameType.OPEN, [0, 1, 0x61, 0, 0, 0, 9, 1]],
    ["trailing bytes", FrameType.NOTIFY, [0, 1, 0x61, 0, 0, 0, 0, 7]],
    ["non-UTF-8 method", FrameType.REQUEST, [0, 1, 0xff, 0, 0, 0, 0]],
    ["END with payload", FrameType.END, [1]],
    ["short CREDIT", FrameType.CREDIT, [0, 0, 1]],
    ["short GOAWAY", FrameType.GOAWAY, [0, 14, 0, 0, 0]],
    ["ERROR without code", FrameType.ERROR, [3]],
    ["HELLO not JSON", FrameType.HELLO, [0x7b]],
    ["HELLO not an object", FrameType.HELLO, [0x5b, 0x5d]],
    ["BATCH_RESULT entry overruns", FrameType.BATCH_RESULT, [0, 0, 0, 1, 0, 0, 0, 0, 0, 9]],
  ];
  for (const [name, type, body] of bad) {
    await assert.rejects(decodeBytes([frameBytes(type, body)]), assertCode(3), name);
  }
  // CANCEL may omit its code: it then means `cancelled`.
  assert.deepEqual(await decodeBytes([frameBytes(FrameType.CANCEL, [], 0, 5)]), [
    { type: FrameType.CANCEL, seq: 5, code: Status.CANCELLED, message: "" },
  ]);
});

Deno.test("PING and PONG payloads over 64 bytes are rejected", async () => {
  for (const type of [FrameType.PING, FrameType.PONG]) {
    const [ok] = await decodeBytes([frameBytes(type, new Uint8Array(64))]);
    assert.equal(ok.type === type && ok.payload.length, 64);
    await assert.rejects(
      decodeBytes([frameBytes(type, new Uint8Array(65))]),
      assertCode(Status.INVALID_ARGUMENT, /'65' bytes exceeds '64'/),
    );
    assert.throws(
      () => encodeMessage({ type, seq: 1, payload: new Uint8Array(65) }),
      assertCode(Status.INVALID_ARGUMENT, /'65' bytes exceeds '64'/),
    );
  }
});

Deno.test("ChecksumStream errors with data_loss on any corrupted seq, checksum or body byte", async () => {
  const bytes = encodeFrames([encodeMessage(withExt(MESSAGES[5], FULL_EXT))]);
  for (let i = 9; i < bytes.length; i++) {
    const corrupt = bytes.slice();
    corrupt[i] ^= 0x20;
    await assert.rejects(
      pipeAll([corrupt], new DeframerStream(), new ChecksumStream()),
      assertCode(Status.DATA_LOSS, /Checksum mismatch on frame seq/),
      `byte ${i}`,
    );
    const error = await decodeBytes([corrupt]).catch((e) => e);
    assert.equal(error.codeName, "data_loss");
  }
  // Turning verification off trusts the transport: the corrupt frame passes.
  const corrupt = bytes.slice();
  corrupt[13] ^= 1;
  const [message] = await decodeBytes([corrupt], { verifyChecksum: false });
  assert.equal(message.type, FrameType.REQUEST);
});

Deno.test("CompressorStream compresses payloads, never the extension block, for every algorithm", async () => {
  const messages: Message[] = [
    { type: FrameType.REQUEST, seq: 1, method: "put", params: compressible(4096), ext: FULL_EXT },
    { type: FrameType.DATA, seq: 3, data: compressible(8192) },
    { type: FrameType.RESPONSE, seq: 1, data: compressible(100), ext: { timeoutMs: 5 } },
    {
      type: FrameType.BATCH,
      seq: 5,
      entries: [{ method: "a", params: compressible(2048) }, { method: "b", params: noise(10) }],
      ext: { metadata: [["k", "v"]] },
    },
  ];
  for (const [name, code] of ALGORITHMS) {
    const frames = await pipeAll<Frame>(
      messages,
      new MessageEncoderStream(),
      new CompressorStream({ algorithm: name }),
    );
    assert.deepEqual(frames.map((f) => f.flags & Flag.COMPRESSION_MASK), [code, code, 0, code]);
    frames.forEach((frame, i) => {
      const plain = encodeMessage(messages[i]).body;
      assert.equal(frame.flags & Flag.EXT, messages[i].ext ? Flag.EXT : 0);
      if (messages[i].ext) {
        const extBlock = plain.subarray(0, 2 + ((plain[0] << 8) | plain[1]));
        assert.deepEqual(frame.body.subarray(0, extBlock.length), extBlock, `${name} #${i}`);
      }
      if (frame.flags & Flag.COMPRESSION_MASK) assert.ok(frame.body.length < plain.length / 4);
    });
    const decoded = await pipeAll<Message>(
      frames,
      new FrameEncoderStream(),
      new DeframerStream(),
      new ChecksumStream(),
      new DecompressorStream(),
      new MessageDecoderStream(),
    );
    assert.deepEqual(decoded, messages, name);
  }
});

Deno.test("CompressorStream sends payloads under the threshold plain", async () => {
  const frames = (messages: Message[], threshold?: number) =>
    pipeAll<Frame>(
      messages,
      new MessageEncoderStream(),
      new CompressorStream({ algorithm: "zstd", threshold }),
    );
  const flags = (fs: Frame[]) => fs.map((f) => f.flags & Flag.COMPRESSION_MASK);
  const sized = (n: number, ext?: Extensions): Message => ({
    type: FrameType.DATA,
    seq: 1,
    data: compressible(n),
    ext,
  });
  // The default threshold is 1 KiB of payload; the extension block does not count.
  assert.deepEqual(flags(await frames([sized(1023), sized(1024)])), [0, Compression.ZSTD]);
  assert.deepEqual(flags(await frames([sized(1000, FULL_EXT)])), [0]);
  assert.deepEqual(flags(await frames([sized(100), sized(99)], 100)), [Compression.ZSTD, 0]);
  // Payloads that compression would not shrink go plain too.
  const random = await frames([{ type: FrameType.DATA, seq: 1, data: noise(4096) }]);
  assert.deepEqual(flags(random), [0]);
  // Without an algorithm, nothing is compressed.
  const none = await pipeAll<Frame>(
    [sized(1 << 16)],
    new MessageEncoderStream(),
    new CompressorStream(),
  );
  assert.deepEqual(flags(none), [0]);
});

Deno.test("DecompressorStream rejects an algorithm it did not accept with unimplemented", async () => {
  for (const [name] of ALGORITHMS) {
    const frames = await pipeAll<Frame>(
      [{ type: FrameType.DATA, seq: 1, data: compressible(4096) }],
      new MessageEncoderStream(),
      new CompressorStream({ algorithm: name }),
    );
    const bytes = encodeFrames(frames);
    const others = ALGORITHMS.map(([n]) => n).filter((n) => n !== name);
    await assert.rejects(
      pipeAll(frames, new DecompressorStream({ accept: others })),
      assertCode(Status.UNIMPLEMENTED, new RegExp(`compression '${name}', which was not accepted`)),
    );
    await assert.rejects(
      pipeAll(frames, new DecompressorStream({ accept: [] })),
      assertCode(Status.UNIMPLEMENTED),
    );
    const [plain] = await pipeAll<Frame>(frames, new DecompressorStream({ accept: [name] }));
    assert.equal(plain.flags & Flag.COMPRESSION_MASK, 0);
    assert.deepEqual(plain.body, compressible(4096));
    await assert.rejects(decodeBytes([bytes], { accept: others }), assertCode(12));
  }
});

Deno.test("the decode chain refuses a payload that inflates past maxFrame", async () => {
  for (const [name] of ALGORITHMS) {
    const bytes = await pipeAll<Uint8Array>(
      [[{ type: FrameType.DATA, seq: 1, data: new Uint8Array(1 << 20) }]],
      createEncodeChain({ algorithm: name }) as TransformStream,
    );
    assert.ok(bytes[0].length < 64 * 1024);
    await assert.rejects(
      decodeBytes(bytes, { maxFrame: 64 * 1024 }),
      assertCode(Status.RESOURCE_EXHAUSTED),
      name,
    );
  }
});

Deno.test("decodeMessage refuses a frame that is still compressed", () => {
  assert.throws(
    () =>
      decodeMessage({
        type: FrameType.DATA,
        flags: Compression.LZ4,
        seq: 2,
        body: Uint8Array.of(1),
      }),
    assertCode(Status.INTERNAL, /still compressed/),
  );
});

Deno.test("createEncodeChain and createDecodeChain round-trip batches with compression", async () => {
  const batches: Message[][] = [
    MESSAGES,
    MESSAGES.map((m) => withExt(m, FULL_EXT)),
    [
      { type: FrameType.REQUEST, seq: 13, method: "bulk", params: compressible(5000) },
      { type: FrameType.DATA, seq: 9, data: compressible(3000), ext: { traceparent: "00-x" } },
      { type: FrameType.BATCH_RESULT, seq: 3, results: [{ code: 0, data: compressible(2000) }] },
    ],
  ];
  for (const [name] of ALGORITHMS) {
    const chunks = await pipeAll<Uint8Array>(
      batches,
      createEncodeChain({ algorithm: name, threshold: 512 }) as TransformStream,
    );
    // One chunk per batch; re-split into 7-byte reads.
    const chunksFlat = chunks.flat();
    assert.equal(chunksFlat.length, batches.length);
    const joined = new Uint8Array(chunksFlat.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunksFlat) {
      joined.set(c, o);
      o += c.length;
    }
    const reads = Array.from(
      { length: Math.ceil(joined.length / 7) },
      (_, i) => joined.subarray(i * 7, i * 7 + 7),
    );
    assert.deepEqual(await decodeBytes(reads), batches.flat(), name);
    const frames = await pipeAll<Frame>([joined], new DeframerStream());
    assert.ok(frames.some((f) => (f.flags & Flag.COMPRESSION_MASK) !== 0), name);
  }
});
