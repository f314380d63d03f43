// A real RpcServer over TCP driven by frames built and parsed by hand from
// PROTOCOL.md (own big-endian writer, node:zlib CRC-32): nothing of the
// project's codec is used on this side.

import assert from "node:assert/strict";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";
import {
  batchBody,
  batchResults,
  callEntry,
  creditBody,
  frame,
  json,
  parseJson,
  type RawFrame,
  RawPeer,
  reseal,
  statusOf,
  T,
  Writer,
} from "./_wire.ts";

const HELLO = {
  version: 1,
  codecs: ["json"],
  compression: [],
  heartbeatMs: 30000,
  maxFrame: 16777216,
  window: 64,
  agent: "hand/1",
};

async function serve(
  options: Partial<RpcServerOptions> = {},
): Promise<{ server: RpcServer; peer: RawPeer; [Symbol.asyncDispose](): Promise<void> }> {
  const server: RpcServer = new RpcServer({ ...options, methods: demoMethods(() => server) });
  const addr = server.listen({ port: 0 });
  const peer = await RawPeer.tcp(addr);
  return {
    server,
    peer,
    async [Symbol.asyncDispose]() {
      await peer.close();
      await server.shutdown({ deadlineMs: 50 });
    },
  };
}

function assertHeader(f: RawFrame, type: number, seq: number): void {
  assert.equal(f.magic, 0xcafe);
  assert.equal(f.version, 1);
  assert.equal(f.flags & 0xf4, 0, "no reserved or ENCRYPTED bits");
  assert.equal(f.type, type, `type 0x${f.type.toString(16)}, expected 0x${type.toString(16)}`);
  assert.equal(f.seq, seq);
  assert.equal(f.length, f.body.length);
  assert.ok(f.crcOk, "CRC-32 over header[0..13) then body");
}

async function handshake(peer: RawPeer, hello: object = HELLO): Promise<Record<string, unknown>> {
  await peer.send(frame(T.HELLO, 0, json(hello)));
  const ack = await peer.next();
  assertHeader(ack, T.HELLO_ACK, 0);
  return parseJson(ack.body) as Record<string, unknown>;
}

Deno.test("interop: HELLO with JSON gets HELLO_ACK", async () => {
  await using s = await serve();
  const ack = await handshake(s.peer);
  assert.equal(ack.version, 1);
  assert.equal(ack.codec, "json");
  assert.equal(typeof ack.session, "string");
  assert.deepEqual(ack.compression, []);
  assert.equal(ack.window, 512);
  assert.equal(ack.maxFrame, 16777216);
  assert.equal(ack.heartbeatMs, 30000);
});

Deno.test("interop: unary add [2,40] answers RESPONSE 42", async () => {
  await using s = await serve();
  await handshake(s.peer);
  await s.peer.send(frame(T.REQUEST, 1, callEntry("add", json([2, 40]))));
  const res = await s.peer.next();
  assertHeader(res, T.RESPONSE, 1);
  assert.equal(res.flags, 0);
  assert.deepEqual(parseJson(res.body), 42);
  // Two requests in one write, answered by id.
  await s.peer.send(
    frame(T.REQUEST, 3, callEntry("echo", json({ a: [1, 2] }))),
    frame(T.REQUEST, 5, callEntry("nope", json(null))),
  );
  const answers = [await s.peer.next(), await s.peer.next()].sort((a, b) => a.seq - b.seq);
  assertHeader(answers[0], T.RESPONSE, 3);
  assert.deepEqual(parseJson(answers[0].body), { a: [1, 2] });
  assertHeader(answers[1], T.ERROR, 5);
  assert.deepEqual(statusOf(answers[1].body), { code: 12, message: "Unknown method 'nope'" });
});

Deno.test("interop: BATCH of add/echo/unknown answers BATCH_RESULT 0,0,12", async () => {
  await using s = await serve();
  await handshake(s.peer);
  await s.peer.send(frame(
    T.BATCH,
    7,
    batchBody([["add", json([1, 2])], ["echo", json("hi")], ["missing", json(1)]]),
  ));
  const res = await s.peer.next();
  assertHeader(res, T.BATCH_RESULT, 7);
  const results = batchResults(res.body);
  assert.deepEqual(results.map((r) => r.code), [0, 0, 12]);
  assert.deepEqual(parseJson(results[0].data), 3);
  assert.deepEqual(parseJson(results[1].data), "hi");
  assert.equal(new TextDecoder().decode(results[2].data), "Unknown method 'missing'");
});

