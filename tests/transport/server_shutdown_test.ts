// Graceful shutdown (PROTOCOL.md 5): GOAWAY with lastId, in-flight calls
// finish and their answers arrive, then everything closes; newcomers are
// refused. And TLS end to end through Server and openSession.

import assert from "node:assert/strict";
import { selfSigned } from "./_tls.ts";
import { FrameType, Status } from "../../codec/constants.ts";
import type { GoawayMessage, Message } from "../../codec/message.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { connect, RpcServer } from "../../rpc/mod.ts";
import {
  dial,
  listen,
  memoryPair,
  openSession,
  Server,
  type Session,
  type SessionHandler,
} from "../../transport/mod.ts";
import {
  collector,
  guard,
  nextState,
  quietHandler,
  RawPeer,
  SAFETY_NET_MS,
  Signal,
  startServer,
  tap,
} from "./_helpers.ts";

/**
 * Holds each REQUEST until the test releases it, then answers with its
 * params; drains a session once none of its calls is held. The test, not a
 * timer, decides when a call finishes.
 */
function heldHandler(): SessionHandler & {
  inFlight: number;
  done: number[];
  release(seq: number): void;
  until(check: () => boolean, what: string): Promise<void>;
} {
  const held = new Map<number, () => void>();
  const waiters = new Map<Session, (() => void)[]>();
  const inFlight = new Map<Session, number>();
  const arrived = new Signal();
  const handler = {
    inFlight: 0,
    done: [] as number[],
    message(session: Session, m: Message) {
      if (m.type !== FrameType.REQUEST) return;
      inFlight.set(session, (inFlight.get(session) ?? 0) + 1);
      handler.inFlight++;
      held.set(m.seq, () => {
        session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        handler.done.push(m.seq);
        handler.inFlight--;
        const left = inFlight.get(session)! - 1;
        inFlight.set(session, left);
        if (left === 0) { for (const wake of waiters.get(session)?.splice(0) ?? []) wake(); }
      });
      arrived.notify();
    },
    drain(session: Session): Promise<void> {
      if (!inFlight.get(session)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const list = waiters.get(session) ?? [];
        waiters.set(session, [...list, resolve]);
      });
    },
    release(seq: number) {
      const answer = held.get(seq);
      assert.ok(answer, `call ${seq} is held`);
      held.delete(seq);
      answer();
    },
    until: (check: () => boolean, what: string) => arrived.until(check, what),
  };
  return handler;
}

function request(seq: number): Message {
  return {
    type: FrameType.REQUEST,
    seq,
    method: "work",
    params: new TextEncoder().encode(`${seq}`),
  };
}

