import assert from "node:assert/strict";
import fc from "fast-check";
import { messageFromJson, messageToJson } from "../../cli/frames.ts";
import { type FrameAt, OffsetDeframer } from "../../cli/_frames_read.ts";
import {
  cborCodec,
  type CompressionName,
  encodeFrames,
  encodeMessages,
  type Extensions,
  FrameType,
  jsonCodec,
  type Message,
  msgpackCodec,
  type PayloadCodec,
} from "../../codec/mod.ts";
import { Lines, run, spawn } from "./_run.ts";

const encoder = new TextEncoder();

/** The canonical NDJSON of `messages`: what `decode` prints for their frames. */
function ndjson(messages: readonly Message[], codec?: PayloadCodec): string {
  return messages.map((m) => JSON.stringify(messageToJson(m, { codec })) + "\n").join("");
}

function frames(messages: readonly Message[]): Uint8Array {
  return encodeFrames(encodeMessages(messages));
}

const samples: Message[] = [
  { type: FrameType.REQUEST, seq: 1, method: "add", params: encoder.encode("[2,40]") },
  {
    type: FrameType.BATCH,
    seq: 3,
    entries: [{ method: "echo", params: Uint8Array.of(0xc0) }],
    ext: { timeoutMs: 1500, metadata: [["tenant", "acme"]] },
  },
  { type: FrameType.GOAWAY, seq: 0, code: 14, lastId: 3, reason: "restarting" },
  {
    type: FrameType.BATCH_RESULT,
    seq: 3,
    results: [{ code: 0, data: Uint8Array.of(0x2a) }, { code: 5, data: encoder.encode("No") }],
  },
];

Deno.test("messageToJson and messageFromJson are inverse", () => {
  for (const message of samples) {
    assert.deepEqual(messageFromJson(JSON.parse(JSON.stringify(messageToJson(message)))), message);
  }
});

Deno.test("messageToJson writes keys in the canonical order", () => {
  const text = ndjson([
    {
      type: FrameType.REQUEST,
      seq: 7,
      params: Uint8Array.of(1),
      method: "m",
      ext: { metadata: [["a", "b"]], timeoutMs: 5, traceparent: "t" },
    } as Message,
  ]);
  assert.equal(
    text,
    '{"type":"REQUEST","seq":7,"method":"m","paramsHex":"01",' +
      '"ext":{"traceparent":"t","timeoutMs":5,"metadata":[["a","b"]]}}\n',
  );
});

// ---------------------------------------------------------------------------
// Reading frames with their offsets

/** Feeds `chunks` through one reused buffer, as stdin is read; returns "offset:seq" per frame. */
function deframe(chunks: Uint8Array[], maxFrame = 1 << 20): { seen: string[]; error?: string } {
  const deframer = new OffsetDeframer(maxFrame);
  const reused = new Uint8Array(Math.max(...chunks.map((c) => c.length)));
  const seen: string[] = [];
  const take = (frames: FrameAt[]) => {
    for (const { frame, offset } of frames) {
      seen.push(`${offset}:${frame.seq}:${frame.body.toHex()}`);
    }
  };
  for (const chunk of chunks) {
    reused.set(chunk);
    const frames: FrameAt[] = [];
    const failure = deframer.push(reused.subarray(0, chunk.length), frames);
    take(frames);
    // The next read overwrites the buffer: frames must have been used by now.
    reused.fill(0xee);
    if (failure !== undefined) return { seen, error: `${deframer.position}: ${failure.message}` };
  }
  const failure = deframer.end();
  return failure === undefined
    ? { seen }
    : { seen, error: `${deframer.position}: ${failure.message}` };
}

const stream = frames([
  { type: FrameType.DATA, seq: 1, data: Uint8Array.of(1, 2, 3) },
  { type: FrameType.END, seq: 3 },
  { type: FrameType.DATA, seq: 5, data: new Uint8Array(40).fill(9) },
  { type: FrameType.CREDIT, seq: 7, credit: 2 },
]);
const whole = deframe([stream]);

Deno.test("OffsetDeframer hands out the same frames and offsets for any split of its input", () => {
  assert.deepEqual(whole.seen.map((s) => s.split(":").slice(0, 2).join(":")), [
    "0:1",
    "20:3",
    "37:5",
    "94:7",
  ]);
  for (let cut = 1; cut < stream.length; cut++) {
    assert.deepEqual(deframe([stream.subarray(0, cut), stream.subarray(cut)]), whole, `cut ${cut}`);
  }
  assert.deepEqual(deframe(Array.from(stream, (b) => Uint8Array.of(b))), whole);
});

