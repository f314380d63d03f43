import assert from "node:assert/strict";
import {
  ChecksumStage,
  ChecksumStream,
  composeStages,
  compressFrame,
  CompressorStage,
  createDecodeChain,
  createDecodeStage,
  createEncodeChain,
  createEncodeStage,
  decodeMessage,
  DecompressorStage,
  DecompressorStream,
  DeframerStage,
  encodeFrames,
  encodeMessage,
  encodeMessages,
  Flag,
  type Frame,
  FrameEncoderStage,
  FrameType,
  type Message,
  MessageDecoderStage,
  MessageDecoderStream,
  MessageEncoderStage,
  StageStream,
  Status,
  StreamwireError,
} from "../../codec/mod.ts";
import { isLengthCached, LENGTH_CACHE_LIMIT, lengthCacheSize } from "../../codec/_length_cache.ts";

function assertCode(code: number, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StreamwireError, `expected StreamwireError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** A controller that collects what a stage enqueues. */
function collector<T>(): { items: T[]; controller: TransformStreamDefaultController<T> } {
  const items: T[] = [];
  const controller = {
    desiredSize: 1,
    enqueue: (item: T) => void items.push(item),
    error(reason?: unknown) {
      throw reason;
    },
    terminate() {},
  } as TransformStreamDefaultController<T>;
  return { items, controller };
}

/** Reads `readable` until it fails; returns what was read and the error. */
async function readUntilError<T>(readable: ReadableStream<T>): Promise<[T[], unknown]> {
  const read: T[] = [];
  try {
    for await (const item of readable) read.push(item);
  } catch (error) {
    return [read, error];
  }
  return [read, undefined];
}

/** An open-ended readable: delivers `chunks` and stays open, like an idle peer. */
function openEnded<T>(chunks: T[]): ReadableStream<T> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
  });
}

const GOOD = encodeMessages([
  { type: FrameType.CREDIT, seq: 1, credit: 8 },
  { type: FrameType.REQUEST, seq: 3, method: "echo", params: new Uint8Array(40) },
  { type: FrameType.END, seq: 5 },
]);
/** Wire bytes of GOOD, then a frame whose body byte was flipped after checksumming. */
const CORRUPT_LAST = (() => {
  const good = encodeFrames(GOOD);
  const bad = encodeFrames([{ type: FrameType.DATA, flags: 0, seq: 7, body: new Uint8Array(8) }]);
  bad[bad.length - 1] ^= 1;
  return new Uint8Array([...good, ...bad]);
})();

// ---------------------------------------------------------------------------
// Failures keep what came before

Deno.test("ChecksumStream hands over the good frames before a corrupted one, then fails", async () => {
  const { items: frames, controller } = collector<Frame>();
  new DeframerStage().transform(CORRUPT_LAST, controller);
  assert.equal(frames.length, 4);

  // Open-ended: the error must come from the bad frame itself, not from the end of input.
  const [read, error] = await readUntilError(openEnded(frames).pipeThrough(new ChecksumStream()));
  assert.deepEqual(read.map((f) => f.seq), [1, 3, 5]);
  assertCode(Status.DATA_LOSS, /Checksum mismatch on frame seq '7'/)(error);
});

Deno.test("the decode chain hands over the messages before a corrupted frame of the same read", async () => {
  const [read, error] = await readUntilError(
    openEnded([CORRUPT_LAST]).pipeThrough(createDecodeChain()),
  );
  assert.deepEqual(read.flat().map((m) => m.seq), [1, 3, 5]);
  assertCode(Status.DATA_LOSS)(error);
});

Deno.test("DecompressorStream and MessageDecoderStream keep what came before a failure", async () => {
  const plain = { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(2000) };
  const packed = compressFrame({ ...plain, seq: 3 }, { algorithm: "lz4" });
  const [frames, inflateError] = await readUntilError(
    openEnded([plain, packed]).pipeThrough(new DecompressorStream({ accept: ["zstd"] })),
  );
  assert.deepEqual(frames.map((f) => f.seq), [1]);
  assertCode(Status.UNIMPLEMENTED, /'lz4', which was not accepted/)(inflateError);

  const bad = { type: FrameType.END, flags: 0, seq: 9, body: Uint8Array.of(1) };
  const [messages, decodeError] = await readUntilError(
    openEnded([...GOOD, bad]).pipeThrough(new MessageDecoderStream()),
  );
  assert.deepEqual(messages.map((m) => m.seq), [1, 3, 5]);
  assertCode(Status.INVALID_ARGUMENT, /END carries '1' payload bytes/)(decodeError);
});

// ---------------------------------------------------------------------------
// Stages and their composition

Deno.test("the composed decode stage driven by a loop matches the decode chain", async () => {
  const bytes = encodeFrames(GOOD);
  const stage = createDecodeStage();
  const { items, controller } = collector<Message>();
  for (let i = 0; i < bytes.length; i += 5) stage.transform(bytes.subarray(i, i + 5), controller);
  stage.flush(controller);
  const viaChain = await Array.fromAsync(
    ReadableStream.from([bytes]).pipeThrough(createDecodeChain()),
  );
  assert.deepEqual(items, viaChain.flat());
  assert.deepEqual(items.map((m) => m.type), [FrameType.CREDIT, FrameType.REQUEST, FrameType.END]);
});

Deno.test("createDecodeStage without checksum verification accepts a corrupted body", () => {
  const { items, controller } = collector<Message>();
  const corrupt = encodeFrames([
    encodeMessage({ type: FrameType.DATA, seq: 1, data: Uint8Array.of(1) }),
  ]);
  corrupt[corrupt.length - 1] ^= 0xff;
  createDecodeStage({ verifyChecksum: false }).transform(corrupt, controller);
  assert.deepEqual(items, [{ type: FrameType.DATA, seq: 1, data: Uint8Array.of(0xfe) }]);
  assert.throws(
    () => createDecodeStage().transform(corrupt, collector<Message>().controller),
    assertCode(Status.DATA_LOSS),
  );
});

Deno.test("createDecodeStage settles accept and maxBatchEntries for later frames", () => {
  const stage = createDecodeStage({ accept: [], maxBatchEntries: 0 });
  assert.deepEqual(stage.accept, []);
  const packed = encodeFrames([
    compressFrame(encodeMessage({ type: FrameType.DATA, seq: 1, data: new Uint8Array(4096) }), {
      algorithm: "zstd",
    }),
  ]);
  assert.throws(() => stage.transform(packed, collector<Message>().controller), assertCode(12));
  stage.accept = ["zstd"];
  const { items, controller } = collector<Message>();
  stage.transform(packed, controller);
  assert.equal(items.length, 1);

  const batch = encodeFrames([encodeMessage({
    type: FrameType.BATCH,
    seq: 3,
    entries: [{ method: "a", params: new Uint8Array(0) }],
  })]);
  stage.transform(batch, controller);
  assert.deepEqual(items[1], { type: FrameType.BATCH, seq: 3, entries: [], declared: 1 });
  stage.maxBatchEntries = 1;
  assert.equal(stage.maxBatchEntries, 1);
  stage.transform(batch, controller);
  assert.equal(items[2].type === FrameType.BATCH && items[2].entries.length, 1);
});

Deno.test("createEncodeStage makes one chunk per message, its header written in place", async () => {
  const messages: Message[] = [
    { type: FrameType.CREDIT, seq: 1, credit: 8 },
    { type: FrameType.DATA, seq: 3, data: new Uint8Array(3000) },
  ];
  for (const algorithm of [undefined, "zstd"] as const) {
    const chunks = await Array.fromAsync(
      ReadableStream.from(messages).pipeThrough(new StageStream(createEncodeStage({ algorithm }))),
    );
    assert.equal(chunks.length, 2);
    assert.equal(chunks[0].length, 17 + 4);
    assert.equal(chunks[0].byteOffset, 0);
    assert.equal(chunks[0].buffer.byteLength, 17 + 4, "no copy: the message's own buffer");
    if (algorithm) assert.ok(chunks[1].length < 100);
    const decoded = await Array.fromAsync(
      ReadableStream.from(chunks).pipeThrough(createDecodeChain()),
    );
    assert.deepEqual(decoded.flat(), messages);
  }
});

Deno.test("createEncodeChain writes one chunk per batch without copying the bodies", async () => {
  const batch: Message[] = [
    { type: FrameType.CREDIT, seq: 1, credit: 8 },
    { type: FrameType.END, seq: 1 },
    { type: FrameType.REQUEST, seq: 3, method: "m", params: new Uint8Array(10) },
  ];
  const [bytes, ...rest] = await Array.fromAsync(
    ReadableStream.from([batch, []]).pipeThrough(createEncodeChain()),
  );
  assert.equal(rest.length, 0, "an empty batch writes nothing");
  assert.equal(bytes.length, 3 * 17 + 4 + 0 + 17);
  assert.equal(bytes.buffer.byteLength, bytes.length, "the batch's own arena");
  assert.deepEqual(
    (await Array.fromAsync(ReadableStream.from([bytes]).pipeThrough(createDecodeChain()))).flat(),
    batch,
  );
});

Deno.test("the per-frame stages compose into the same bytes as the batch functions", () => {
  const messages: Message[] = [
    { type: FrameType.RESPONSE, seq: 1, data: new Uint8Array(5000).fill(7) },
    { type: FrameType.ERROR, seq: 3, code: 13, message: "x", ext: { timeoutMs: 5 } },
  ];
  const stage = composeStages<Message, Uint8Array>(
    new MessageEncoderStage(),
    new CompressorStage({ algorithm: "lz4" }),
    new FrameEncoderStage(),
  );
  const { items, controller } = collector<Uint8Array>();
  for (const m of messages) stage.transform!(m, controller);
  const expected = encodeFrames(
    encodeMessages(messages).map((f) => compressFrame(f, { algorithm: "lz4" })),
  );
  assert.deepEqual(new Uint8Array(items.flatMap((c) => [...c])), expected);
});

Deno.test("composeStages keeps order across asynchronous stages and flushes through later ones", async () => {
  const log: string[] = [];
  const slow: Transformer<number, number> = {
    async transform(n, c) {
      await new Promise((resolve) => setTimeout(resolve, n === 1 ? 5 : 0));
      c.enqueue(n * 10);
    },
    flush(c) {
      c.enqueue(99);
    },
  };
  const tag: Transformer<number, string> = {
    transform(n, c) {
      log.push(`tag ${n}`);
      c.enqueue(`#${n}`);
    },
    flush(c) {
      c.enqueue("end");
    },
  };
  const out = await Array.fromAsync(
    ReadableStream.from([1, 2, 3]).pipeThrough(
      new StageStream(composeStages<number, string>(slow, tag)),
    ),
  );
  assert.deepEqual(out, ["#10", "#20", "#30", "#99", "end"]);
  assert.deepEqual(log, ["tag 10", "tag 20", "tag 30", "tag 99"]);
});

