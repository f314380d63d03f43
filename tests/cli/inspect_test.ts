import assert from "node:assert/strict";
import {
  compressFrame,
  crc32,
  encodeFrames,
  encodeMessages,
  type Frame,
  FrameType,
  jsonCodec,
  msgpackCodec,
} from "../../codec/mod.ts";
import { run } from "./_run.ts";

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const HEADER = "  OFFSET  TYPE                 SEQ  FLAGS       LENGTH  CRC  PAYLOAD";

/** A REQUEST with extensions, its RESPONSE, an ERROR and an LZ4-compressed DATA. */
function conversation(): Uint8Array {
  const [request, response, error, data] = encodeMessages([
    {
      type: FrameType.REQUEST,
      seq: 1,
      method: "add",
      params: msgpackCodec.encode([2, 40]),
      ext: { timeoutMs: 1500, traceparent: TRACEPARENT, metadata: [["tenant", "acme"]] },
    },
    { type: FrameType.RESPONSE, seq: 1, data: msgpackCodec.encode(42) },
    { type: FrameType.ERROR, seq: 3, code: 5, message: "No user 'ada'" },
    { type: FrameType.DATA, seq: 5, data: msgpackCodec.encode({ text: "streamwire ".repeat(20) }) },
  ]);
  return encodeFrames([
    request,
    response,
    error,
    compressFrame(data, { algorithm: "lz4", threshold: 0 }),
  ]);
}

const LISTING = [
  HEADER,
  "       0  REQUEST                1  EXT             93  ok   add [2,40]",
  `    ext: timeout=1500ms traceparent=${TRACEPARENT} metadata tenant="acme"`,
  "     110  RESPONSE               1  -                1  ok   42",
  `     128  ERROR                  3  -               15  ok   not_found "No user 'ada'"`,
  `     160  DATA                   5  lz4             53  ok   {"text":"streamwire streamwire streamwire streamwire streamwire strea...`,
];

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

Deno.test("inspect lists offset, type, seq, flags, length, checksum, extensions and payload", async () => {
  const result = await run(["inspect"], { stdin: conversation() });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.equal(result.stdout, LISTING.join("\n") + "\n");
});

Deno.test("inspect flags a bad checksum, goes on past it and exits 2", async () => {
  const bytes = conversation();
  const body = 110 + 17;
  bytes[body] ^= 1; // RESPONSE 42 becomes 43
  const said = new DataView(bytes.buffer).getUint32(110 + 13);
  const computed = crc32(bytes.subarray(body, body + 1), crc32(bytes.subarray(110, 110 + 13)));
  const result = await run(["inspect"], { stdin: bytes });
  const mismatch = `Checksum mismatch on frame seq '1': header says '${hex32(said)}', computed '${
    hex32(computed)
  }'`;
  assert.equal(
    result.stdout,
    [
      ...LISTING.slice(0, 3),
      "     110  RESPONSE               1  -                1  BAD  43",
      `    !! ${mismatch}`,
      ...LISTING.slice(4),
    ].join("\n") + "\n",
  );
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    `streamwire: data_loss: 1 of 4 frames failed their checks, the first at offset 110: ${mismatch}\n`,
  );
});

Deno.test("inspect lists a body that does not decode and goes on", async () => {
  const credit: Frame = { type: FrameType.CREDIT, flags: 0, seq: 7, body: Uint8Array.of(0, 0, 1) };
  const end: Frame = { type: FrameType.END, flags: 0, seq: 7, body: new Uint8Array(0) };
  const result = await run(["inspect"], { stdin: encodeFrames([credit, end]) });
  assert.equal(
    result.stdout,
    [
      HEADER,
      "       0  CREDIT                 7  -                3  ok   (does not decode)",
      "    !! invalid_argument: CREDIT payload has '3' bytes, expected '4'",
      "      20  END                    7  -                0  ok",
      "",
    ].join("\n"),
  );
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    "streamwire: invalid_argument: 1 of 2 frames failed their checks, the first at offset 0: " +
      "CREDIT payload has '3' bytes, expected '4'\n",
  );
});