Deno.test("OffsetDeframer reports a bad header as soon as its first bad byte arrives", () => {
  const bad = stream.with(37 + 1, 0x00); // the magic of the third frame
  for (let cut = 37 + 2; cut < bad.length; cut++) {
    const result = deframe([bad.subarray(0, cut)]);
    assert.deepEqual(result.seen, whole.seen.slice(0, 2));
    assert.equal(result.error, "37: Bad magic '0xca00', expected '0xcafe'");
  }
  // A length over maxFrame fails at the header, without waiting for the body.
  const result = deframe([stream.subarray(0, 37 + 17)], 39);
  assert.equal(result.error, "37: Frame length '40' exceeds maxFrame '39'");
});

Deno.test("OffsetDeframer names the offset of a frame cut off at the end", () => {
  assert.deepEqual(deframe([stream.subarray(0, 40)]), {
    seen: whole.seen.slice(0, 2),
    error: "37: Stream ended inside a frame: '3' bytes of a header's",
  });
});

// ---------------------------------------------------------------------------
// Round trips through the commands

interface Vector {
  hex: string;
  expect: { ok: boolean };
}

const vectors: Vector[] = JSON.parse(
  await Deno.readTextFile(new URL("../testdata/vectors_v1.json", import.meta.url)),
).vectors;
const goodVectors = vectors.filter((v) => v.expect.ok).map((v) => Uint8Array.fromHex(v.hex));
const allGood = new Uint8Array(goodVectors.reduce((n, v) => n + v.length, 0));
goodVectors.reduce((at, v) => (allGood.set(v, at), at + v.length), 0);

async function ok(args: string[], stdin: string | Uint8Array) {
  const result = await run(args, { stdin });
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  assert.equal(result.stderr, "");
  return result;
}

for (const codec of [undefined, "json", "msgpack"]) {
  const codecArgs = codec === undefined ? [] : ["--codec", codec];
  Deno.test(`encode and decode round-trip the public vectors${codec ? ` with --codec ${codec}` : ""}`, async () => {
    const decoded = await ok(["decode", ...codecArgs], allGood);
    assert.equal(decoded.stdout.split("\n").length - 1, goodVectors.length);
    for (const compress of [undefined, "zlib", "lz4", "zstd"]) {
      const compressArgs = compress === undefined ? [] : ["--compress", compress];
      const encoded = await ok(["encode", ...codecArgs, ...compressArgs], decoded.stdout);
      const again = await ok(["decode", ...codecArgs], encoded.bytes);
      assert.equal(again.stdout, decoded.stdout, `--compress ${compress}`);
    }
  });
}

Deno.test("decode prints the vectors' payloads as hex, or as values of --codec json", async () => {
  const request = goodVectors[2]; // "request add": params [2,40] as JSON
  assert.equal(
    (await ok(["decode"], request)).stdout,
    '{"type":"REQUEST","seq":7,"method":"add","paramsHex":"5b322c34305d"}\n',
  );
  assert.equal(
    (await ok(["decode", "--codec", "json"], request)).stdout,
    '{"type":"REQUEST","seq":7,"method":"add","params":[2,40]}\n',
  );
});

Deno.test("encode --compress sets the compression bits of every non-empty payload", async () => {
  const input = ndjson([
    { type: FrameType.DATA, seq: 1, data: encoder.encode("x".repeat(100)) },
    { type: FrameType.END, seq: 1 },
  ]);
  for (const [name, code] of [["zlib", 1], ["lz4", 2], ["zstd", 3]] as const) {
    const { bytes } = await ok(["encode", "--compress", name], input);
    assert.equal(bytes[3], code, name);
    const end = bytes.subarray(bytes.length - 17);
    assert.equal(end[4], FrameType.END);
    assert.equal(end[3], 0, "an empty payload stays plain");
  }
});

// Property: any message in its canonical NDJSON form survives encode | decode,
// whatever the compression and payload codec.

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const text = fc.string({ unit: "grapheme", maxLength: 30 });
const method = fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 });
/** Plain JSON (no "__proto__" key: msgpack and cbor decode it as "__proto_"). */
const jsonValue = fc.jsonValue({ maxDepth: 3, stringUnit: "grapheme" }).filter((v) =>
  !JSON.stringify(v).includes("__proto__")
);