Deno.test("composeStages passes chunks through a stage without transform", async () => {
  const double = {
    transform: (n: number, c: TransformStreamDefaultController<number>) => c.enqueue(2 * n),
  };
  const out = await Array.fromAsync(
    ReadableStream.from([1, 2]).pipeThrough(
      new StageStream(composeStages<number, number>(double, {}, double)),
    ),
  );
  assert.deepEqual(out, [4, 8]);
});

Deno.test("stages refuse limits that would disable their checks", () => {
  assert.throws(() => new DecompressorStage({ maxFrame: -1 }), assertCode(3));
  assert.throws(() => {
    new DecompressorStage().maxFrame = NaN;
  }, assertCode(3));
  assert.throws(() => new MessageDecoderStage({ maxBatchEntries: -5 }), assertCode(3));
  assert.throws(() => {
    new CompressorStage().threshold = -1;
  }, assertCode(3));
  assert.throws(() => createDecodeStage({ maxFrame: 1.5 }), assertCode(3));
  assert.equal(new MessageDecoderStage({ maxBatchEntries: Infinity }).maxBatchEntries, Infinity);
  assert.equal(new MessageDecoderStage().maxBatchEntries, 1024);
});

Deno.test("ChecksumStage checks frames whose header was handed over separately", () => {
  const bytes = encodeFrames([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }]);
  const frame: Frame = {
    type: FrameType.END,
    flags: 0,
    seq: 5,
    body: new Uint8Array(0),
    header: bytes.slice(0, 17),
  };
  const { items, controller } = collector<Frame>();
  new ChecksumStage().transform(frame, controller);
  assert.equal(items.length, 1);
  frame.header![16] ^= 1;
  assert.throws(() => new ChecksumStage().transform(frame, controller), assertCode(15));
});

