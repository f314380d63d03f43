import assert from "node:assert/strict";
import { messageFromJson, messageToJson } from "../../cli/frames.ts";
import type { Message } from "../../codec/mod.ts";
import { FrameType } from "../../codec/constants.ts";

const TOOL = new URL("../../cli/frames.ts", import.meta.url).pathname;

async function run(
  command: string,
  input: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", TOOL, command],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

const messages: Message[] = [
  { type: FrameType.REQUEST, seq: 1, method: "add", params: new TextEncoder().encode("[2,40]") },
  {
    type: FrameType.BATCH,
    seq: 3,
    entries: [{ method: "echo", params: Uint8Array.of(0xc0) }],
    ext: { timeoutMs: 1500, metadata: [["tenant", "acme"]] },
  },
  { type: FrameType.GOAWAY, seq: 0, code: 14, lastId: 3, reason: "restarting" },
];

Deno.test("messageToJson and messageFromJson are inverse", () => {
  for (const message of messages) {
    assert.deepEqual(messageFromJson(JSON.parse(JSON.stringify(messageToJson(message)))), message);
  }
});

Deno.test("frames.ts encodes JSON lines to frames and decodes them back", async () => {
  const lines = messages.map((m) => JSON.stringify(messageToJson(m))).join("\n") + "\n";
  const encoded = await run("encode", new TextEncoder().encode(lines));
  assert.equal(encoded.code, 0, encoded.stderr);
  assert.equal(
    Array.from(encoded.stdout.subarray(0, 2), (b) => b.toString(16)).join(""),
    "cafe",
  );
  const decoded = await run("decode", encoded.stdout);
  assert.equal(decoded.code, 0, decoded.stderr);
  const back = new TextDecoder().decode(decoded.stdout).trim().split("\n").map((line) =>
    messageFromJson(JSON.parse(line))
  );
  assert.deepEqual(back, messages);
});

Deno.test("frames.ts decode reports a malformed stream with its status code", async () => {
  const result = await run(
    "decode",
    Uint8Array.of(0xbe, 0xef, 1, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0),
  );
  assert.equal(result.code, 1);
  assert.match(result.stderr, /invalid_argument: Bad magic '0xbeef'/);
});