Deno.test("Shutdown sends GOAWAY(unavailable, lastId), lets in-flight calls answer, then closes", async () => {
  const handler = heldHandler();
  await using t = startServer({ handler });
  // What the client sees, in order: GOAWAY reaches the handler's goaway().
  const seen: (Message | GoawayMessage)[] = [];
  const arrived = new Signal();
  const client = await t.client({
    handler: {
      message(_, message) {
        seen.push(message);
        arrived.notify();
      },
      goaway(_, message) {
        seen.push(message);
        arrived.notify();
      },
    },
  });
  const otherGoaway = Promise.withResolvers<GoawayMessage>();
  const idle = await t.client({
    handler: quietHandler({ goaway: (_, message) => otherGoaway.resolve(message) }),
  });
  client.send(request(1));
  client.send(request(3));
  await handler.until(() => handler.inFlight === 2, "both calls in flight");

  let shutDown = false;
  const shutdown = t.server.shutdown().then(() => void (shutDown = true));
  assert.equal(t.server.accepting, false);

  // Every session hears GOAWAY first, with the highest call id it opened.
  await arrived.until(() => seen.length === 1, "GOAWAY");
  const goaway = seen[0] as GoawayMessage;
  assert.equal(goaway.type, FrameType.GOAWAY);
  assert.equal(goaway.code, Status.UNAVAILABLE);
  assert.equal(goaway.lastId, 3);
  assert.equal(goaway.reason, "Server shutting down");
  assert.equal((await guard(otherGoaway.promise, "GOAWAY to the idle session")).lastId, 0);

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

  // The in-flight calls finish in their own time, and their answers arrive.
  handler.release(3);
  await arrived.until(() => seen.length === 2, "the answer to call 3");
  // Call 1 is still held, so the session cannot have drained yet.
  assert.equal(shutDown, false, "shutdown waits for the call still in flight");
  handler.release(1);
  await shutdown;
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
  const handler = heldHandler();
  await using t = startServer({ handler });
  const c = collector();
  const client = await t.client({ handler: c.handler });
  client.send(request(1));
  await handler.until(() => handler.inFlight === 1, "the call in flight");
  const start = Date.now();
  await t.server.shutdown({ deadlineMs: 50 });
  const elapsed = Date.now() - start;
  // The call never finished: shutdown gave up on it at the deadline (a
  // lower bound only; a busy machine may take longer).
  assert.equal(handler.inFlight, 1);
  assert.ok(elapsed >= 45, `closed after ${elapsed} ms, not before the deadline`);
  await client.closed;
  assert.equal(c.messages.some((m) => m.type === FrameType.RESPONSE), false);
  assert.equal(t.server.sessionCount, 0);
  handler.release(1); // too late: the session is closed and sends nothing
});

Deno.test("Shutdown closes connections still handshaking without waiting", async () => {
  await using t = startServer();
  const peer = await t.raw();
  await t.until(() => t.server.sessionCount === 1, "the connection accepted");
  await t.server.shutdown();
  assert.deepEqual(await peer.rest(), []);
  assert.equal(peer.ended, "eof");
  assert.equal(t.server.sessionCount, 0);
});

Deno.test("Shutdown of an RpcServer finishes an in-flight demo sleep and delivers its result", async () => {
  const frames = tap();
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    inbound: frames.stages,
  });
  const addr = server.listen({ port: 0 });
  const client = await connect(addr, { reconnect: false });
  const [session] = server.transport.sessions();
  const received = frames.arrival(FrameType.REQUEST);
  const slow = client.call("sleep", 150);
  await received;
  // Shutdown starts in the same turn of the event loop as the call was
  // read, so the sleep is in flight however slow the machine is.
  const disconnecting = nextState(session, "disconnecting");
  const shutdown = server.shutdown();
  await disconnecting;
  assert.ok(session.lastPeerCallId > 0, "the call was received");
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
    const server = new Server({ handler: echo });
    const listener = listen({ transport: "tls", port: 0, certFile, keyFile });
    const serving = server.serve(listener);
    const conn = await dial({
      transport: "tls",
      hostname: "localhost",
      port: Number(new URL(listener.addr).port),
      caCerts: [await Deno.readTextFile(certFile)],
    });
    const c = collector();
    const frames = tap();
    const client = await openSession(conn, {
      handler: c.handler,
      inbound: frames.stages,
      handshakeTimeoutMs: SAFETY_NET_MS,
    });
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
    const pong = frames.arrival(FrameType.PONG);
    client.ping();
    await pong;
    assert.ok(client.stats.rttMs !== undefined, "rtt over TLS");
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
    // The TLS listener hands the connection over before its TLS handshake,
    // so a session starts and closes when the handshake fails.
    const closed = Promise.withResolvers<void>();
    const server = new Server({ handler: quietHandler({ close: () => closed.resolve() }) });
    const listener = listen({ transport: "tls", port: 0, certFile, keyFile });
    const serving = server.serve(listener);
    const conn = await dial({ port: Number(new URL(listener.addr).port) });
    await assert.rejects(
      openSession(conn, { handler: quietHandler(), handshakeTimeoutMs: SAFETY_NET_MS }),
    );
    await guard(closed.promise, "the server closing the session");
    assert.equal(server.sessionCount, 0);
    assert.equal(server.metrics.accepted, 1);
    await server.shutdown();
    await serving;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