function payload(codec: PayloadCodec | undefined): fc.Arbitrary<Uint8Array> {
  const bytes = fc.uint8Array({ maxLength: 300 });
  return codec === undefined ? bytes : fc.oneof(bytes, jsonValue.map((v) => codec.encode(v)));
}

const extensions: fc.Arbitrary<Extensions> = fc.record({
  traceparent: text,
  tracestate: text,
  timeoutMs: u32,
  metadata: fc.array(fc.tuple(fc.stringMatching(/^[a-z0-9-]{0,12}$/), text), { maxLength: 3 }),
}, { requiredKeys: [] });

function message(codec: PayloadCodec | undefined): fc.Arbitrary<Message> {
  const p = payload(codec);
  const body = fc.oneof(
    fc.record({
      type: fc.constant(FrameType.HELLO),
      hello: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 4 }),
    }),
    fc.record({
      type: fc.constantFrom(FrameType.PING, FrameType.PONG),
      payload: fc.uint8Array({ maxLength: 64 }),
    }),
    fc.record({ type: fc.constant(FrameType.GOAWAY), code: u16, lastId: u32, reason: text }),
    fc.record({
      type: fc.constantFrom(FrameType.REQUEST, FrameType.NOTIFY, FrameType.OPEN),
      method,
      params: p,
    }),
    fc.record({ type: fc.constantFrom(FrameType.RESPONSE, FrameType.DATA), data: p }),
    fc.record({
      type: fc.constant(FrameType.BATCH),
      entries: fc.array(fc.record({ method, params: p }), { maxLength: 4 }),
    }),
    fc.record({
      type: fc.constant(FrameType.BATCH_RESULT),
      results: fc.array(
        fc.oneof(
          fc.record({ code: fc.constant(0), data: p }),
          fc.record({
            code: fc.integer({ min: 1, max: 16 }),
            data: text.map((t) => encoder.encode(t)),
          }),
        ),
        { maxLength: 4 },
      ),
    }),
    fc.record({ type: fc.constant(FrameType.END) }),
    fc.record({
      type: fc.constantFrom(FrameType.CANCEL, FrameType.ERROR),
      code: u16,
      message: text,
    }),
    fc.record({ type: fc.constant(FrameType.CREDIT), credit: u32 }),
  );
  return fc.tuple(body, u32, fc.option(extensions, { nil: undefined })).map(([b, seq, ext]) =>
    (ext === undefined ? { ...b, seq } : { ...b, seq, ext }) as Message
  );
}

Deno.test("encode | decode returns the canonical NDJSON of any messages", async () => {
  const codecs: (PayloadCodec | undefined)[] = [undefined, jsonCodec, msgpackCodec, cborCodec];
  const compressions: (CompressionName | undefined)[] = [undefined, "zlib", "lz4", "zstd"];
  // Two processes per run: a few runs of many messages each.
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...codecs).chain((codec) =>
        fc.tuple(
          fc.constant(codec),
          fc.constantFrom(...compressions),
          fc.array(message(codec), { minLength: 1, maxLength: 80 }),
        )
      ),
      async ([codec, compress, messages]) => {
        const input = ndjson(messages, codec);
        const codecArgs = codec === undefined ? [] : ["--codec", codec.name];
        const compressArgs = compress === undefined ? [] : ["--compress", compress];
        const encoded = await ok(["encode", ...codecArgs, ...compressArgs], input);
        const decoded = await ok(["decode", ...codecArgs], encoded.bytes);
        assert.equal(decoded.stdout, input);
      },
    ),
    { numRuns: 8 },
  );
});

Deno.test("encode accepts and ignores the annotations of capture --json", async () => {
  const line = '{"conn":2,"dir":"s2c","offset":160,"type":"RESPONSE","seq":1,"dataHex":"2a"}\n';
  const { bytes } = await ok(["encode"], line);
  assert.deepEqual(
    bytes,
    frames([{ type: FrameType.RESPONSE, seq: 1, data: Uint8Array.of(0x2a) }]),
  );
});

// ---------------------------------------------------------------------------
// Invalid input

const GOOD_LINE = '{"type":"REQUEST","seq":1,"method":"add","paramsHex":"5b325d"}';
const GOOD_FRAMES = frames([messageFromJson(JSON.parse(GOOD_LINE))]);

