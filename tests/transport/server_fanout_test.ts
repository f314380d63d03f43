// Topics, broadcast, unicast and maxConnections.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import type { CodecName } from "../../codec/payload_codec.ts";
import type { Session } from "../../transport/mod.ts";
import { collector, serverSide, startServer, tap, type TestServer } from "./_helpers.ts";

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function bytes(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

interface Client {
  session: Session;
  server: Session;
  c: ReturnType<typeof collector>;
  /** Every frame the client session receives, PONGs included. */
  frames: ReturnType<typeof tap>;
  /** Methods and params of the BROADCASTs received so far, in order. */
  broadcasts(): string[];
}

async function clients(t: TestServer, n: number, codecs?: CodecName[]): Promise<Client[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const c = collector();
    const frames = tap();
    const session = await t.client({
      handler: c.handler,
      inbound: frames.stages,
      ...(codecs ? { codecs } : {}),
    });
    return {
      session,
      server: serverSide(t.server, session),
      c,
      frames,
      broadcasts: () =>
        c.messages.filter((m) => m.type === FrameType.BROADCAST).map((m) => {
          const call = m as Message & { method: string; params: Uint8Array };
          return `${call.method}:${text(call.params)}`;
        }),
    };
  }));
}

/** Broadcasts a marker to everyone and waits until all have it: what came before has arrived. */
async function settle(t: TestServer, all: Client[], label: string): Promise<void> {
  t.server.broadcast("marker", bytes(label));
  for (const client of all) {
    await client.c.until(() => client.broadcasts().includes(`marker:${label}`), `marker ${label}`);
  }
}

// --- topics -------------------------------------------------------------------

Deno.test("Topics: join, leave, members() and topics() track membership", async () => {
  await using t = startServer();
  const [a, b, c] = await clients(t, 3);
  const server = t.server;
  server.join(a.server, "red");
  server.join(b.server, "red");
  server.join(b.server, "blue");
  server.join(b.server, "blue"); // joining twice changes nothing
  assert.deepEqual(new Set(server.members("red")), new Set([a.server, b.server]));
  assert.deepEqual([...server.members("blue")], [b.server]);
  assert.deepEqual([...server.members("green")], []);
  assert.deepEqual(server.topics(), [{ topic: "red", members: 2 }, { topic: "blue", members: 1 }]);
  assert.deepEqual([...b.server.topics].sort(), ["blue", "red"]);

  assert.equal(server.leave(a.server, "red"), true);
  assert.equal(server.leave(a.server, "red"), false, "not a member any more");
  assert.equal(server.leave(c.server, "blue"), false, "never a member");
  assert.deepEqual([...server.members("red")], [b.server]);
  assert.equal(server.leave(b.server, "blue"), true);
  // A topic without members is gone.
  assert.deepEqual(server.topics(), [{ topic: "red", members: 1 }]);
});

Deno.test("Topics: maxTopicsPerSession is enforced with resource_exhausted", async () => {
  await using t = startServer({ maxTopicsPerSession: 2 });
  const [a] = await clients(t, 1);
  t.server.join(a.server, "one");
  t.server.join(a.server, "two");
  t.server.join(a.server, "two"); // already a member: not a new topic
  assert.throws(() => t.server.join(a.server, "three"), (error) => {
    assert.ok(error instanceof StreamwireError);
    assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
    assert.equal(error.message, "Session already in '2' topics");
    return true;
  });
  assert.deepEqual([...t.server.members("three")], []);
  t.server.leave(a.server, "one");
  t.server.join(a.server, "three");
  assert.deepEqual([...a.server.topics].sort(), ["three", "two"]);
});

Deno.test("Topics: names must be 1..256 characters", async () => {
  await using t = startServer();
  const [a] = await clients(t, 1);
  for (const bad of ["", "x".repeat(257), 42 as unknown as string]) {
    assert.throws(() => t.server.join(a.server, bad), { code: Status.INVALID_ARGUMENT });
  }
  t.server.join(a.server, "x".repeat(256));
  assert.equal(t.server.topics().length, 1);
});

