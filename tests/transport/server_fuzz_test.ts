import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameType } from "../../codec/constants.ts";
import { connect } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { dial } from "../../transport/dial.ts";
import { encode, helloBytes, waitFor } from "./_helpers.ts";

/** Writes `bytes` and reads until the server closes the connection; resolves with what it sent. */
async function spray(addr: string, bytes: Uint8Array): Promise<number> {
  const conn = await dial(addr);
  const writer = conn.writable.getWriter();
  await writer.write(bytes).catch(() => {});
  writer.releaseLock();
  let received = 0;
  try {
    for await (const chunk of conn.readable) received += chunk.length;
  } catch { /* reset by the server: fine */ }
  conn.close();
  return received;
}

Deno.test("a server fed random and mutated bytes on many connections keeps serving a good client", async () => {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    handshakeTimeoutMs: 300,
    heartbeatMs: 100,
  });
  const addr = server.listen({ port: 0 });
  const good = await connect(addr, { codecs: ["json"] });
  const valid = new Uint8Array([
    ...helloBytes(),
    ...encode({
      type: FrameType.REQUEST,
      seq: 1,
      method: "add",
      params: new TextEncoder().encode("[1,2]"),
    }),
  ]);
  try {
    const inputs = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 2048, size: "max" }),
        // Valid bytes with a few positions overwritten: the headers stay
        // plausible, so the damage reaches checksums, lengths and bodies.
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }).map((edits) => {
          const bytes = valid.slice();
          for (const [at, value] of edits) bytes[at] = value;
          return bytes;
        }),
      ),
      { numRuns: 150, seed: 42 },
    );
    let calls = 0;
    const load = (async () => {
      for (let i = 0; i < 60; i++) {
        assert.equal(await good.call("add", [i, 1]), i + 1);
        calls++;
      }
    })();
    // Every spray ends: the server answers or closes each bad connection.
    for (let i = 0; i < inputs.length; i += 25) {
      await Promise.all(inputs.slice(i, i + 25).map((bytes) => spray(addr, bytes)));
    }
    await load;
    assert.equal(calls, 60);
    await waitFor(() => server.transport.sessionCount === 1, "only the good session left", 3000);
    assert.equal(await good.call("echo", "still here"), "still here");
  } finally {
    await good.close();
    await server.shutdown({ deadlineMs: 0 });
  }
});