// ---------------------------------------------------------------------------
// BATCH entry bound

/** A BATCH body declaring `count` entries "m" with empty params. */
function batchFrame(count: number): Frame {
  const body = new Uint8Array(4 + 7 * count);
  new DataView(body.buffer).setUint32(0, count);
  for (let i = 0, o = 4; i < count; i++, o += 7) {
    body[o + 1] = 1;
    body[o + 2] = 0x6d;
  }
  return { type: FrameType.BATCH, flags: 0, seq: 1, body };
}

Deno.test("a BATCH over maxBatchEntries is decoded from its count, without building entries", () => {
  const huge = batchFrame(1_000_000);
  const before = Deno.memoryUsage().heapUsed;
  const message = decodeMessage(huge, { maxBatchEntries: 1024 });
  const grown = Deno.memoryUsage().heapUsed - before;
  assert.deepEqual(message, { type: FrameType.BATCH, seq: 1, entries: [], declared: 1_000_000 });
  assert.ok(grown < 1024 * 1024, `heap grew by ${grown} bytes`);

  // At the limit the entries are built; without options, always.
  const at = decodeMessage(batchFrame(1024), { maxBatchEntries: 1024 });
  assert.equal(at.type === FrameType.BATCH && at.entries.length, 1024);
  assert.equal(at.type === FrameType.BATCH && at.declared, undefined);
  const all = decodeMessage(batchFrame(2000));
  assert.equal(all.type === FrameType.BATCH && all.entries.length, 2000);
});

