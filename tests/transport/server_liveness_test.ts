// Heartbeats, dead peers, PING floods and kicks (PROTOCOL.md 5).

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import { memoryPair, openSession, SessionState } from "../../transport/mod.ts";
import {
  delay,
  encode,
  quietHandler,
  serverSide,
  startServer,
  waitFor,
  type Where,
} from "./_helpers.ts";

for (const where of ["tcp", "memory"] as Where[]) {
  Deno.test(`Heartbeat over ${where}: a quiet but alive client stays up past 3 x heartbeatMs`, async () => {
    const heartbeatMs = 20;
    await using t = startServer({ where, heartbeatMs, handshakeTimeoutMs: 200 });
    let closedReason: StreamwireError | undefined | "open" = "open";
    const client = await t.client({ handler: quietHandler({ close: (_, r) => closedReason = r }) });
    const server = serverSide(t.server, client);
    // The application sends nothing; only the heartbeat timers run.
    await delay(10 * heartbeatMs);
    assert.equal(closedReason, "open");
    assert.notEqual(client.state, SessionState.CLOSED);
    assert.notEqual(server.state, SessionState.CLOSED);
    assert.equal(t.server.sessionCount, 1);
    assert.equal(t.server.metrics.deadPeers, 0);
    // PINGs went both ways, and each side answered the other's.
    assert.ok(server.stats.framesIn >= 3, `server got ${server.stats.framesIn} frames`);
    assert.ok(client.stats.framesIn >= 3, `client got ${client.stats.framesIn} frames`);
  });
}

Deno.test("Heartbeat: PING/PONG sets stats.rttMs on both sides", async () => {
  await using t = startServer({ heartbeatMs: 20, handshakeTimeoutMs: 200 });
  const client = await t.client();
  const server = serverSide(t.server, client);
  assert.equal(client.stats.rttMs, undefined);
  // An explicit PING measures at once.
  client.ping();
  await waitFor(() => client.stats.rttMs !== undefined, "client rtt");
  assert.ok(client.stats.rttMs! >= 0 && client.stats.rttMs! < 1000, `rtt ${client.stats.rttMs}`);
  // The server's own heartbeat PINGs measure its side.
  await waitFor(() => server.stats.rttMs !== undefined, "server rtt", 1000);
  assert.ok(server.stats.rttMs! >= 0 && server.stats.rttMs! < 1000, `rtt ${server.stats.rttMs}`);
});

Deno.test("Heartbeat: a silent peer is closed within 3 x heartbeatMs plus a sweep", async () => {
  const heartbeatMs = 30;
  await using t = startServer({ heartbeatMs, handshakeTimeoutMs: 200 });
  const peer = await t.raw();
  // HELLO by hand, then nothing at all: no PONG to the server's PINGs.
  await peer.handshake();
  const silentSince = Date.now();
  const messages: Message[] = await peer.rest();
  const elapsed = Date.now() - silentSince;
  assert.equal(peer.ended, "eof");
  const pings = messages.filter((m) => m.type === FrameType.PING);
  assert.ok(pings.length >= 1, "the server pinged the silent peer before giving up");
  const error = messages.at(-1) as { type: number; code: number; message: string };
  assert.equal(error.type, FrameType.ERROR);
  assert.equal(error.code, Status.UNAVAILABLE);
  assert.match(error.message, /^Peer silent for '\d+' ms \(heartbeat '30' ms\)$/);
  // The sweep runs every heartbeatMs / 4; allow scheduling slack on top.
  assert.ok(elapsed >= 3 * heartbeatMs - 5, `closed after ${elapsed} ms, not early`);
  assert.ok(elapsed <= 3 * heartbeatMs + heartbeatMs / 4 + 100, `closed after ${elapsed} ms`);
  await waitFor(() => t.server.sessionCount === 0, "removed from the manager");
  assert.equal(t.server.metrics.deadPeers, 1);
  assert.equal(t.server.metrics.closed, 1);
});

Deno.test("Heartbeat: a peer that answers PINGs but sends nothing else stays up", async () => {
  const heartbeatMs = 20;
  await using t = startServer({ heartbeatMs, handshakeTimeoutMs: 200 });
  const peer = await t.raw();
  await peer.handshake();
  const until = Date.now() + 8 * heartbeatMs;
  while (Date.now() < until) {
    const ping = await peer.nextOf(FrameType.PING, 500);
    await peer.send({
      type: FrameType.PONG,
      seq: ping.seq,
      payload: (ping as { payload: Uint8Array }).payload,
    });
  }
  assert.equal(t.server.sessionCount, 1);
  assert.equal(t.server.metrics.deadPeers, 0);
  const session = [...t.server.sessions()][0];
  assert.ok(session.stats.rttMs !== undefined, "the PONGs measured the round trip");
});