const badLines: [what: string, line: string, error: string, args?: string[]][] = [
  [
    "odd hex",
    '{"type":"REQUEST","seq":3,"method":"a","paramsHex":"abc"}',
    "invalid_argument: line 2: 'paramsHex' has an odd number of hex digits ('3')",
  ],
  [
    "non-hex digit",
    '{"type":"DATA","seq":3,"dataHex":"0g"}',
    "invalid_argument: line 2: 'dataHex' has a non-hex digit 'g' at '1'",
  ],
  [
    "negative seq",
    '{"type":"END","seq":-1}',
    "invalid_argument: line 2: 'seq' must be an integer in 0..4294967295, got '-1'",
  ],
  [
    "fractional seq",
    '{"type":"END","seq":1.5}',
    "invalid_argument: line 2: 'seq' must be an integer in 0..4294967295, got '1.5'",
  ],
  [
    "seq over 32 bits",
    '{"type":"END","seq":4294967296}',
    "invalid_argument: line 2: 'seq' must be an integer in 0..4294967295, got '4294967296'",
  ],
  [
    "missing method",
    '{"type":"REQUEST","seq":3}',
    "invalid_argument: line 2: REQUEST needs 'method'",
  ],
  [
    "method not a string",
    '{"type":"NOTIFY","method":5}',
    "invalid_argument: line 2: 'method' must be a string, got '5'",
  ],
  [
    "empty method",
    '{"type":"OPEN","seq":3,"method":""}',
    "invalid_argument: line 2: Method name of '0' bytes is outside 1..65535",
  ],
  [
    "unknown type",
    '{"type":"REQUESTS","seq":3}',
    "invalid_argument: line 2: Unknown frame type 'REQUESTS'",
  ],
  [
    "unknown key",
    '{"type":"END","seq":3,"sequence":4}',
    "invalid_argument: line 2: Unknown key 'sequence' for type END",
  ],
  [
    "wrong value type",
    '{"type":"CREDIT","seq":3,"credit":"64"}',
    `invalid_argument: line 2: 'credit' must be an integer in 0..4294967295, got '"64"'`,
  ],
  [
    "value without a codec",
    '{"type":"DATA","seq":3,"data":[1]}',
    "invalid_argument: line 2: 'data' is a value and needs a codec (--codec); give bytes as 'dataHex'",
  ],
  [
    "frame over --max-frame",
    `{"type":"DATA","seq":3,"dataHex":"${"00".repeat(33)}"}`,
    "resource_exhausted: line 2: Frame length '33' exceeds maxFrame '32'",
    ["--max-frame", "32"],
  ],
  ["not JSON", '{"type":"END",', "invalid_argument: line 2: Not JSON: "],
];

Deno.test("encode stops at the first invalid line, naming it, after the frames before it", async () => {
  for (const [what, line, error, args = []] of badLines) {
    const result = await run(["encode", ...args], {
      stdin: `${GOOD_LINE}\n${line}\n${GOOD_LINE}\n`,
    });
    assert.equal(result.code, 2, what);
    assert.ok(result.stderr.startsWith(`streamwire: ${error}`), `${what}: ${result.stderr}`);
    assert.equal(result.stderr.split("\n").length, 2, `${what}: one line`);
    assert.deepEqual(result.bytes, GOOD_FRAMES, what);
  }
});

Deno.test("encode names the line of a payload that compresses past --max-frame", async () => {
  const random = crypto.getRandomValues(new Uint8Array(40));
  const input = `${GOOD_LINE}\n\n{"type":"DATA","seq":3,"dataHex":"${random.toHex()}"}\n`;
  const result = await run(["encode", "--compress", "lz4", "--max-frame", "40"], { stdin: input });
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^streamwire: resource_exhausted: line 3: Frame length '\d+' exceeds maxFrame '40'\n$/,
  );
  const good = await ok(["encode", "--compress", "lz4"], GOOD_LINE);
  assert.deepEqual(result.bytes, good.bytes);
});

