// Heartbeats, dead peers, PING floods and kicks (PROTOCOL.md 5).
//
// A heartbeat test cannot avoid the clock: a peer is dead when it was silent
// for 3 x heartbeatMs. So these tests never bound how late something
// happens; they await the frames and closes themselves, count heartbeats
// instead of timing them, and use heartbeats of 100 ms where a live peer
// must stay up, so only a stall of the whole process for 200 ms could make
// it look dead.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import { memoryPair, openSession, SessionState } from "../../transport/mod.ts";
import { encode, quietHandler, serverSide, startServer, tap, type Where } from "./_helpers.ts";

/** Answers every REQUEST with a RESPONSE carrying its params. */
const echo = quietHandler({
  message(session, m) {
    if (m.type === FrameType.REQUEST) {
      session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
    }
  },
});

/** `Peer silent for 'N' ms (heartbeat 'H' ms)`: N, as the closing side measured it. */
function silentMs(message: string, heartbeatMs: number): number {
  const match = message.match(/^Peer silent for '(\d+)' ms \(heartbeat '(\d+)' ms\)$/);
  assert.ok(match, `a heartbeat close: ${message}`);
  assert.equal(Number(match[2]), heartbeatMs);
  return Number(match[1]);
}

/** The PINGs and PONGs among `messages`. */
function heartbeats(messages: Message[]): Message[] {
  return messages.filter((m) => m.type === FrameType.PING || m.type === FrameType.PONG);
}

for (const where of ["tcp", "memory"] as Where[]) {
  Deno.test(`Heartbeat over ${where}: a quiet but alive client stays up past 3 x heartbeatMs`, async () => {
    const heartbeatMs = 100;
    const serverTap = tap();
    await using t = startServer({ where, heartbeatMs, inbound: serverTap.stages });
    let closedReason: StreamwireError | undefined | "open" = "open";
    const clientTap = tap();
    const client = await t.client({
      handler: quietHandler({ close: (_, r) => closedReason = r }),
      inbound: clientTap.stages,
    });
    const server = serverSide(t.server, client);
    const opened = Date.now();
    // The application sends nothing; only the heartbeat timers run. Each
    // side waits for heartbeats from the other until it has had three and
    // one of them came after 3 x heartbeatMs, when a silent peer is dead.
    const pastDeadline = (messages: Message[]) =>
      heartbeats(messages).length >= 3 && Date.now() - opened > 3 * heartbeatMs;
    await serverTap.until(pastDeadline, "heartbeats at the server past 3 x heartbeatMs");
    await clientTap.until(pastDeadline, "heartbeats at the client past 3 x heartbeatMs");
    assert.equal(closedReason, "open");
    assert.notEqual(client.state, SessionState.CLOSED);
    assert.notEqual(server.state, SessionState.CLOSED);
    assert.equal(t.server.sessionCount, 1);
    assert.equal(t.server.metrics.deadPeers, 0);
    // After the handshake only PINGs and PONGs went both ways.
    assert.equal(heartbeats(serverTap.messages).length, serverTap.messages.length - 1);
    assert.equal(heartbeats(clientTap.messages).length, clientTap.messages.length - 1);
    assert.ok(server.stats.framesIn >= 3, `server got ${server.stats.framesIn} frames`);
    assert.ok(client.stats.framesIn >= 3, `client got ${client.stats.framesIn} frames`);
  });
}

Deno.test("Heartbeat: PING/PONG sets stats.rttMs on both sides", async () => {
  // Explicit PINGs on each side; the heartbeat's own PINGs measuring the
  // round trip are checked by the test of a peer that only answers PINGs.
  const serverTap = tap();
  await using t = startServer({ inbound: serverTap.stages });
  const clientTap = tap();
  const client = await t.client({ inbound: clientTap.stages });
  const server = serverSide(t.server, client);
  assert.equal(client.stats.rttMs, undefined);
  assert.equal(server.stats.rttMs, undefined);
  for (const [side, frames] of [[client, clientTap], [server, serverTap]] as const) {
    const pong = frames.arrival(FrameType.PONG);
    const before = Date.now();
    side.ping();
    await pong;
    const waited = Date.now() - before;
    // The round trip fits in the time the test waited for it.
    const rtt = side.stats.rttMs;
    assert.ok(rtt !== undefined && rtt >= 0 && rtt <= waited, `${side.role} rtt ${rtt}`);
  }
});

Deno.test("Heartbeat: a silent peer is closed after 3 x heartbeatMs, having been pinged", async () => {
  const heartbeatMs = 100;
  await using t = startServer({ heartbeatMs });
  const peer = await t.raw();
  // HELLO by hand, then nothing at all: no PONG to the server's PINGs.
  await peer.handshake();
  const messages: Message[] = await peer.rest();
  assert.equal(peer.ended, "eof");
  // The server PINGs after each heartbeat interval it sent nothing, and
  // gives up at 3 x heartbeatMs of silence: one or two PINGs, never a
  // third, then ERROR.
  const pings = messages.filter((m) => m.type === FrameType.PING);
  assert.ok(pings.length >= 1, "the server pinged the silent peer before giving up");
  assert.ok(pings.length <= 2, `${pings.length} PINGs: the sweep closed at 3 x heartbeatMs`);
  assert.deepEqual(messages.map((m) => m.type), [
    ...pings.map(() => FrameType.PING),
    FrameType.ERROR,
  ]);
  const error = messages.at(-1) as { type: number; code: number; message: string };
  assert.equal(error.code, Status.UNAVAILABLE);
  const silent = silentMs(error.message, heartbeatMs);
  assert.ok(silent >= 3 * heartbeatMs, `closed after ${silent} ms of silence, not early`);
  await t.until(() => t.server.sessionCount === 0, "the session removed from the manager");
  assert.equal(t.server.metrics.deadPeers, 1);
  assert.equal(t.server.metrics.closed, 1);
});

