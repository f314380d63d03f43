// Graceful shutdown (PROTOCOL.md 5): GOAWAY with lastId, in-flight calls
// finish and their answers arrive, then everything closes; newcomers are
// refused. And TLS end to end through Server and openSession.

import assert from "node:assert/strict";
import { selfSigned } from "./_tls.ts";
import { FrameType, Status } from "../../codec/constants.ts";
import type { GoawayMessage, Message } from "../../codec/message.ts";
import { connect, demoMethods, RpcServer } from "../../rpc/mod.ts";
import {
  dial,
  listen,
  memoryPair,
  openSession,
  Server,
  type Session,
  type SessionHandler,
} from "../../transport/mod.ts";
import { collector, delay, quietHandler, RawPeer, startServer, waitFor } from "./_helpers.ts";

/**
 * Answers each REQUEST after the number of ms its params give (a JSON
 * number), and drains once nothing is in flight.
 */
function slowHandler(): SessionHandler & { inFlight: number; done: number[] } {
  const waiters = new Map<Session, (() => void)[]>();
  const inFlight = new Map<Session, number>();
  const handler = {
    inFlight: 0,
    done: [] as number[],
    message(session: Session, m: Message) {
      if (m.type !== FrameType.REQUEST) return;
      const ms = JSON.parse(new TextDecoder().decode(m.params));
      inFlight.set(session, (inFlight.get(session) ?? 0) + 1);
      handler.inFlight++;
      setTimeout(() => {
        session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        handler.done.push(m.seq);
        handler.inFlight--;
        const left = inFlight.get(session)! - 1;
        inFlight.set(session, left);
        if (left === 0) { for (const wake of waiters.get(session)?.splice(0) ?? []) wake(); }
      }, ms);
    },
    drain(session: Session): Promise<void> {
      if (!inFlight.get(session)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const list = waiters.get(session) ?? [];
        waiters.set(session, [...list, resolve]);
      });
    },
  };
  return handler;
}

function request(seq: number, ms: number): Message {
  return {
    type: FrameType.REQUEST,
    seq,
    method: "sleep",
    params: new TextEncoder().encode(`${ms}`),
  };
}

Deno.test("Shutdown sends GOAWAY(unavailable, lastId), lets in-flight calls answer, then closes", async () => {
  const handler = slowHandler();
  await using t = startServer({ handler, heartbeatMs: 50, handshakeTimeoutMs: 200 });
  // What the client sees, in order: GOAWAY reaches the handler's goaway().
  const seen: (Message | GoawayMessage)[] = [];
  const goaways: GoawayMessage[] = [];
  const client = await t.client({
    handler: {
      message: (_, message) => void seen.push(message),
      goaway: (_, message) => {
        seen.push(message);
        goaways.push(message);
      },
    },
  });
  const otherGoaways: GoawayMessage[] = [];
  const idle = await t.client({
    handler: quietHandler({ goaway: (_, message) => void otherGoaways.push(message) }),
  });
  client.send(request(1, 150));
  client.send(request(3, 100));
  await waitFor(() => handler.inFlight === 2, "calls in flight");

  const start = Date.now();
  const shutdown = t.server.shutdown();
  assert.equal(t.server.accepting, false);

  // Every session hears GOAWAY first, with the highest call id it opened.
  await waitFor(() => goaways.length === 1, "GOAWAY");
  assert.equal(goaways[0].code, Status.UNAVAILABLE);
  assert.equal(goaways[0].lastId, 3);
  assert.equal(goaways[0].reason, "Server shutting down");
  await waitFor(() => otherGoaways.length === 1, "GOAWAY to the idle session");
  assert.equal(otherGoaways[0].lastId, 0);

  // Newcomers are refused meanwhile: the listener is closed…
  await assert.rejects(dial(t.addr), { code: Status.UNAVAILABLE });
  // …and a connection handed over directly gets ERROR unavailable.
  const [a, b] = memoryPair();
  assert.equal(t.server.accept(a), undefined);
  const refused = new RawPeer(b);
  const [error] = await refused.rest();
  assert.equal((error as { code: number }).code, Status.UNAVAILABLE);
  assert.equal((error as { message: string }).message, "Server is shutting down");
  await b.closed;

  await shutdown;
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 140, `shutdown waited for the slow call (${elapsed} ms)`);
  assert.deepEqual(handler.done, [3, 1]);
  await client.closed;
  await idle.closed;
  // Both answers arrived, after GOAWAY, before the close.
  const order = seen
    .filter((m) => m.type === FrameType.RESPONSE || m.type === FrameType.GOAWAY)
    .map((m) => m.type === FrameType.GOAWAY ? "goaway" : m.seq);
  assert.deepEqual(order, ["goaway", 3, 1]);
  assert.equal(t.server.sessionCount, 0);
  assert.equal(t.server.metrics.rejected, 1);
});