Deno.test("Topics: a session leaves all its topics when it closes", async () => {
  await using t = startServer();
  const [a, b] = await clients(t, 2);
  t.server.join(a.server, "red");
  t.server.join(a.server, "blue");
  t.server.join(b.server, "red");
  await a.session.close();
  await a.server.closed;
  assert.equal(t.server.sessionCount, 1);
  assert.deepEqual([...t.server.members("red")], [b.server]);
  assert.deepEqual(t.server.topics(), [{ topic: "red", members: 1 }]);
  assert.equal(a.server.topics.size, 0);
  t.server.kick(b.session.id);
  await b.server.closed;
  assert.equal(t.server.sessionCount, 0);
  assert.deepEqual(t.server.topics(), []);
});

// --- broadcast and unicast ------------------------------------------------------

Deno.test("Broadcast to a topic reaches exactly its members", async () => {
  await using t = startServer();
  const all = await clients(t, 4);
  const [a, b, c, d] = all;
  t.server.join(a.server, "red");
  t.server.join(b.server, "red");
  t.server.join(c.server, "blue");
  const result = t.server.broadcast("red", bytes("hello red"), { topic: "red" });
  assert.deepEqual(result, { delivered: 2, dropped: 0 });
  await settle(t, all, "1");
  assert.deepEqual(a.broadcasts(), ["red:hello red", "marker:1"]);
  assert.deepEqual(b.broadcasts(), ["red:hello red", "marker:1"]);
  assert.deepEqual(c.broadcasts(), ["marker:1"]);
  assert.deepEqual(d.broadcasts(), ["marker:1"]);
  // A topic nobody joined reaches nobody.
  assert.deepEqual(t.server.broadcast("x", bytes("y"), { topic: "green" }), {
    delivered: 0,
    dropped: 0,
  });
  assert.equal(t.server.metrics.broadcasts, 3);
  assert.equal(t.server.metrics.broadcastDeliveries, 2 + 4);
});

Deno.test("Broadcast without a topic reaches every handshaken session, exclude leaves one out", async () => {
  await using t = startServer();
  const all = await clients(t, 4);
  const [a, b, c, d] = all;
  // A connection still handshaking gets nothing.
  const raw = await t.raw();
  await t.until(() => t.server.sessionCount === 5, "the raw connection accepted");
  t.server.join(b.server, "red");
  assert.deepEqual(t.server.broadcast("all", bytes("to all")), { delivered: 4, dropped: 0 });
  assert.deepEqual(t.server.broadcast("most", bytes("not a"), { exclude: a.server }), {
    delivered: 3,
    dropped: 0,
  });
  assert.deepEqual(
    t.server.broadcast("red", bytes("not b"), { topic: "red", exclude: b.server }),
    { delivered: 0, dropped: 0 },
  );
  await settle(t, all, "end");
  assert.deepEqual(a.broadcasts(), ["all:to all", "marker:end"]);
  for (const other of [b, c, d]) {
    assert.deepEqual(other.broadcasts(), ["all:to all", "most:not a", "marker:end"]);
  }
  // HELLO_ACK is the first frame it reads (handshake() checks), and no
  // broadcast follows it either: one would arrive before the PONG to a
  // PING sent now.
  await raw.handshake();
  const late = await raw.sync();
  assert.ok(
    !late.some((m) => m.type === FrameType.BROADCAST),
    "no broadcast to a handshaking peer",
  );
});

Deno.test("Broadcast queues the same bytes object to every session: encoded once", async () => {
  await using t = startServer();
  const all = await clients(t, 5);
  const seen: Uint8Array[] = [];
  for (const { server } of all) {
    const original = server.sendEncoded.bind(server);
    server.sendEncoded = (encoded: Uint8Array, frames?: number) => {
      seen.push(encoded);
      return original(encoded, frames);
    };
  }
  const payload = new Uint8Array(4000).fill(7);
  t.server.broadcast("big", payload);
  assert.equal(seen.length, 5);
  for (const encoded of seen) assert.equal(encoded, seen[0], "one shared Uint8Array, no copy");
  await settle(t, all, "done");
  for (const client of all) {
    const got = client.c.messages.find((m) => m.type === FrameType.BROADCAST) as {
      params: Uint8Array;
    };
    assert.deepEqual(got.params, payload);
  }
});

