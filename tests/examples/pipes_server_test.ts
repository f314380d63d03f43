// examples/pipes_server.ts, run as its own process on a free port of
// 127.0.0.1, against the Python client written from PROTOCOL.md alone.

import assert from "node:assert/strict";
import { EXPECTED_CHECKS, runForeignClient } from "../interop/_foreign.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const EXAMPLE = new URL("../../examples/pipes_server.ts", import.meta.url).pathname;

Deno.test("the pipes example server passes every check of the foreign client", async () => {
  // --check: the example is type-checked as it starts.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--check", "-A", EXAMPLE, "0"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    // The example prints its address once it listens.
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`The example exited before listening: ${await stderr}`);
      text += value;
    }
    const port = Number(/tcp:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    assert.ok(port > 0, text);

    const { code, checks } = await runForeignClient(port);
    assert.deepEqual(checks.map((c) => c.check), EXPECTED_CHECKS, JSON.stringify(checks));
    assert.ok(checks.every((c) => c.ok), JSON.stringify(checks));
    assert.equal(code, 0);
  } finally {
    child.kill("SIGTERM");
    await lines.cancel();
    await child.status;
    await stderr;
  }
});