Deno.test("Heartbeat: a peer that answers PINGs but sends nothing else stays up", async () => {
  const heartbeatMs = 100;
  await using t = startServer({ heartbeatMs });
  const peer = await t.raw();
  await peer.handshake();
  // The server PINGs only after a heartbeat interval in which it sent
  // nothing, and PONGs do not count as sending: four PINGs span more than
  // 3 x heartbeatMs.
  for (let i = 0; i < 4; i++) {
    const ping = await peer.nextOf(FrameType.PING);
    await peer.send({
      type: FrameType.PONG,
      seq: ping.seq,
      payload: (ping as { payload: Uint8Array }).payload,
    });
  }
  // Still up after the last PONG: it answers a PING of ours.
  await peer.sync();
  assert.equal(t.server.sessionCount, 1);
  assert.equal(t.server.metrics.deadPeers, 0);
  const session = [...t.server.sessions()][0];
  assert.ok(session.stats.rttMs !== undefined, "the PONGs measured the round trip");
});

Deno.test("Heartbeat: a client session closes a silent server after 3 x heartbeatMs", async () => {
  // The client's own timer (openSession) applies the same rule to the server.
  const [a, b] = memoryPair();
  const reader = b.readable.getReader();
  const writer = b.writable.getWriter();
  const opening = openSession(a, { handler: quietHandler(), handshakeTimeoutMs: 30_000 });
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
  // Keep reading (so the client's PINGs are taken) but never answer.
  const draining = (async () => {
    while (!(await reader.read()).done) { /* drop */ }
  })().catch(() => {});
  await client.closed;
  assert.equal(client.closeReason?.code, Status.UNAVAILABLE);
  const silent = silentMs(client.closeReason!.message, 20);
  assert.ok(silent >= 60, `closed after ${silent} ms of silence, not early`);
  await draining;
  writer.releaseLock();
  await b.closed;
});

// --- PING flood ---------------------------------------------------------------

Deno.test("PING flood: beyond maxPingsPerSecond the peer is disconnected with resource_exhausted", async () => {
  await using t = startServer({ maxPingsPerSecond: 10 });
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
  await t.until(() => t.server.sessionCount === 1, "the flooder removed");
  assert.equal(serverSide(t.server, healthy).state, SessionState.ACTIVE);
});

Deno.test("PING flood: PINGs spread over time at a high rate are cut off too", async () => {
  await using t = startServer({ maxPingsPerSecond: 10 });
  const peer = await t.raw();
  await peer.handshake();
  // One PING per write, each sent once the previous one's PONG is back: a
  // rate of one per round trip, spread over as many reads.
  let sent = 0;
  let answer: Message | undefined;
  while (sent < 100) {
    await peer.send({ type: FrameType.PING, seq: ++sent, payload: new Uint8Array(0) });
    answer = await peer.next();
    if (answer?.type !== FrameType.PONG) break;
  }
  const error = answer as { type: number; code: number };
  assert.equal(error.type, FrameType.ERROR);
  assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
  assert.ok(sent < 100, `cut off after ${sent} PINGs`);
  assert.deepEqual(await peer.rest(), []);
  assert.equal(peer.ended, "eof");
  await t.until(() => t.server.sessionCount === 0, "the flooder removed");
});

Deno.test("PING flood: up to maxPingsPerSecond PINGs are all answered", async () => {
  await using t = startServer({ handler: echo, maxPingsPerSecond: 10 });
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
  // The session is still serving: a call after the PINGs gets its answer,
  // not an ERROR.
  await peer.send({ type: FrameType.REQUEST, seq: 1, method: "echo", params: Uint8Array.of(1) });
  const answer = await peer.next();
  assert.equal(answer?.type, FrameType.RESPONSE);
  assert.equal(answer.seq, 1);
  assert.equal(t.server.sessionCount, 1);
});

// --- kick -----------------------------------------------------------------------

for (const where of ["tcp", "memory"] as Where[]) {
  Deno.test(`kick over ${where}: sends ERROR aborted with the reason, closes, removes the session`, async () => {
    await using t = startServer({ where });
    let reason: StreamwireError | undefined;
    const client = await t.client({ handler: quietHandler({ close: (_, r) => reason = r }) });
    const other = await t.client();
    const server = serverSide(t.server, client);
    assert.equal(t.server.kick(client.id, "Banned for spamming"), true);
    await client.closed;
    assert.ok(reason instanceof StreamwireError);
    assert.equal(reason.code, Status.ABORTED);
    assert.equal(reason.message, "Banned for spamming");
    assert.equal(client.closeReason, reason);
    await server.closed;
    assert.equal(t.server.sessionCount, 1);
    assert.equal(t.server.session(client.id), undefined);
    assert.ok(t.server.session(other.id));
    assert.equal(t.server.kick(client.id), false, "kicking twice finds nobody");
    assert.equal(t.server.kick("no-such-id"), false);
  });
}

Deno.test("kick: a raw peer reads ERROR aborted with the default reason, then EOF", async () => {
  await using t = startServer();
  const peer = await t.raw();
  const ack = await peer.handshake();
  t.server.kick(ack.session as string);
  const messages = await peer.rest();
  assert.deepEqual(messages.map((m) => m.type), [FrameType.ERROR]);
  assert.equal((messages[0] as { code: number }).code, Status.ABORTED);
  assert.equal((messages[0] as { message: string }).message, "Kicked by the server");
  assert.equal(peer.ended, "eof");
});