Deno.test("decode stops at a malformed frame, naming its offset, after the frames before it", async () => {
  const messages: Message[] = [
    { type: FrameType.END, seq: 1 },
    { type: FrameType.CREDIT, seq: 1, credit: 8 },
    { type: FrameType.END, seq: 3 },
  ];
  const good = frames(messages);
  const first = ndjson(messages.slice(0, 1));
  const cases: [what: string, bytes: Uint8Array, error: string, args?: string[]][] = [
    [
      "truncated",
      good.subarray(0, 17 + 10),
      "invalid_argument: offset 17: Stream ended inside a frame: '10' bytes of a header's",
    ],
    [
      "bad CRC",
      good.with(17 + 20, good[17 + 20] ^ 1),
      "data_loss: offset 17: Checksum mismatch on frame seq '1'",
    ],
    [
      "bad magic",
      good.with(17, 0xbe),
      "invalid_argument: offset 17: Bad magic '0xbefe', expected '0xcafe'",
    ],
    [
      "oversized length",
      good,
      "resource_exhausted: offset 17: Frame length '4' exceeds maxFrame '3'",
      ["--max-frame", "3"],
    ],
  ];
  for (const [what, bytes, error, args = []] of cases) {
    const result = await run(["decode", ...args], { stdin: bytes });
    assert.equal(result.code, 2, what);
    assert.ok(result.stderr.startsWith(`streamwire: ${error}`), `${what}: ${result.stderr}`);
    assert.equal(result.stdout, first, what);
  }
});

Deno.test("decode ends quietly with 0 when its reader stops early (| head -2)", async () => {
  const child = spawn(["decode"]);
  const block = frames(
    Array.from({ length: 1000 }, (_, i) => ({ type: FrameType.CREDIT, seq: i, credit: 1 })),
  );
  const writer = child.stdin.getWriter();
  // Fed until the child stops reading: it must not wait for the end of its input.
  const feeding = (async () => {
    try {
      for (;;) await writer.write(block);
    } catch {
      // The child closed its stdin or exited.
    }
  })();
  const lines = new Lines(child.stdout);
  assert.equal(await lines.next(), '{"type":"CREDIT","seq":0,"credit":1}');
  assert.equal(await lines.next(), '{"type":"CREDIT","seq":1,"credit":1}');
  await lines.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    feeding,
  ]);
  assert.equal(stderr, "");
  assert.equal(status.code, 0);
});

// ---------------------------------------------------------------------------
// Bounded memory

/** Peak resident memory of a process so far, in KiB (Linux). */
async function peakRssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]);
}

Deno.test({
  name: "decode streams 1 GiB of frames in bounded memory",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // One block of frames of every size class, repeated: 64 KiB DATA (as
    // hex, 128 KiB per output line), small calls and a zstd DATA that
    // inflates to 8 KiB; about 2.4 GB of NDJSON in all.
    const big = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const block = encodeFrames([
      ...encodeMessages([
        { type: FrameType.DATA, seq: 1, data: big },
        { type: FrameType.REQUEST, seq: 3, method: "add", params: encoder.encode("[2,40]") },
        { type: FrameType.RESPONSE, seq: 3, data: encoder.encode("42") },
      ]),
    ]);
    const zipped = (await ok(
      ["encode", "--compress", "zstd"],
      ndjson([
        { type: FrameType.DATA, seq: 5, data: new Uint8Array(8 * 1024).fill(7) },
      ]),
    )).bytes;
    const chunk = new Uint8Array(block.length + zipped.length);
    chunk.set(block);
    chunk.set(zipped, block.length);
    const repeats = Math.ceil(2 ** 30 / chunk.length);
    const framesPerChunk = 4;

    const child = spawn(["decode"]);
    const writer = child.stdin.getWriter();
    const feeding = (async () => {
      for (let i = 0; i < repeats; i++) await writer.write(chunk);
    })();
    // Counts output lines until every frame was printed, with stdin still
    // open: the process is then alive and its peak RSS covers all the work.
    const reader = child.stdout.getReader();
    let lines = 0;
    while (lines < repeats * framesPerChunk) {
      const { value, done } = await reader.read();
      if (done) break;
      for (let i = value.indexOf(10); i >= 0; i = value.indexOf(10, i + 1)) lines++;
    }
    await feeding;
    const peak = await peakRssKiB(child.pid);
    await writer.close();
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    reader.releaseLock();
    await child.stdout.cancel();
    assert.equal(stderr, "");
    assert.equal(status.code, 0);
    assert.equal(lines, repeats * framesPerChunk);
    assert.ok(peak < 200 * 1024, `peak RSS ${peak} KiB`);
  },
});