Deno.test("Heartbeat: a client session closes a silent server within 3 x heartbeatMs", async () => {
  // The client's own timer (openSession) applies the same rule to the server.
  const [a, b] = memoryPair();
  const reader = b.readable.getReader();
  const writer = b.writable.getWriter();
  const opening = openSession(a, { handler: quietHandler(), handshakeTimeoutMs: 500 });
  await reader.read(); // HELLO
  await writer.write(
    encode({
      type: FrameType.HELLO_ACK,
      seq: 0,
      ack: {
        version: 1,
        session: "s",
        codec: "json",
        compression: [],
        heartbeatMs: 20,
        maxFrame: 65536,
        window: 8,
      },
    }),
  );
  const client = await opening;
  const start = Date.now();
  // Keep reading (so the client's PINGs are taken) but never answer.
  const draining = (async () => {
    while (!(await reader.read()).done) { /* drop */ }
  })().catch(() => {});
  await client.closed;
  const elapsed = Date.now() - start;
  assert.equal(client.closeReason?.code, Status.UNAVAILABLE);
  assert.ok(elapsed >= 55 && elapsed < 300, `closed after ${elapsed} ms`);
  await draining;
  writer.releaseLock();
  await b.closed;
});

// --- PING flood ---------------------------------------------------------------

Deno.test("PING flood: beyond maxPingsPerSecond the peer is disconnected with resource_exhausted", async () => {
  await using t = startServer({
    heartbeatMs: 1000,
    handshakeTimeoutMs: 200,
    maxPingsPerSecond: 10,
  });
  const healthy = await t.client();
  const peer = await t.raw();
  await peer.handshake();
  const ping = (
    seq: number,
  ) => ({ type: FrameType.PING, seq, payload: Uint8Array.of(seq) } as const);
  await peer.write(encode(...Array.from({ length: 50 }, (_, i) => ping(i + 1))));
  const messages = await peer.rest();
  const pongs = messages.filter((m) => m.type === FrameType.PONG);
  assert.deepEqual(pongs.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const error = messages.at(-1) as { type: number; code: number; message: string };
  assert.equal(error.type, FrameType.ERROR);
  assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
  assert.equal(error.message, "PING flood: more than '10' per second");
  await waitFor(() => t.server.sessionCount === 1, "flooder removed");
  assert.equal(serverSide(t.server, healthy).state, SessionState.ACTIVE);
});

Deno.test("PING flood: PINGs spread over time at a high rate are cut off too", async () => {
  await using t = startServer({
    heartbeatMs: 1000,
    handshakeTimeoutMs: 200,
    maxPingsPerSecond: 10,
  });
  const peer = await t.raw();
  await peer.handshake();
  let sent = 0;
  // About 200 PINGs per second, one per write.
  while (
    sent < 100 && await peer.send({ type: FrameType.PING, seq: ++sent, payload: new Uint8Array(0) })
  ) {
    await delay(5);
    if (t.server.sessionCount === 0) break;
  }
  const messages = await peer.rest();
  const error = messages.at(-1) as { type: number; code: number };
  assert.equal(error.type, FrameType.ERROR);
  assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
  assert.ok(sent < 100, `cut off after ${sent} PINGs`);
  await waitFor(() => t.server.sessionCount === 0, "flooder removed");
});

Deno.test("PING flood: up to maxPingsPerSecond PINGs are all answered", async () => {
  await using t = startServer({
    heartbeatMs: 1000,
    handshakeTimeoutMs: 200,
    maxPingsPerSecond: 10,
  });
  const peer = await t.raw();
  await peer.handshake();
  await peer.write(
    encode(
      ...Array.from(
        { length: 10 },
        (_, i) => ({ type: FrameType.PING, seq: i, payload: new Uint8Array(0) }) as const,
      ),
    ),
  );
  for (let i = 0; i < 10; i++) assert.equal((await peer.nextOf(FrameType.PONG)).seq, i);
  await delay(20);
  assert.equal(t.server.sessionCount, 1);
});

// --- kick -----------------------------------------------------------------------

for (const where of ["tcp", "memory"] as Where[]) {
  Deno.test(`kick over ${where}: sends ERROR aborted with the reason, closes, removes the session`, async () => {
    await using t = startServer({ where, heartbeatMs: 50, handshakeTimeoutMs: 200 });
    let reason: StreamwireError | undefined;
    const client = await t.client({ handler: quietHandler({ close: (_, r) => reason = r }) });
    const other = await t.client();
    assert.equal(t.server.kick(client.id, "Banned for spamming"), true);
    await client.closed;
    assert.ok(reason instanceof StreamwireError);
    assert.equal(reason.code, Status.ABORTED);
    assert.equal(reason.message, "Banned for spamming");
    assert.equal(client.closeReason, reason);
    await waitFor(() => t.server.sessionCount === 1, "kicked session removed");
    assert.equal(t.server.session(client.id), undefined);
    assert.ok(t.server.session(other.id));
    assert.equal(t.server.kick(client.id), false, "kicking twice finds nobody");
    assert.equal(t.server.kick("no-such-id"), false);
  });
}

Deno.test("kick: a raw peer reads ERROR aborted with the default reason, then EOF", async () => {
  await using t = startServer({ heartbeatMs: 50, handshakeTimeoutMs: 200 });
  const peer = await t.raw();
  const ack = await peer.handshake();
  t.server.kick(ack.session as string);
  const messages = await peer.rest();
  assert.deepEqual(messages.map((m) => m.type), [FrameType.ERROR]);
  assert.equal((messages[0] as { code: number }).code, Status.ABORTED);
  assert.equal((messages[0] as { message: string }).message, "Kicked by the server");
  assert.equal(peer.ended, "eof");
});
