import assert from "node:assert/strict";
import { messageToJson } from "../../cli/frames.ts";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { concat } from "../../codec/_bytes.ts";
import {
  createDecodeChain,
  encodeFrames,
  FrameType,
  type Message,
  msgpackCodec,
} from "../../codec/mod.ts";
import { connect } from "../../rpc/client.ts";
import { Lines, run, spawn } from "./_run.ts";

/** A running `capture` and its stderr, read line by line. */
interface Capture {
  child: Deno.ChildProcess;
  stderr: Lines;
  addr: string;
}

async function startCapture(args: string[]): Promise<Capture> {
  const child = spawn(["capture", "127.0.0.1:0", ...args]);
  const stderr = new Lines(child.stderr);
  const line = await stderr.until((l) => l.includes("listening on"));
  const addr = line.match(/listening on (tcp:\/\/127\.0\.0\.1:\d+), upstream /)?.[1];
  assert.ok(addr, line);
  return { child, stderr, addr };
}

/** Stops a capture with SIGTERM; it exits 0 once its connections are closed. */
async function stopCapture(capture: Capture): Promise<void> {
  capture.child.kill("SIGTERM");
  assert.equal((await capture.child.status).code, 0);
  // Drains what is left, so that the stream's resources are released.
  while (await capture.stderr.next() !== undefined);
}

function withoutAnnotations(json: Record<string, unknown>): Record<string, unknown> {
  const { conn: _conn, dir: _dir, offset: _offset, ...rest } = json;
  return rest;
}

Deno.test("capture records both directions of a client and server that inspect lists and encode replays", async () => {
  const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0 });
  // client -> frames capture -> JSON capture -> server: two recordings of one session.
  const json = await startCapture([running.addr, "--json", "--codec", "msgpack"]);
  const frames = await startCapture([json.addr]);
  const [framesOut, framesRecorded] = frames.child.stdout.tee();
  const recorded = new Response(framesRecorded).bytes();
  const lines = new Lines(json.child.stdout);
  try {
    const client = await connect(frames.addr, { reconnect: false });
    assert.equal(await client.call("add", [2, 40]), 42);
    assert.equal(await client.call("echo", "hi"), "hi");

    // Both recordings hold the answer to the second call before the client closes.
    await lines.until((l) => l.includes('"type":"RESPONSE","seq":3'));
    const decoded: Message[] = [];
    const reader = framesOut.pipeThrough(createDecodeChain()).getReader();
    while (decoded.length < 6) decoded.push(...(await reader.read()).value!);
    await client.close();
    await frames.stderr.until((l) => /conn 1 closed/.test(l));
    await json.stderr.until((l) => /conn 1 closed/.test(l));
    await Promise.all([stopCapture(frames), stopCapture(json)]);
    while (await lines.next() !== undefined);
    while (!(await reader.read()).done);

    const records = lines.seen.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      records.map((r) => [r.conn, r.dir, r.type, r.seq]),
      [
        [1, "c2s", "HELLO", 0],
        [1, "s2c", "HELLO_ACK", 0],
        [1, "c2s", "REQUEST", 1],
        [1, "s2c", "RESPONSE", 1],
        [1, "c2s", "REQUEST", 3],
        [1, "s2c", "RESPONSE", 3],
      ],
    );
    assert.deepEqual(
      [records[2].method, records[2].params, records[3].data],
      ["add", [2, 40], 42],
    );
    assert.deepEqual([records[4].params, records[5].data], ["hi", "hi"]);
    // Offsets count the bytes of each direction: each frame starts where
    // the one before it in its direction ended.
    const bytes = await recorded;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const next = { c2s: 0, s2c: 0 };
    for (let i = 0, at = 0; i < records.length; i++) {
      const dir = records[i].dir as "c2s" | "s2c";
      assert.equal(records[i].offset, next[dir], `record ${i}`);
      const size = 17 + view.getUint32(at + 5);
      next[dir] += size;
      at += size;
    }

    // The frames recording decodes to the same messages, in the same order.
    assert.deepEqual(
      decoded.map((m) => messageToJson(m, { codec: msgpackCodec })),
      records.map(withoutAnnotations),
    );
    // The JSON recording replays to the very bytes recorded.
    const replay = await run(["encode", "--codec", "msgpack"], { stdin: lines.seen.join("\n") });
    assert.equal(replay.code, 0, replay.stderr);
    assert.deepEqual(replay.bytes, bytes);

    const listing = await run(["inspect"], { stdin: bytes });
    assert.equal(listing.code, 0, listing.stderr);
    const rows = listing.stdout.split("\n").filter((l) => /^\s+\d+ {2}[A-Z]/.test(l));
    assert.deepEqual(rows.map((r) => r.trim().split(/\s+/).slice(1, 3)), [
      ["HELLO", "0"],
      ["HELLO_ACK", "0"],
      ["REQUEST", "1"],
      ["RESPONSE", "1"],
      ["REQUEST", "3"],
      ["RESPONSE", "3"],
    ]);
    assert.match(rows[2], /REQUEST\s+1 {2}EXT\s+\d+ {2}ok {3}add \[2,40\]$/);
    assert.match(rows[3], /RESPONSE\s+1 {2}-\s+1 {2}ok {3}42$/);
  } finally {
    await running.shutdown();
  }
});

