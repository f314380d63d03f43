import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";

const TOOL = new URL("../../cli/call.ts", import.meta.url).pathname;

async function call(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TOOL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("call.ts prints a unary result and each value of a stream", async () => {
  const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0, token: "t" });
  try {
    const add = await call(running.addr, "add", "[2,40]", "--token", "t", "--codec", "json");
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, "42\n");
    const count = await call(running.addr, "count", "3", "--stream", "--token", "t");
    assert.equal(count.code, 0, count.stderr);
    assert.equal(count.stdout, "1\n2\n3\n");
  } finally {
    await running.shutdown();
  }
});

Deno.test("call.ts reports the server's error code and exits 1", async () => {
  const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0 });
  try {
    const unknown = await call(running.addr, "nope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /call: unimplemented: Unknown method 'nope'/);
    const bad = await call(running.addr, "add", "[2,");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid_argument: params are not JSON/);
  } finally {
    await running.shutdown();
  }
});
