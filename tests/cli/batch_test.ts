import assert from "node:assert/strict";
import { run } from "./_run.ts";
import { startServer } from "./_server.ts";

Deno.test("batch answers NDJSON calls in request order across BATCH frames", async () => {
  const s = startServer();
  try {
    const calls = Array.from(
      { length: 25 },
      (_, i) => JSON.stringify({ method: "add", params: [i, 1] }),
    );
    const out = await run(["batch", s.addr, "--size", "4"], { stdin: calls.join("\n") + "\n" });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(
      out.stdout,
      Array.from({ length: 25 }, (_, i) => `{"ok":true,"value":${i + 1}}\n`).join(""),
    );
  } finally {
    await s.close();
  }
});

Deno.test("batch prints each failed entry and exits 64 + the first failure's status", async () => {
  const s = startServer();
  try {
    const stdin = [
      '{"method":"echo","params":"hi"}',
      '{"method":"nope"}',
      '{"method":"add","params":"x"}',
      '{"method":"nothing"}',
    ].join("\n");
    const out = await run(["batch", s.addr, "--codec", "json"], { stdin });
    assert.equal(out.code, 76);
    assert.equal(
      out.stdout,
      [
        '{"ok":true,"value":"hi"}',
        '{"ok":false,"code":"unimplemented","status":12,"message":"Unknown method \'nope\'"}',
        `{"ok":false,"code":"invalid_argument","status":3,"message":"add takes [a, b], got '\\"x\\"'"}`,
        '{"ok":true,"value":null}',
        "",
      ].join("\n"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("batch stops at a malformed line, naming it, after answering the calls before it", async () => {
  const s = startServer();
  try {
    for (
      const [bad, pattern] of [
        ["{oops", /stdin line 3: not JSON/],
        ['{"params":1}', /stdin line 3: 'method' must be a non-empty string/],
        ['{"method":"echo","parms":1}', /stdin line 3: unknown key 'parms'/],
        ["[1]", /stdin line 3: expected \{"method"/],
      ] as const
    ) {
      const stdin = `{"method":"echo","params":1}\n\n${bad}\n{"method":"echo","params":4}\n`;
      const out = await run(["batch", s.addr], { stdin });
      assert.equal(out.code, 2, out.stderr);
      assert.equal(out.stdout, '{"ok":true,"value":1}\n');
      assert.match(out.stderr, /^streamwire: invalid_argument: /);
      assert.match(out.stderr, pattern);
    }
    const size = await run(["batch", s.addr, "--size", "0"], { stdin: "" });
    assert.equal(size.code, 2);
  } finally {
    await s.close();
  }
});