Deno.test("a BATCH over maxBatchEntries is still checked for malformed entries", () => {
  const frame = batchFrame(3);
  frame.body[4 + 7 + 1] = 0; // entry 1: empty method name
  assert.throws(
    () => decodeMessage(frame, { maxBatchEntries: 1 }),
    assertCode(Status.INVALID_ARGUMENT, /BATCH entry 1: method name is empty/),
  );
  const trailing = { ...batchFrame(3), body: new Uint8Array([...batchFrame(3).body, 0]) };
  assert.throws(() => decodeMessage(trailing, { maxBatchEntries: 1 }), assertCode(3, /trailing/));
  // A count the payload cannot hold is malformed, whatever the limit.
  const lying = batchFrame(1);
  new DataView(lying.body.buffer).setUint32(0, 0xffffffff);
  assert.throws(() => decodeMessage(lying, { maxBatchEntries: 1 }), assertCode(3, /does not fit/));
});

Deno.test("the decode chain bounds BATCH entries at 1024 by default", async () => {
  const bytes = encodeFrames([batchFrame(1025), { ...batchFrame(1024), seq: 3 }]);
  const [messages] = await Array.fromAsync(
    ReadableStream.from([bytes]).pipeThrough(createDecodeChain()),
  );
  assert.deepEqual(messages[0], { type: FrameType.BATCH, seq: 1, entries: [], declared: 1025 });
  assert.equal(messages[1].type === FrameType.BATCH && messages[1].entries.length, 1024);
  const [[unbounded]] = await Array.fromAsync(
    ReadableStream.from([encodeFrames([batchFrame(1025)])]).pipeThrough(
      createDecodeChain({ maxBatchEntries: Infinity }),
    ),
  );
  assert.equal(unbounded.type === FrameType.BATCH && unbounded.entries.length, 1025);
});

