import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameType } from "../../codec/constants.ts";
import { connect } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { dial } from "../../transport/dial.ts";
import { encode, helloBytes } from "./_helpers.ts";

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
  // Sprays that stop mid-frame end at the handshake timeout: short enough
  // to keep the test quick, long enough that the good client's own
  // handshake is never at risk. The heartbeat stays at its default, so a
  // busy machine cannot make the good client look dead.
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    handshakeTimeoutMs: 1000,
  });
  const addr = server.listen({ port: 0 });
  const good = await connect(addr, { codecs: ["json"] });
  const [goodSession] = server.transport.sessions();
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
    // 25 connections at a time.
    let next = 0;
    await Promise.all(Array.from({ length: 25 }, async () => {
      while (next < inputs.length) await spray(addr, inputs[next++]);
    }));
    await load;
    assert.equal(calls, 60);
    for (const session of [...server.transport.sessions()]) {
      if (session !== goodSession) await session.closed;
    }
    assert.equal(server.transport.sessionCount, 1, "only the good session left");
    assert.equal(await good.call("echo", "still here"), "still here");
  } finally {
    await good.close();
    await server.shutdown({ deadlineMs: 0 });
  }
});