Deno.test("Broadcast encodes params once per codec in use", async () => {
  await using t = startServer();
  const json = await clients(t, 3, ["json"]);
  const raw = await clients(t, 2, ["raw"]);
  const calls: CodecName[] = [];
  const seen = new Map<string, Set<Uint8Array>>();
  for (const { server } of [...json, ...raw]) {
    const original = server.sendEncoded.bind(server);
    server.sendEncoded = (encoded: Uint8Array, frames?: number) => {
      const set = seen.get(server.codec) ?? new Set();
      seen.set(server.codec, set.add(encoded));
      return original(encoded, frames);
    };
  }
  const result = t.server.broadcast("news", (codec) => {
    calls.push(codec);
    return bytes(codec === "json" ? '"hi"' : "hi");
  });
  assert.deepEqual(result, { delivered: 5, dropped: 0 });
  assert.deepEqual(calls.sort(), ["json", "raw"]);
  assert.equal(seen.get("json")?.size, 1);
  assert.equal(seen.get("raw")?.size, 1);
  await settle(t, [...json, ...raw], "x");
  for (const client of json) assert.deepEqual(client.broadcasts()[0], 'news:"hi"');
  for (const client of raw) assert.deepEqual(client.broadcasts()[0], "news:hi");
});

Deno.test("Unicast reaches exactly one session", async () => {
  await using t = startServer();
  const all = await clients(t, 3);
  const [a, b, c] = all;
  const message = { type: FrameType.NOTIFY, seq: 0, method: "dm", params: bytes("psst") } as const;
  assert.equal(t.server.unicast(b.session.id, message), true);
  assert.equal(t.server.unicast("nobody", message), false);
  await settle(t, all, "u");
  for (const other of [a, c]) {
    assert.equal(other.c.messages.filter((m) => m.type === FrameType.NOTIFY).length, 0);
  }
  const got = b.c.messages.filter((m) => m.type === FrameType.NOTIFY) as {
    method: string;
    params: Uint8Array;
  }[];
  assert.deepEqual(got.map((m) => [m.method, text(m.params)]), [["dm", "psst"]]);
  // A closed session takes nothing.
  await b.session.close();
  await b.server.closed;
  assert.equal(t.server.sessionCount, 2);
  assert.equal(t.server.unicast(b.session.id, message), false);
});

// --- maxConnections -------------------------------------------------------------

Deno.test("maxConnections: the connection over the limit gets resource_exhausted, the others work", async () => {
  await using t = startServer({ maxConnections: 3 });
  const all = await clients(t, 3);
  const fourth = await t.raw();
  const messages = await fourth.rest();
  assert.equal(fourth.ended, "eof");
  assert.equal(messages.length, 1);
  const error = messages[0] as { type: number; code: number; message: string; seq: number };
  assert.equal(error.type, FrameType.ERROR);
  assert.equal(error.seq, 0);
  assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
  assert.equal(error.message, "Server full: maxConnections '3' reached");
  assert.equal(t.server.sessionCount, 3);
  assert.equal(t.server.metrics.rejected, 1);
  assert.equal(t.server.metrics.accepted, 3);
  // The three sessions still do round trips.
  for (const client of all) {
    const pong = client.frames.arrival(FrameType.PONG);
    client.session.ping();
    await pong;
    assert.equal(client.frames.messages.filter((m) => m.type === FrameType.ERROR).length, 0);
  }
  // Room again once one leaves.
  await all[0].session.close();
  await all[0].server.closed;
  assert.equal(t.server.sessionCount, 2);
  const again = await t.client();
  assert.equal(again.state, "active");
});

Deno.test("maxConnections counts connections still handshaking", async () => {
  await using t = startServer({ maxConnections: 2 });
  await t.raw();
  await t.raw();
  await t.until(() => t.server.sessionCount === 2, "two connections accepted");
  await assert.rejects(t.client(), { code: Status.RESOURCE_EXHAUSTED });
});
