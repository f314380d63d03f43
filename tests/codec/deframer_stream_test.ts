import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import {
  createDecodeStage,
  Deframer,
  DeframerStage,
  DeframerStream,
  encodeFrames,
  encodeMessages,
  type Frame,
  FrameType,
  HEADER_SIZE,
  type Message,
  Status,
  StreamwireError,
} from "../../codec/mod.ts";

const MiB = 1024 * 1024;

/** Three frames of different sizes, concatenated as one sender would write them. */
const FRAMES: Frame[] = [
  { type: FrameType.PING, flags: 0, seq: 1, body: Uint8Array.of(1, 2, 3) },
  { type: FrameType.END, flags: 0, seq: 2, body: new Uint8Array(0) },
  { type: FrameType.DATA, flags: 0, seq: 3, body: Uint8Array.from({ length: 40 }, (_, i) => i) },
];
const BYTES = encodeFrames(FRAMES);

function deframe(chunks: Iterable<Uint8Array>, maxFrame?: number): Promise<Frame[]> {
  return Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new DeframerStream({ maxFrame })),
  );
}

/** Type, flags, seq and body of each frame, for comparison with {@linkcode FRAMES}. */
function fields(frames: Frame[]): Pick<Frame, "type" | "flags" | "seq" | "body">[] {
  return frames.map(({ type, flags, seq, body }) => ({ type, flags, seq, body }));
}

/** `bytes` cut at the given offsets. */
function cut(bytes: Uint8Array, ...at: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const end of [...at, bytes.length]) {
    chunks.push(bytes.slice(start, end));
    start = end;
  }
  return chunks;
}

/** A frame's header with one byte replaced, the body left out. */
function headerWith(offset: number, value: number): Uint8Array {
  const bytes = encodeFrames([FRAMES[0]]).slice(0, HEADER_SIZE);
  bytes[offset] = value;
  return bytes;
}

/** A header declaring `length` body bytes. */
function headerOfLength(length: number): Uint8Array {
  const bytes = headerWith(0, 0xca);
  new DataView(bytes.buffer).setUint32(5, length);
  return bytes;
}

/** A readable that delivers `chunks` and then stays open, like an idle peer. */
function openEnded(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
  });
}