Deno.test("Shutdown stops waiting for a call that outlives deadlineMs", async () => {
  const handler = slowHandler();
  await using t = startServer({ handler, heartbeatMs: 50, handshakeTimeoutMs: 200 });
  const c = collector();
  const client = await t.client({ handler: c.handler });
  client.send(request(1, 400));
  await waitFor(() => handler.inFlight === 1, "call in flight");
  const start = Date.now();
  await t.server.shutdown({ deadlineMs: 50 });
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 45 && elapsed < 300, `closed after ${elapsed} ms`);
  await client.closed;
  assert.equal(c.messages.some((m) => m.type === FrameType.RESPONSE), false);
  assert.equal(t.server.sessionCount, 0);
  await delay(400); // let the abandoned timer run out within the test
});

Deno.test("Shutdown closes connections still handshaking without waiting", async () => {
  await using t = startServer({ heartbeatMs: 50, handshakeTimeoutMs: 5000 });
  const peer = await t.raw();
  await waitFor(() => t.server.sessionCount === 1, "accepted");
  await t.server.shutdown();
  assert.deepEqual(await peer.rest(), []);
  assert.equal(peer.ended, "eof");
  assert.equal(t.server.sessionCount, 0);
});

Deno.test("Shutdown of an RpcServer finishes an in-flight demo sleep and delivers its result", async () => {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    heartbeatMs: 50,
    handshakeTimeoutMs: 200,
  });
  const addr = server.listen({ port: 0 });
  const client = await connect(addr, { reconnect: false });
  const session = [...server.transport.sessions()][0];
  const slow = client.call("sleep", 150);
  await waitFor(() => session.lastPeerCallId > 0, "call received");
  const shutdown = server.shutdown();
  await waitFor(() => session.goawayLastId !== undefined, "GOAWAY sent");
  assert.equal(session.goawayLastId, session.lastPeerCallId);
  assert.equal(await slow, true);
  await shutdown;
  assert.equal(server.transport.sessionCount, 0);
  await client.close();
});

// --- TLS ------------------------------------------------------------------------

Deno.test("TLS: Server and openSession handshake and round trip over a self-signed certificate", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certFile, keyFile } = await selfSigned(dir);
    const echo: SessionHandler = {
      message(session, m) {
        if (m.type === FrameType.REQUEST) {
          session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        }
      },
    };
    const server = new Server({ handler: echo, heartbeatMs: 50, handshakeTimeoutMs: 500 });
    const listener = listen({ transport: "tls", port: 0, certFile, keyFile });
    const serving = server.serve(listener);
    const conn = await dial({
      transport: "tls",
      hostname: "localhost",
      port: Number(new URL(listener.addr).port),
      caCerts: [await Deno.readTextFile(certFile)],
    });
    const c = collector();
    const client = await openSession(conn, { handler: c.handler, handshakeTimeoutMs: 1000 });
    assert.equal(client.conn.transport, "tls");
    const serverSession = server.session(client.id)!;
    assert.equal(serverSession.conn.transport, "tls");
    assert.match(serverSession.remoteAddr, /^tls:\/\/127\.0\.0\.1:\d+$/);
    // Large enough to be compressed and to span TLS records.
    const params = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
    client.send({ type: FrameType.REQUEST, seq: 1, method: "echo", params });
    const response = await c.next(FrameType.RESPONSE) as { seq: number; data: Uint8Array };
    assert.equal(response.seq, 1);
    assert.deepEqual(response.data, params);
    // Heartbeats over TLS too.
    client.ping();
    await waitFor(() => client.stats.rttMs !== undefined, "rtt over TLS");
    await client.close();
    await server.shutdown();
    await serving;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS: a plain TCP client on a TLS server is closed without a session", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certFile, keyFile } = await selfSigned(dir);
    const server = new Server({
      handler: quietHandler(),
      heartbeatMs: 50,
      handshakeTimeoutMs: 150,
    });
    const listener = listen({ transport: "tls", port: 0, certFile, keyFile });
    const serving = server.serve(listener);
    const conn = await dial({ port: Number(new URL(listener.addr).port) });
    await assert.rejects(
      openSession(conn, { handler: quietHandler(), handshakeTimeoutMs: 1000 }),
    );
    await waitFor(() => server.sessionCount === 0, "no session left");
    await server.shutdown();
    await serving;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