Deno.test("inspect stops at a lost frame boundary with its offset, after the frames before it", async () => {
  const bytes = conversation();
  const cases: [what: string, input: Uint8Array, error: string][] = [
    [
      "truncated",
      bytes.subarray(0, 150),
      "invalid_argument: offset 128: Stream ended inside a frame: '22' bytes of '32'",
    ],
    [
      "bad magic",
      bytes.with(128, 0),
      "invalid_argument: offset 128: Bad magic '0x00fe', expected '0xcafe'",
    ],
  ];
  for (const [what, input, error] of cases) {
    const result = await run(["inspect"], { stdin: input });
    assert.equal(result.stdout, LISTING.slice(0, 4).join("\n") + "\n", what);
    assert.equal(result.stderr, `streamwire: ${error}\n`, what);
    assert.equal(result.code, 2, what);
  }
});

Deno.test("inspect --hex dumps each frame as it is on the wire", async () => {
  const end = encodeFrames([{ type: FrameType.END, flags: 0, seq: 5, body: new Uint8Array(0) }]);
  const ping = encodeFrames([{
    type: FrameType.PING,
    flags: 0,
    seq: 9,
    body: Uint8Array.of(0x41, 0x42),
  }]);
  const result = await run(["inspect", "--hex"], { stdin: new Uint8Array([...end, ...ping]) });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    [
      HEADER,
      "       0  END                    5  -                0  ok",
      '    00000000  ca fe 01 00 22 00 00 00  00 00 00 00 05 98 93 28  |...."..........(|',
      "    00000010  78                                                |x|",
      "      17  PING                   9  -                2  ok   <hex 4142>",
      "    00000011  ca fe 01 00 03 00 00 00  02 00 00 00 09 3b ad 37  |.............;.7|",
      "    00000021  ca 41 42                                          |.AB|",
      "",
    ].join("\n"),
  );
});

Deno.test("inspect previews with --codec, cuts at --width and prints rows as JSON with --json", async () => {
  const bytes = encodeFrames(encodeMessages([
    { type: FrameType.REQUEST, seq: 1, method: "greet", params: jsonCodec.encode({ name: "ada" }) },
    { type: FrameType.CREDIT, seq: 1, credit: 64 },
  ]));
  const listed = await run(["inspect", "--codec", "json", "--width", "12"], { stdin: bytes });
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(
    listed.stdout,
    [
      HEADER,
      '       0  REQUEST                1  -               25  ok   greet {"n...',
      "      42  CREDIT                 1  -                4  ok   +64",
      "",
    ].join("\n"),
  );
  const json = await run(["inspect", "--json"], { stdin: bytes });
  assert.equal(json.code, 0, json.stderr);
  assert.equal(
    json.stdout,
    '{"offset":0,"type":"REQUEST","seq":1,"flags":"-","length":25,"crc":"ok","preview":"greet {\\"name\\":\\"ada\\"}"}\n' +
      '{"offset":42,"type":"CREDIT","seq":1,"flags":"-","length":4,"crc":"ok","preview":"+64"}\n',
  );
});

Deno.test("inspect --help shows an example; unknown flags are usage errors", async () => {
  const help = await run(["inspect", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: streamwire inspect/);
  assert.match(help.stdout, /Examples:\n {2}streamwire inspect < capture.bin/);
  const bad = await run(["inspect", "--colour"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^streamwire: invalid_argument: Unknown option '--colour'/);
  const codec = await run(["inspect", "--codec", "yaml"]);
  assert.equal(codec.code, 2);
  assert.equal(
    codec.stderr,
    "streamwire: invalid_argument: --codec must be one of auto, json, msgpack, cbor, raw, got 'yaml'\n",
  );
});