Deno.test("a BATCH decoded from its count alone cannot be encoded again", () => {
  const message = decodeMessage(batchFrame(5), { maxBatchEntries: 2 });
  assert.throws(
    () => encodeMessage(message),
    assertCode(Status.INVALID_ARGUMENT, /declared '5' entries but holds '0'/),
  );
});

// ---------------------------------------------------------------------------
// Encoder details

Deno.test("encodeFrames leaves the bytes before a caller's body view alone", () => {
  const owned = new Uint8Array(64).fill(0xaa);
  const body = owned.subarray(17, 27);
  const bytes = encodeFrames([{ type: FrameType.DATA, flags: 0, seq: 1, body }]);
  assert.deepEqual(owned.subarray(0, 17), new Uint8Array(17).fill(0xaa));
  assert.notEqual(bytes.buffer, owned.buffer);
  const { items, controller } = collector<Uint8Array>();
  new FrameEncoderStage().transform({ type: FrameType.DATA, flags: 0, seq: 1, body }, controller);
  assert.deepEqual(owned.subarray(0, 17), new Uint8Array(17).fill(0xaa));
  assert.deepEqual(items[0], bytes);
});

Deno.test("the encode-side length cache stays bounded and keeps caching names seen late", () => {
  const frameFor = (method: string) =>
    encodeMessage({ type: FrameType.REQUEST, seq: 1, method, params: new Uint8Array(0) });
  for (let i = 0; i < 2000; i++) frameFor(`early.method.${i}`);
  assert.ok(lengthCacheSize() <= LENGTH_CACHE_LIMIT, `${lengthCacheSize()} entries`);
  frameFor("late.method");
  assert.ok(isLengthCached("late.method"), "a name first seen after 2,000 others is cached");
  for (let i = 0; i < 5000; i++) frameFor(`later.method.${i}`);
  assert.ok(lengthCacheSize() <= LENGTH_CACHE_LIMIT, `${lengthCacheSize()} entries`);
  frameFor("late.method");
  assert.ok(isLengthCached("late.method"));
  // Trace context is different on every call: it does not fill the cache.
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  encodeMessage({ type: FrameType.END, seq: 1, ext: { traceparent } });
  assert.equal(isLengthCached(traceparent), false);
});

Deno.test("MessageEncoderStage leaves header room and compressed frames lose it", () => {
  const { items, controller } = collector<Frame>();
  new MessageEncoderStage().transform({ type: FrameType.END, seq: 1 }, controller);
  assert.equal(items[0].body.byteOffset, 17);
  const packed = compressFrame(
    { type: FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) },
    { algorithm: "zlib" },
  );
  assert.equal(packed.flags & Flag.COMPRESSION_MASK, 1);
});

// ---------------------------------------------------------------------------
// StreamwireError.from

Deno.test("StreamwireError.from never takes a foreign error's numeric code", () => {
  for (const code of [5, 8, 16, 500, 0, -1]) {
    const foreign = Object.assign(new Error(`failed with ${code}`), { code });
    const error = StreamwireError.from(foreign);
    assert.equal(error.code, Status.UNKNOWN, `code ${code}`);
    assert.equal(error.message, `failed with ${code}`);
    assert.equal(error.cause, foreign);
  }
  // A DOMException's legacy code (NotFoundError is 8) is not a status either.
  const dom = new DOMException("gone", "NotFoundError");
  assert.equal(StreamwireError.from(dom).code, Status.UNKNOWN);
  const own = new StreamwireError(Status.PERMISSION_DENIED, "no");
  assert.equal(StreamwireError.from(own), own);
});

Deno.test("StreamwireError.from describes thrown values that are not errors", () => {
  assert.equal(StreamwireError.from("plain text").message, "plain text");
  assert.equal(StreamwireError.from("plain text").cause, "plain text");
  assert.equal(StreamwireError.from(42).codeName, "unknown");
  const bare = Object.create(null);
  assert.equal(StreamwireError.from(bare).message, "[object Object]");
  assert.equal(StreamwireError.from(bare).cause, bare);
});