function assertCode(code: number, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StreamwireError, `expected StreamwireError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** Forces a full garbage collection, exposing `gc` on first use. */
const gc: () => void = (() => {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc");
})();

Deno.test("DeframerStream splits frames across reads at every byte boundary", async () => {
  for (let at = 1; at < BYTES.length; at++) {
    const frames = await deframe(cut(BYTES, at));
    assert.deepEqual(fields(frames), FRAMES, `cut at ${at}`);
  }
});

Deno.test("DeframerStream splits frames across reads at every pair of boundaries", async () => {
  const bytes = BYTES.subarray(0, 2 * HEADER_SIZE + 3); // the first two frames
  for (let a = 1; a < bytes.length; a++) {
    for (let b = a; b < bytes.length; b++) {
      const frames = await deframe(cut(bytes, a, b));
      assert.deepEqual(fields(frames), FRAMES.slice(0, 2), `cut at ${a} and ${b}`);
    }
  }
});

Deno.test("DeframerStream reassembles frames fed one byte at a time", async () => {
  const frames = await deframe(Array.from(BYTES, (b) => Uint8Array.of(b)));
  assert.deepEqual(fields(frames), FRAMES);
});

Deno.test("DeframerStream emits each frame of one read as a chunk of its own", async () => {
  const many = Array.from({ length: 1000 }, (_, i): Frame => ({
    type: FrameType.DATA,
    flags: 0,
    seq: i + 1,
    body: Uint8Array.of(i & 0xff, i >> 8),
  }));
  const frames = await deframe([encodeFrames(many)]);
  assert.deepEqual(fields(frames), many);
});

Deno.test("DeframerStream reads a header split across chunks", async () => {
  const second = HEADER_SIZE + 3; // where the END frame's header starts
  for (let inHeader = 1; inHeader < HEADER_SIZE; inHeader++) {
    const frames = await deframe(cut(BYTES, second + inHeader));
    assert.deepEqual(fields(frames), FRAMES, `header cut after ${inHeader} bytes`);
  }
  // A header spread over three reads, the body in a fourth.
  const third = second + HEADER_SIZE;
  const frames = await deframe(cut(BYTES, third + 2, third + 9, third + HEADER_SIZE));
  assert.deepEqual(fields(frames), FRAMES);
});

Deno.test("Deframer hands over exactly the frames each read completes", () => {
  const [ping, end, data] = FRAMES.map((f) => encodeFrames([f]));
  const chunks = [
    new Uint8Array([...ping, ...end]), // two whole frames
    data.slice(0, 30), // part of DATA: nothing
    data.slice(30, 40), // still nothing
    new Uint8Array([...data.slice(40), ...ping, ...end]), // completes DATA, two more
  ];
  const deframer = new Deframer();
  const perRead = chunks.map((chunk) => {
    const frames: Frame[] = [];
    deframer.push(chunk, frames);
    return frames.map((f) => f.seq);
  });
  assert.deepEqual(perRead, [[1, 2], [], [], [3, 1, 2]]);
});

Deno.test("DeframerStream frames inside one read are views into it", async () => {
  const chunk = BYTES.slice();
  let offset = 0;
  for (const frame of await deframe([chunk])) {
    assert.equal(frame.body.buffer, chunk.buffer);
    assert.equal(frame.body.byteOffset, offset + HEADER_SIZE);
    // A view of exactly the body: the header stays right before it.
    assert.deepEqual(
      new Uint8Array(chunk.buffer, frame.body.byteOffset - HEADER_SIZE, HEADER_SIZE),
      chunk.subarray(offset, offset + HEADER_SIZE),
    );
    offset += HEADER_SIZE + frame.body.length;
  }
  // A frame split across reads is assembled into its own buffer, once.
  const split = cut(BYTES, HEADER_SIZE + 1);
  const frames = await deframe(split);
  assert.notEqual(frames[0].body.buffer, split[0].buffer);
  assert.equal(frames[1].body.buffer, split[1].buffer);
});

Deno.test("Deframer holds only the bytes of the incomplete frame received so far", () => {
  const deframer = new Deframer();
  const frames: Frame[] = [];
  const data = encodeFrames([FRAMES[2]]);
  deframer.push(data.subarray(0, 5), frames);
  assert.equal(deframer.buffered, 5);
  deframer.push(data.subarray(5, 20), frames);
  assert.equal(deframer.buffered, 20);
  deframer.push(data.subarray(20, 56), frames);
  assert.equal(deframer.buffered, 56);
  assert.equal(frames.length, 0);
  // The last byte completes the frame; the next frame's first bytes stay.
  deframer.push(new Uint8Array([...data.subarray(56), ...data.subarray(0, 7)]), frames);
  assert.equal(frames.length, 1);
  assert.equal(deframer.buffered, 7);
  deframer.push(data.subarray(7), frames);
  assert.equal(deframer.buffered, 0);
  assert.deepEqual(fields(frames), [FRAMES[2], FRAMES[2]]);
  deframer.end();
});

Deno.test("Deframer does not pin large read buffers for the few bytes it keeps", () => {
  // A peer trickling a large frame one byte per read: each read arrives as a
  // 1-byte view of a fresh 64 KiB buffer. Keeping the views would hold 64 KiB
  // per byte received.
  const deframer = new Deframer();
  const frames: Frame[] = [];
  const header = headerOfLength(1 * MiB);
  gc();
  const before = Deno.memoryUsage();
  for (let i = 0; i < 2000; i++) {
    const read = new Uint8Array(64 * 1024);
    read[0] = i < HEADER_SIZE ? header[i] : i;
    deframer.push(read.subarray(0, 1), frames);
  }
  gc();
  const after = Deno.memoryUsage();
  assert.equal(deframer.buffered, 2000);
  assert.equal(frames.length, 0);
  const held = after.external + after.heapUsed - before.external - before.heapUsed;
  assert.ok(held < 2 * MiB, `holds ${(held / MiB).toFixed(1)} MiB for 2000 bytes received`);
  const rest = new Uint8Array(1 * MiB + HEADER_SIZE - 2000);
  deframer.push(rest, frames);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].body.length, 1 * MiB);
  assert.deepEqual(frames[0].body.subarray(0, 3), Uint8Array.of(17, 18, 19));
  assert.equal(frames[0].body[2000 - HEADER_SIZE - 1], 1999 & 0xff);
});

Deno.test("DeframerStream rejects an oversized header before any body arrives", async () => {
  gc();
  const before = Deno.memoryUsage().external;
  // The stream stays open: the error must come from the header alone.
  await assert.rejects(
    Array.fromAsync(openEnded([headerOfLength(0xffffffff)]).pipeThrough(new DeframerStream())),
    assertCode(Status.RESOURCE_EXHAUSTED, /'4294967295' exceeds maxFrame '16777216'/),
  );
  const grown = Deno.memoryUsage().external - before;
  assert.ok(grown < 2 * MiB, `external memory grew by ${grown} bytes`);
  const error = await Array.fromAsync(
    openEnded([headerOfLength(0xffffffff)]).pipeThrough(new DeframerStream()),
  ).catch((e) => e);
  assert.equal(error.codeName, "resource_exhausted");
});

Deno.test("Deframer does not allocate a body for a header declaring maxFrame", () => {
  const deframer = new Deframer({ maxFrame: 16 * MiB });
  const frames: Frame[] = [];
  gc();
  const before = Deno.memoryUsage().external;
  deframer.push(headerOfLength(16 * MiB), frames);
  deframer.push(new Uint8Array(100), frames);
  const grown = Deno.memoryUsage().external - before;
  assert.ok(grown < 2 * MiB, `external memory grew by ${grown} bytes`);
  assert.equal(deframer.buffered, HEADER_SIZE + 100);
});

Deno.test("DeframerStream accepts a body of exactly maxFrame bytes and refuses one more", async () => {
  const body = new Uint8Array(100);
  const frame = { type: FrameType.DATA, flags: 0, seq: 9, body };
  const [decoded] = await deframe([encodeFrames([frame])], 100);
  assert.equal(decoded.body.length, 100);
  await assert.rejects(
    deframe([encodeFrames([{ ...frame, body: new Uint8Array(101) }])], 100),
    assertCode(Status.RESOURCE_EXHAUSTED, /'101' exceeds maxFrame '100'/),
  );
});

Deno.test("DeframerStream errors with invalid_argument when the stream ends mid-frame", async () => {
  const third = 2 * HEADER_SIZE + 3; // the DATA frame, 57 bytes
  for (const at of [1, 5, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 2, 56]) {
    await assert.rejects(
      deframe([BYTES.subarray(0, third + at)]),
      assertCode(Status.INVALID_ARGUMENT, /Stream ended inside a frame/),
      `ended ${at} bytes into the third frame`,
    );
  }
  await assert.rejects(deframe([BYTES.subarray(0, 3)]), assertCode(3, /'3' bytes of a header's/));
  await assert.rejects(deframe([BYTES.subarray(0, 18)]), assertCode(3, /'18' bytes of '20'/));
});

Deno.test("DeframerStream rejects invalid headers with the codes of PROTOCOL.md 1.3", async () => {
  const cases: [string, Uint8Array, number, RegExp][] = [
    ["bad magic", headerWith(0, 0xbe), Status.INVALID_ARGUMENT, /Bad magic '0xbefe'/],
    ["bad version", headerWith(2, 2), Status.UNIMPLEMENTED, /version '2'/],
    ["reserved bit", headerWith(3, 0x10), Status.UNIMPLEMENTED, /Reserved flag bits set in '0x10'/],
    ["high reserved bit", headerWith(3, 0x80), Status.UNIMPLEMENTED, /Reserved/],
    ["encrypted", headerWith(3, 0x04), Status.UNIMPLEMENTED, /ENCRYPTED/],
    ["unknown type", headerWith(4, 0x77), Status.UNIMPLEMENTED, /Unknown frame type '0x77'/],
    ["unknown type 0", headerWith(4, 0x00), Status.UNIMPLEMENTED, /'0x00'/],
    ["too large", headerOfLength(16 * MiB + 1), Status.RESOURCE_EXHAUSTED, /'16777217'/],
  ];
  for (const [name, header, code, pattern] of cases) {
    // Whole, after a valid frame in the same read, and split: same error.
    await assert.rejects(deframe([header]), assertCode(code, pattern), name);
    await assert.rejects(
      deframe([new Uint8Array([...BYTES, ...header])]),
      assertCode(code, pattern),
      `${name} after valid frames`,
    );
    await assert.rejects(deframe(cut(header, 7)), assertCode(code, pattern), `${name} split`);
    await assert.rejects(
      Array.fromAsync(openEnded([header]).pipeThrough(new DeframerStream())),
      assertCode(code, pattern),
      `${name} on an open stream`,
    );
  }
});

Deno.test("Deframer.push throws StreamwireError for a bad header", () => {
  const frames: Frame[] = [];
  assert.throws(
    () => new Deframer().push(headerWith(4, 0x06), frames),
    (error) => error instanceof StreamwireError && error.codeName === "unimplemented",
  );
  assert.throws(() => {
    const deframer = new Deframer();
    deframer.push(BYTES.subarray(0, 4), frames);
    deframer.end();
  }, assertCode(Status.INVALID_ARGUMENT));
});

Deno.test("DeframerStream delivers the frames before a bad header in the same read, then fails", async () => {
  const chunk = new Uint8Array([...BYTES, ...headerWith(0, 0xbe)]);
  const reader = openEnded([chunk]).pipeThrough(new DeframerStream()).getReader();
  const read: Frame[] = [];
  for (let i = 0; i < FRAMES.length; i++) {
    const { done, value } = await reader.read();
    assert.equal(done, false);
    read.push(value!);
  }
  assert.deepEqual(fields(read), FRAMES);
  await assert.rejects(reader.read(), assertCode(Status.INVALID_ARGUMENT, /Bad magic '0xbefe'/));
});

Deno.test("Deframer hands each frame over before it validates the next header", () => {
  const chunk = new Uint8Array([...BYTES, ...headerWith(4, 0x77)]);
  const events: string[] = [];
  assert.throws(
    () => new Deframer().push(chunk, { push: (frame: Frame) => events.push(`frame ${frame.seq}`) }),
    assertCode(Status.UNIMPLEMENTED, /Unknown frame type '0x77'/),
  );
  assert.deepEqual(events, ["frame 1", "frame 2", "frame 3"]);
});

/** A HELLO, then DATA frames of the given body sizes, all in one chunk. */
function helloThen(...sizes: number[]): Uint8Array {
  return encodeFrames([
    { type: FrameType.HELLO, flags: 0, seq: 0, body: new TextEncoder().encode('{"maxFrame":64}') },
    ...sizes.map((size, i) => ({
      type: FrameType.DATA,
      flags: 0,
      seq: 2 * i + 1,
      body: new Uint8Array(size),
    })),
  ]);
}

Deno.test("Deframer checks the next frame of the same chunk against a maxFrame lowered on HELLO", () => {
  // The consumer handles HELLO inside the push callback and lowers the limit
  // to the negotiated value: the very next header must be checked against it.
  const deframer = new Deframer();
  const seen: number[] = [];
  const consumer = {
    push(frame: Frame) {
      seen.push(frame.body.length);
      if (frame.type === FrameType.HELLO) deframer.maxFrame = 64;
    },
  };
  assert.throws(
    () => deframer.push(helloThen(64, 65, 10), consumer),
    assertCode(Status.RESOURCE_EXHAUSTED, /Frame length '65' exceeds maxFrame '64'/),
  );
  assert.deepEqual(seen, [15, 64]);
  assert.equal(deframer.maxFrame, 64);

  // Without lowering, the same chunk passes whole.
  const all: Frame[] = [];
  new Deframer().push(helloThen(64, 65, 10), all);
  assert.deepEqual(all.map((f) => f.body.length), [15, 64, 65, 10]);
});

Deno.test("Deframer applies a lowered maxFrame to a header completed by a later read", () => {
  const deframer = new Deframer();
  const bytes = helloThen(100);
  const consumer = {
    push(frame: Frame) {
      if (frame.type === FrameType.HELLO) deframer.maxFrame = 64;
    },
  };
  // The DATA header is cut: its check happens on the next push.
  deframer.push(bytes.subarray(0, HEADER_SIZE + 15 + 5), consumer);
  assert.throws(
    () => deframer.push(bytes.subarray(HEADER_SIZE + 15 + 5), consumer),
    assertCode(Status.RESOURCE_EXHAUSTED, /'100' exceeds maxFrame '64'/),
  );
});

Deno.test("DeframerStage lowers maxFrame for the next frame of the chunk being transformed", () => {
  const stage = new DeframerStage();
  const seen: number[] = [];
  const controller = {
    enqueue(frame: Frame) {
      seen.push(frame.seq);
      if (frame.type === FrameType.HELLO) stage.maxFrame = 64;
    },
  } as TransformStreamDefaultController<Frame>;
  assert.throws(() => stage.transform(helloThen(1, 65), controller), assertCode(8, /'65'/));
  assert.deepEqual(seen, [0, 1]);
});

Deno.test("createDecodeStage lowers maxFrame for the next frame when a consumer handles HELLO", () => {
  const bytes = encodeFrames(encodeMessages([
    { type: FrameType.HELLO, seq: 0, hello: { maxFrame: 64 } },
    { type: FrameType.DATA, seq: 1, data: new Uint8Array(64) },
    { type: FrameType.DATA, seq: 3, data: new Uint8Array(65) },
  ]));
  const stage = createDecodeStage();
  const seen: number[] = [];
  const controller = {
    enqueue(message: Message) {
      seen.push(message.seq);
      if (message.type === FrameType.HELLO) stage.maxFrame = message.hello.maxFrame as number;
    },
  } as TransformStreamDefaultController<Message>;
  assert.throws(
    () => stage.transform(bytes, controller),
    assertCode(8, /'65' exceeds maxFrame '64'/),
  );
  assert.deepEqual(seen, [0, 1]);
  assert.equal(stage.maxFrame, 64);
});

Deno.test("maxFrame refuses values that would disable the check", () => {
  for (const bad of [-1, NaN, 1.5, Infinity]) {
    assert.throws(() => new Deframer({ maxFrame: bad }), assertCode(Status.INVALID_ARGUMENT));
    assert.throws(() => {
      new Deframer().maxFrame = bad;
    }, assertCode(Status.INVALID_ARGUMENT, /maxFrame '.*' is not a non-negative integer/));
    assert.throws(() => {
      new DeframerStream().maxFrame = bad;
    }, assertCode(Status.INVALID_ARGUMENT));
  }
  const stream = new DeframerStream({ maxFrame: 10 });
  stream.maxFrame = 20;
  assert.equal(stream.maxFrame, 20);
});

Deno.test("DeframerStream applies a maxFrame set between reads", async () => {
  const stream = new DeframerStream();
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const bytes = helloThen(100);
  writer.write(bytes.subarray(0, HEADER_SIZE + 15));
  assert.equal((await reader.read()).value?.type, FrameType.HELLO);
  stream.maxFrame = 64;
  writer.write(bytes.subarray(HEADER_SIZE + 15)).catch(() => {});
  await assert.rejects(reader.read(), assertCode(8, /'100' exceeds maxFrame '64'/));
});
