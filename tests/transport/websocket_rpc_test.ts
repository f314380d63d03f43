// RPC over the WebSocket transport, end to end on 127.0.0.1: every call
// kind, heartbeats, negotiated limits, TCP and WebSocket sessions in one
// room, reconnection after a restart, the global WebSocket client and wss.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { type ClientOptions, connect, type RpcClient } from "../../rpc/client.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";
import { dial, dialWebSocket, listenWebSocket } from "../../transport/mod.ts";
import { Probe, rejectsWith, testMethods } from "../rpc/_rig.ts";
import { Signal, waitFor } from "./_helpers.ts";
import { selfSigned } from "./_tls.ts";

/** An RpcServer with the test methods on a WebSocket listener, and a client of it. */
async function wsRig(
  options: { server?: Partial<RpcServerOptions>; client?: ClientOptions; global?: boolean } = {},
) {
  const probe = new Probe();
  const server: RpcServer = new RpcServer({
    ...options.server,
    methods: testMethods(() => server, probe),
  });
  const listener = listenWebSocket("ws://127.0.0.1:0/rpc");
  const serving = server.serve(listener);
  const client = await connect(listener.addr, {
    reconnect: false,
    ...options.client,
    ...(options.global ? { dial: () => dialWebSocket(listener.addr) } : {}),
  });
  return {
    server,
    client,
    probe,
    addr: listener.addr,
    async [Symbol.asyncDispose]() {
      await client.close();
      await server.shutdown({ deadlineMs: 50 });
      await serving;
      await listener.closed;
    },
  };
}

for (const global of [false, true]) {
  const name = global ? "global WebSocket" : "Deno client";

  Deno.test(`ws (${name}): unary, notify and batch`, async () => {
    await using r = await wsRig({ global });
    assert.equal(r.client.session?.conn.transport, "ws");
    assert.deepEqual(await r.client.call("echo", { a: [1, "x"] }), { a: [1, "x"] });
    await r.client.notify("note", 7);
    await r.probe.until(() => r.probe.notified.length === 1, "the NOTIFY");
    const outcomes = await r.client.batch([
      { method: "echo", params: 1 },
      { method: "fail.code" },
      { method: "echo", params: "x".repeat(100_000) },
    ]);
    assert.deepEqual(outcomes[0], { ok: true, value: 1 });
    assert.equal(outcomes[1].ok, false);
    assert.equal((outcomes[2] as { value: string }).value.length, 100_000);
  });

  Deno.test(`ws (${name}): server, client and bidi streams`, async () => {
    await using r = await wsRig({ global });
    assert.deepEqual(await Array.fromAsync(r.client.stream("fast", 2000)), [
      ...Array(2000).keys(),
    ]);
    const input = Array.from({ length: 3000 }, (_, i) => i);
    assert.deepEqual(await r.client.upload("collect", ReadableStream.from(input)), input);
    const { readable, writable } = r.client.duplex("upper");
    const writer = writable.getWriter();
    const reader = readable.getReader();
    for (const word of ["a", "b", "c"]) {
      await writer.write(word);
      assert.equal((await reader.read()).value, word.toUpperCase());
    }
    await writer.close();
    assert.equal((await reader.read()).done, true);
  });
}

Deno.test("ws: large messages both ways are split at frame boundaries and reassembled", async () => {
  await using r = await wsRig();
  const big = "y".repeat(3 * 1024 * 1024);
  assert.equal(((await r.client.call("echo", big)) as string).length, big.length);
  // A small maxFrame: writes of many answers must be cut into messages of at
  // most 8192 + 17 bytes, or the client would refuse them.
  await using small = await wsRig({ server: { maxFrame: 8192 } });
  const many = await Promise.all(
    Array.from({ length: 500 }, (_, i) => small.client.call("echo", "z".repeat(i * 10))),
  );
  assert.equal((many[499] as string).length, 4990);
  assert.equal(small.client.state, "ready");
});

Deno.test("ws: heartbeats flow and measure the round trip", async () => {
  await using r = await wsRig({ server: { heartbeatMs: 30 } });
  const [session] = r.server.transport.sessions();
  await waitFor(() => session.stats.rttMs !== undefined, "a PING answered over ws");
  assert.equal(r.client.state, "ready");
});

Deno.test("ws: the negotiated maxFrame binds both sides", async () => {
  await using r = await wsRig({ server: { maxFrame: 8192 } });
  assert.equal(r.client.session?.settings?.maxFrame, 8192);
  await rejectsWith(r.client.call("echo", "x".repeat(20_000)), Status.RESOURCE_EXHAUSTED);
  assert.equal(await r.client.call("echo", "still fine"), "still fine");
});

Deno.test("ws: a TCP client and a WebSocket client share a chat room", async () => {
  await using r = await wsRig();
  const tcp = await connect(r.server.listen({ port: 0 }), { reconnect: false });
  try {
    const heard: unknown[] = [];
    const signal = new Signal();
    for (const client of [r.client, tcp]) {
      assert.equal(await client.call("chat.join", { room: "lobby" }), true);
      client.subscribe("lobby", (message) => {
        heard.push(message);
        signal.notify();
      });
    }
    assert.equal(await tcp.call("chat.say", { room: "lobby", text: "from tcp" }), 2);
    assert.equal(await r.client.call("chat.say", { room: "lobby", text: "from ws" }), 2);
    await signal.until(() => heard.length === 4, "both messages at both clients");
    assert.deepEqual(
      heard.map((m) => (m as { text: string }).text).sort(),
      ["from tcp", "from tcp", "from ws", "from ws"],
    );
  } finally {
    await tcp.close();
  }
});

Deno.test("ws: the client reconnects after the server restarts on the same port", async () => {
  const start = (port: number) => {
    const server: RpcServer = new RpcServer({ methods: testMethods(() => server, new Probe()) });
    const listener = listenWebSocket(`ws://127.0.0.1:${port}/`);
    return { server, listener, serving: server.serve(listener) };
  };
  const first = start(0);
  const addr = first.listener.addr;
  const client: RpcClient = await connect(addr, {
    reconnect: { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 200 },
  });
  try {
    assert.equal(await client.call("echo", 1), 1);
    await first.server.shutdown({ deadlineMs: 0 });
    await first.listener.closed;
    const second = start(Number(new URL(addr).port));
    try {
      assert.equal(await client.call("echo", 2), 2);
      assert.equal(second.server.transport.sessionCount, 1);
    } finally {
      await client.close();
      await second.server.shutdown({ deadlineMs: 0 });
      await second.listener.closed;
    }
  } finally {
    await client.close();
  }
});

Deno.test("wss: a TLS WebSocket with the server's certificate", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certFile, keyFile } = await selfSigned(dir);
    const server: RpcServer = new RpcServer({ methods: testMethods(() => server, new Probe()) });
    const listener = listenWebSocket({ url: "wss://127.0.0.1:0/", certFile, keyFile });
    const serving = server.serve(listener);
    assert.match(listener.addr, /^wss:\/\/127\.0\.0\.1:\d+\/$/);
    const url = listener.addr.replace("127.0.0.1", "localhost");
    const client = await connect(url, {
      reconnect: false,
      dial: () => dial({ url, caFile: certFile }),
    });
    assert.equal(client.session?.conn.transport, "wss");
    assert.equal(await client.call("echo", "x".repeat(50_000)), "x".repeat(50_000));
    await client.close();
    await server.shutdown({ deadlineMs: 0 });
    await serving;
    await listener.closed;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