Deno.test("interop: OPEN count 5 + END streams DATA 1..5 then END", async () => {
  await using s = await serve();
  await handshake(s.peer);
  await s.peer.send(frame(T.OPEN, 9, callEntry("count", json(5))), frame(T.END, 9));
  const frames = await s.peer.until((f) => f.type !== T.DATA);
  frames.forEach((f, i) => assertHeader(f, i < 5 ? T.DATA : T.END, 9));
  assert.deepEqual(frames.slice(0, 5).map((f) => parseJson(f.body)), [1, 2, 3, 4, 5]);
  assert.equal(frames[5].length, 0);
});

Deno.test("interop: the server sends DATA only against CREDIT granted by hand", async () => {
  await using s = await serve({ window: 4 });
  const ack = await handshake(s.peer);
  assert.equal(ack.window, 4);
  await s.peer.send(frame(T.OPEN, 11, callEntry("count", json(10))), frame(T.END, 11));
  const got: number[] = [];
  const take = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const f = await s.peer.next();
      assertHeader(f, T.DATA, 11);
      got.push(parseJson(f.body) as number);
    }
  };
  await take(4);
  assert.deepEqual(await s.peer.sync(), [], "a window's worth, then it waits");
  await s.peer.send(frame(T.CREDIT, 11, creditBody(3)));
  await take(3);
  assert.deepEqual(await s.peer.sync(), [], "three more, then it waits");
  await s.peer.send(frame(T.CREDIT, 11, creditBody(100)));
  await take(3);
  assertHeader(await s.peer.next(), T.END, 11);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("interop: client stream by hand: OPEN sum, DATA, END -> DATA total, END", async () => {
  await using s = await serve();
  await handshake(s.peer);
  await s.peer.send(
    frame(T.OPEN, 13, callEntry("sum", new Uint8Array(0))),
    frame(T.DATA, 13, json(40)),
    frame(T.DATA, 13, json(2)),
    frame(T.END, 13),
  );
  const result = await s.peer.next();
  assertHeader(result, T.DATA, 13);
  assert.equal(parseJson(result.body), 42);
  assertHeader(await s.peer.next(), T.END, 13);
});

Deno.test("interop: timeout extension, CANCEL, bad params, PING", async () => {
  await using s = await serve();
  await handshake(s.peer);
  // EXT flag 0x08: u16 extLen, then { key 0x03 timeout, u16 len 4, u32 ms }.
  // The sleep outlasts the safety net: an ERROR before that is the deadline's.
  const ext = new Writer().u16(7).u8(0x03).u16(4).u32(30).done();
  const body = new Writer().raw(ext).raw(callEntry("sleep", json(60_000))).done();
  await s.peer.send(frame(T.REQUEST, 15, body, 0x08));
  const late = await s.peer.next();
  assertHeader(late, T.ERROR, 15);
  assert.equal(statusOf(late.body).code, 4);
  // CANCEL: the callee stops and sends nothing more for that id.
  await s.peer.send(frame(T.REQUEST, 17, callEntry("sleep", json(5000))));
  await s.peer.send(frame(T.CANCEL, 17, new Writer().u16(1).utf8("bye").done()));
  assert.deepEqual(await s.peer.sync(), [], "nothing for id 17 before the PONG");
  // Params that are not JSON.
  await s.peer.send(frame(T.REQUEST, 19, callEntry("add", new TextEncoder().encode("{nope"))));
  const bad = await s.peer.next();
  assertHeader(bad, T.ERROR, 19);
  assert.equal(statusOf(bad.body).code, 3);
  // PING is answered by PONG with the same seq and payload.
  await s.peer.send(frame(T.PING, 77, Uint8Array.of(1, 2, 3)));
  const pong = await s.peer.next();
  assertHeader(pong, T.PONG, 77);
  assert.deepEqual([...pong.body], [1, 2, 3]);
});

for (
  const [name, mutate, code] of [
    ["a checksum mismatch", (f: Uint8Array) => (f[13] ^= 0xff), 15],
    ["bad magic", (f: Uint8Array) => reseal((f[0] = 0xbe, f)), 3],
    ["an unknown type", (f: Uint8Array) => reseal((f[4] = 0x77, f)), 12],
    ["reserved flag bits", (f: Uint8Array) => reseal((f[3] = 0x10, f)), 12],
    ["the ENCRYPTED flag", (f: Uint8Array) => reseal((f[3] = 0x04, f)), 12],
  ] as const
) {
  Deno.test(`interop: ${name} gets ERROR seq 0 code ${code}, then close`, async () => {
    await using s = await serve();
    await handshake(s.peer);
    const f = frame(T.REQUEST, 21, callEntry("add", json([1, 1])));
    mutate(f);
    await s.peer.send(f);
    const error = await s.peer.next();
    assertHeader(error, T.ERROR, 0);
    assert.equal(statusOf(error.body).code, code);
    await assert.rejects(s.peer.next(), /EOF/);
  });
}
