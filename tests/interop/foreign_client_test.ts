// A client written in Python from PROTOCOL.md alone (foreign_client.py)
// against the server, over real TCP on 127.0.0.1: handshake, unary, batch,
// a server stream with credit, and the ERROR for garbage, a huge length and
// a bad checksum.

import assert from "node:assert/strict";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { EXPECTED_CHECKS, runForeignClient } from "./_foreign.ts";

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
