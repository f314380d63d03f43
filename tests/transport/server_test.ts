// Server and Session: the handshake that succeeds, over TCP and memory, and
// the session state machine (PROTOCOL.md 4 and 5).

import assert from "node:assert/strict";
import { FrameType } from "../../codec/constants.ts";
import { dial, listen, memoryPair, Server, Session, SessionState } from "../../transport/mod.ts";
import {
  encode,
  nextState,
  quietHandler,
  RawPeer,
  serverSide,
  startServer,
  type StateChange,
  type Where,
} from "./_helpers.ts";

for (const where of ["tcp", "memory"] as Where[]) {
  Deno.test(`Server handshake over ${where} negotiates codec, compression, window and maxFrame`, async () => {
    await using t = startServer({
      where,
      codecs: ["json", "cbor", "msgpack"],
      compression: ["zlib", "lz4"],
      window: 16,
      maxFrame: 1024 * 1024,
      heartbeatMs: 20_000,
    });
    const client = await t.client({
      codecs: ["cbor", "json"],
      compression: ["lz4", "zlib"],
      window: 99,
      maxFrame: 65536,
      heartbeatMs: 5000,
    });
    const expected = {
      session: client.id,
      // The client's first choice the server speaks.
      codec: "cbor",
      // Both accept them; the server's order.
      compression: ["zlib", "lz4"],
      // The server's values bind both sides.
      heartbeatMs: 20_000,
      window: 16,
      // The smaller of the two limits.
      maxFrame: 65536,
    };
    assert.deepEqual(client.settings, expected);
    assert.equal(client.state, SessionState.ACTIVE);
    assert.equal(client.codec, "cbor");
    const server = serverSide(t.server, client);
    assert.deepEqual(server.settings, expected);
    assert.equal(server.id, client.id);
    assert.equal(server.state, SessionState.ACTIVE);
    assert.equal(server.role, "server");
    assert.equal(client.role, "client");
    assert.equal(t.server.sessionCount, 1);
    assert.equal(t.server.metrics.accepted, 1);
    assert.equal(t.server.metrics.handshakeFailures, 0);
    assert.equal(server.remoteAddr, client.conn.localAddr);
  });

  Deno.test(`Server HELLO_ACK over ${where} carries the id server.session() knows`, async () => {
    await using t = startServer({ where, heartbeatMs: 20_000 });
    const peer = await t.raw();
    const ack = await peer.handshake({ codecs: ["msgpack", "json"] });
    assert.equal(ack.version, 1);
    assert.equal(typeof ack.session, "string");
    const session = t.server.session(ack.session as string);
    assert.ok(session, "server.session(id) finds the session named in HELLO_ACK");
    assert.equal(session.id, ack.session);
    assert.equal(ack.codec, "msgpack");
    assert.deepEqual(ack.compression, []);
    assert.equal(ack.heartbeatMs, 20_000);
    assert.deepEqual([...t.server.sessions()], [session]);
  });
}

Deno.test("Server gives every session its own id", async () => {
  await using t = startServer();
  const clients = await Promise.all([t.client(), t.client(), t.client()]);
  const ids = new Set(clients.map((c) => c.id));
  assert.equal(ids.size, 3);
  for (const client of clients) assert.equal(serverSide(t.server, client).id, client.id);
});

Deno.test("Session handshake pipelined with PINGs answers the PINGs first", async () => {
  // Only PING, PONG, ERROR and GOAWAY may precede HELLO_ACK (PROTOCOL.md 4).
  await using t = startServer();
  const peer = await t.raw();
  await peer.send({ type: FrameType.PING, seq: 7, payload: Uint8Array.of(1, 2) });
  const pong = await peer.next();
  assert.equal(pong?.type, FrameType.PONG);
  assert.equal(pong.seq, 7);
  await peer.handshake();
  assert.equal(t.server.sessionCount, 1);
});

// --- state machine ----------------------------------------------------------

function recordChanges(session: Session): StateChange[] {
  const changes: StateChange[] = [];
  session.addEventListener("statechange", (event) => {
    changes.push((event as CustomEvent<StateChange>).detail);
  });
  return changes;
}

Deno.test("Session states: connecting, active, idle after silence, active on traffic, closed", async () => {
  // Silence is measured against the clock handed to tick(), as the server's
  // sweep does with Date.now(): the test hands it a heartbeat interval of
  // silence instead of sitting one out, and a one-minute heartbeat keeps the
  // sweep's own ticks from changing anything meanwhile.
  const heartbeatMs = 60_000;
  const server = new Server({ handler: quietHandler(), heartbeatMs });
  const listener = listen({ port: 0 });
  const accepted = listener[Symbol.asyncIterator]().next();
  const peer = new RawPeer(await dial(listener.addr));
  const { value: conn } = await accepted;
  listener.close();
  const session = server.accept(conn!)!;
  const changes = recordChanges(session);
  assert.equal(session.state, SessionState.CONNECTING);

  await peer.handshake();
  assert.deepEqual(changes, [{ from: "connecting", to: "active" }]);

  // Nothing from the peer for just under a heartbeat interval: still active;
  // for a whole one: idle.
  const lastHeard = session.stats.lastReceivedAt;
  session.tick(lastHeard + heartbeatMs - 1, Infinity);
  assert.equal(session.state, SessionState.ACTIVE);
  session.tick(lastHeard + heartbeatMs, Infinity);
  assert.equal(session.state, SessionState.IDLE);
  assert.deepEqual(changes[1], { from: "active", to: "idle" });

  // Any frame from the peer makes it active again.
  const active = nextState(session, SessionState.ACTIVE);
  await peer.send({ type: FrameType.PING, seq: 0, payload: new Uint8Array(0) });
  assert.deepEqual(await active, { from: "idle", to: "active" });
  assert.deepEqual(changes[2], { from: "idle", to: "active" });

  await peer.close();
  await session.closed;
  assert.deepEqual(changes.slice(-2), [
    { from: "active", to: "disconnecting" },
    { from: "disconnecting", to: "closed" },
  ]);
  assert.equal(session.state, SessionState.CLOSED);
  assert.equal(server.sessionCount, 0);
  await server.shutdown();
});

Deno.test("Session close() goes through disconnecting to closed, both sides", async () => {
  await using t = startServer({ where: "memory" });
  const client = await t.client();
  const server = serverSide(t.server, client);
  const clientChanges = recordChanges(client);
  const serverChanges = recordChanges(server);
  await client.close();
  await server.closed;
  const closing = [
    { from: "active", to: "disconnecting" },
    { from: "disconnecting", to: "closed" },
  ];
  assert.deepEqual(clientChanges, closing);
  assert.deepEqual(serverChanges, closing);
  assert.equal(t.server.sessionCount, 0);
});

Deno.test("Session sends what was queued in one microtask as one write", async () => {
  const [a, b] = memoryPair();
  const session = new Session(a, { role: "server", handler: quietHandler() });
  const reader = b.readable.getReader();
  for (let seq = 1; seq <= 5; seq++) {
    session.send({ type: FrameType.PING, seq, payload: new Uint8Array(0) });
  }
  const { value } = await reader.read();
  assert.deepEqual(
    value,
    encode(
      ...[1, 2, 3, 4, 5].map((seq) =>
        ({ type: FrameType.PING, seq, payload: new Uint8Array(0) }) as const
      ),
    ),
  );
  reader.releaseLock();
  await session.close();
  assert.equal(session.stats.framesOut, 5);
  await b.closed;
});