Deno.test("capture passes bytes that are not frames through and stops recording that direction", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    for await (const conn of echo) conn.readable.pipeTo(conn.writable).catch(() => {});
  })();
  const capture = await startCapture([`127.0.0.1:${echo.addr.port}`]);
  const recorded = new Response(capture.child.stdout).bytes();
  try {
    const end = encodeFrames([{ type: FrameType.END, flags: 0, seq: 1, body: new Uint8Array(0) }]);
    const sent = concat([end, new TextEncoder().encode("not a frame\n")]);
    const socket = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(capture.addr.split(":")[2]),
    });
    await socket.write(sent);
    const back = new Uint8Array(sent.length);
    for (let at = 0; at < back.length;) at += (await socket.read(back.subarray(at)))!;
    assert.deepEqual(back, sent);
    const stops = [
      "capture: conn 1 c2s: recording stops at offset 17: invalid_argument: Bad magic '0x6e6f', expected '0xcafe'",
      "capture: conn 1 s2c: recording stops at offset 17: invalid_argument: Bad magic '0x6e6f', expected '0xcafe'",
    ];
    await capture.stderr.until((l) => l === stops[0]);
    await capture.stderr.until((l) => l === stops[1]);
    // Stopped with the connection open: the capture closes it.
    await stopCapture(capture);
    assert.equal(await socket.read(new Uint8Array(8)), null);
    socket.close();
    assert.ok(
      capture.stderr.seen.some((l) => l === "capture: conn 1 closed: c2s 29 bytes, s2c 29 bytes"),
    );
    assert.deepEqual(await recorded, concat([end, end]));
  } finally {
    echo.close();
    await echoing.catch(() => {});
  }
});

Deno.test("capture refuses bad addresses and flags with exit 2", async () => {
  const cases: [args: string[], error: string][] = [
    [["nope", ":9000"], "invalid_argument: Listen address 'nope' needs a port in 0..65535"],
    [
      [":0", "udp://127.0.0.1:9000"],
      "invalid_argument: Upstream address 'udp://127.0.0.1:9000' has scheme 'udp', expected tcp",
    ],
    [[":0", ":0"], "invalid_argument: Upstream address ':0' needs a port in 1..65535"],
    [[":0", ":9000", "--codec", "json"], "invalid_argument: --codec applies to --json output only"],
    [
      [":0"],
      "invalid_argument: Missing arguments: streamwire capture <listen> <upstream> [--json [--codec NAME]] [options]",
    ],
  ];
  for (const [args, error] of cases) {
    const result = await run(["capture", ...args]);
    assert.equal(result.stderr, `streamwire: ${error}\n`, args.join(" "));
    assert.equal(result.code, 2, args.join(" "));
  }
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await run(["capture", `127.0.0.1:${taken.addr.port}`, ":9000"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^streamwire: unavailable: Cannot listen on tcp:\/\/127\.0\.0\.1:\d+: /,
    );
  } finally {
    taken.close();
  }
});
