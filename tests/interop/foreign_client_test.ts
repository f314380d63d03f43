// A client written in Python from PROTOCOL.md alone (foreign_client.py)
// against the server, over real TCP on 127.0.0.1: handshake, unary, batch,
// a server stream with credit, and the ERROR for garbage, a huge length and
// a bad checksum.

import assert from "node:assert/strict";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";

const SCRIPT = new URL("./foreign_client.py", import.meta.url).pathname;

/** Runs the foreign client against `addr` and returns the checks it printed. */
export async function runForeignClient(
  port: number,
): Promise<{ code: number; checks: { check: string; ok: boolean; detail: string }[] }> {
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: [SCRIPT, "127.0.0.1", String(port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(stdout).trim().split("\n").filter(Boolean);
  if (code !== 0) console.error(new TextDecoder().decode(stderr));
  return { code, checks: lines.map((line) => JSON.parse(line)) };
}

export const EXPECTED_CHECKS = [
  "unary",
  "unknown method",
  "batch",
  "server stream with credit",
  "ping",
  "garbage gets ERROR 3",
  "huge length gets ERROR 8",
  "bad checksum gets ERROR 15",
];

Deno.test("A foreign client written from PROTOCOL.md passes every check against RpcServer", async () => {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    window: 4,
    maxFrame: 1 << 20,
  });
  const addr = server.listen({ port: 0 });
  try {
    const { code, checks } = await runForeignClient(Number(new URL(addr).port));
    assert.deepEqual(checks.map((c) => c.check), EXPECTED_CHECKS, JSON.stringify(checks));
    assert.ok(checks.every((c) => c.ok));
    assert.equal(code, 0);
  } finally {
    await server.shutdown({ deadlineMs: 0 });
  }
});
