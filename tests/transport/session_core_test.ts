// The session core frame by frame: what shares a read with the handshake or
// a connection ERROR, the outbound bound at send() time, and the limits the
// handshake negotiated (PROTOCOL.md 1.3, 3.1, 4, 5).

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { Flag, FrameType, Status } from "../../codec/constants.ts";
import type { StreamwireError } from "../../codec/error.ts";
import { encodeFrames } from "../../codec/frame_encoder_stream.ts";
import { encodeMessage, type Message } from "../../codec/message.ts";
import { dial, listen, openSession, Server, type Session } from "../../transport/mod.ts";
import { encode, helloBytes, quietHandler, startServer, waitFor } from "./_helpers.ts";

const text = new TextEncoder();

Deno.test("Session: a NOTIFY the server sends in open() reaches the client with the handshake", async () => {
  await using t = startServer({
    handler: quietHandler({
      open(session) {
        session.send({
          type: FrameType.NOTIFY,
          seq: 0,
          method: "welcome",
          params: text.encode('"hi"'),
        });
      },
    }),
  });
  const seen: Message[] = [];
  const client = await t.client({ handler: { message: (_s, m) => void seen.push(m) } });
  await waitFor(() => seen.length === 1, "the NOTIFY arrived");
  assert.equal(seen[0].type, FrameType.NOTIFY);
  assert.equal(client.state, "active");
});

Deno.test("Session: 40 clients connect while every open() broadcasts to all sessions", async () => {
  // Each HELLO_ACK is written together with a BROADCAST to the newcomer: the
  // client must take the BROADCAST as the first frame after the handshake.
  const payload = text.encode('"tick"');
  const server: Server = new Server({
    handler: quietHandler({ open: () => void server.broadcast("tick", payload) }),
  });
  const listener = listen({ port: 0 });
  const serving = server.serve(listener);
  const received = new Map<Session, number>();
  const clients: Session[] = [];
  for (let i = 0; i < 40; i++) {
    const client = await openSession(await dial(listener.addr), {
      handler: {
        message: (s, m) => {
          if (m.type === FrameType.BROADCAST) received.set(s, (received.get(s) ?? 0) + 1);
        },
      },
    });
    clients.push(client);
  }
  assert.equal(clients.length, 40);
  await waitFor(() => clients.every((c) => (received.get(c) ?? 0) >= 1), "each got its BROADCAST");
  await Promise.all(clients.map((c) => c.close()));
  await server.shutdown({ deadlineMs: 0 });
  await serving;
});

Deno.test("Session: answers read together with a connection ERROR are delivered first", async () => {
  // The server answers five calls and is kicked in the same turn: five
  // RESPONSEs and the ERROR share one write, and the client gets all five.
  const answered: number[] = [];
  let kicked: StreamwireError | undefined;
  await using t = startServer({
    handler: {
      message(session, m) {
        if (m.type !== FrameType.REQUEST) return;
        session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        if (m.seq === 9) t.server.kick(session.id, "Kicked after five answers");
      },
    },
  });
  const client = await t.client({
    handler: {
      message: (_s, m) => void (m.type === FrameType.RESPONSE && answered.push(m.seq)),
      close: (_s, reason) => void (kicked = reason),
    },
  });
  for (const seq of [1, 3, 5, 7, 9]) {
    client.send({ type: FrameType.REQUEST, seq, method: "echo", params: Uint8Array.of(seq) });
  }
  await client.closed;
  assert.deepEqual(answered, [1, 3, 5, 7, 9]);
  assert.equal(kicked?.code, Status.ABORTED);
});

Deno.test("Session: send() refuses past maxQueueBytes and the server stops reading calls", async () => {
  const maxQueueBytes = 1 << 20;
  const size = 256 * 1024;
  let most = 0;
  let full!: () => void;
  const filled = new Promise<void>((resolve) => (full = resolve));
  await using t = startServer({
    maxQueueBytes,
    handler: {
      async message(session, m) {
        if (m.type !== FrameType.REQUEST) return;
        const response = { type: FrameType.RESPONSE, seq: m.seq, data: m.params } as const;
        if (!session.send(response)) {
          // Refused: no room under the bound. Wait for it.
          full();
          await session.write(response);
        }
        most = Math.max(most, session.queuedBytes);
      },
    },
  });
  const peer = await t.raw();
  await peer.handshake();
  // 32 MiB of requests from a peer that reads nothing until the server's
  // queue is full (the kernel's socket buffers take the first few MiB).
  const total = 128;
  const writing = (async () => {
    for (let i = 0; i < total; i++) {
      const params = new Uint8Array(size).fill(i);
      await peer.send({ type: FrameType.REQUEST, seq: 2 * i + 1, method: "echo", params });
    }
  })();
  await filled;
  // Now the peer reads: every request is answered, and the bound held throughout.
  const seqs: number[] = [];
  while (seqs.length < total) {
    const m = await peer.next(30_000);
    if (m?.type === FrameType.RESPONSE) seqs.push(m.seq);
  }
  await writing;
  assert.equal(seqs.length, total);
  assert.ok(most <= maxQueueBytes, `the queue peaked at ${most} bytes`);
});

Deno.test("Session: a frame over the negotiated maxFrame is refused with resource_exhausted", async () => {
  await using t = startServer({ maxFrame: 65536 });
  const peer = await t.raw();
  const ack = await peer.handshake();
  assert.equal(ack.maxFrame, 65536);
  const params = new Uint8Array(65537 - 10);
  await peer.send({ type: FrameType.REQUEST, seq: 1, method: "echo", params });
  const rest = await peer.rest();
  const error = rest.find((m) => m.type === FrameType.ERROR) as
    | (Message & { code: number; message: string })
    | undefined;
  assert.equal(error?.code, Status.RESOURCE_EXHAUSTED);
  assert.match(error!.message, /maxFrame '65536'/);
});

Deno.test("Session: send() throws for a frame over the negotiated maxFrame", async () => {
  await using t = startServer({ maxFrame: 65536 });
  const client = await t.client();
  assert.equal(client.settings?.maxFrame, 65536);
  assert.throws(
    () =>
      client.send({
        type: FrameType.REQUEST,
        seq: 1,
        method: "echo",
        params: new Uint8Array(65536),
      }),
    { codeName: "resource_exhausted" },
  );
});

Deno.test("Session: compression the handshake did not agree is refused with unimplemented", async () => {
  await using t = startServer();
  const peer = await t.raw();
  const ack = await peer.handshake({ compression: [] });
  assert.deepEqual(ack.compression, []);
  const frame = encodeMessage({
    type: FrameType.REQUEST,
    seq: 1,
    method: "echo",
    params: new Uint8Array(0),
  });
  const packed = { ...frame, flags: frame.flags | 1, body: deflateSync(frame.body) };
  await peer.write(encodeFrames([packed]));
  const rest = await peer.rest();
  const error = rest.find((m) => m.type === FrameType.ERROR) as { code: number } | undefined;
  assert.equal(error?.code, Status.UNIMPLEMENTED);
  assert.equal(packed.flags & Flag.COMPRESSION_MASK, 1);
});

Deno.test("Session: a call id of the wrong parity is answered invalid_argument; the session goes on", async () => {
  const seen: number[] = [];
  await using t = startServer({
    handler: {
      message(session, m) {
        if (m.type !== FrameType.REQUEST) return;
        seen.push(m.seq);
        session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
      },
    },
  });
  const peer = await t.raw();
  await peer.handshake();
  await peer.write(encode(
    { type: FrameType.REQUEST, seq: 2, method: "echo", params: Uint8Array.of(2) },
    { type: FrameType.REQUEST, seq: 3, method: "echo", params: Uint8Array.of(3) },
  ));
  const error = await peer.nextOf(FrameType.ERROR) as Message & { code: number };
  assert.equal(error.seq, 2);
  assert.equal(error.code, Status.INVALID_ARGUMENT);
  const response = await peer.nextOf(FrameType.RESPONSE);
  assert.equal(response.seq, 3);
  assert.deepEqual(seen, [3]);
});

Deno.test("Session: a server HELLO before the handshake limit is refused at 64 KiB", async () => {
  await using t = startServer();
  const peer = await t.raw();
  await peer.write(helloBytes({}, { agent: "x".repeat(70_000) }));
  const rest = await peer.rest();
  const error = rest.find((m) => m.type === FrameType.ERROR) as { code: number } | undefined;
  assert.equal(error?.code, Status.RESOURCE_EXHAUSTED);
});

Deno.test("Session: after a failed write, a GOAWAY the peer sent before closing is still read", async () => {
  // The server acknowledges, sends a NOTIFY and a GOAWAY, and closes. The
  // client holds its reading on the NOTIFY until its own writes have failed;
  // the GOAWAY behind it must still reach the handler (PROTOCOL.md 5).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(4096);
    await conn.read(buffer); // HELLO
    await conn.write(encode(
      {
        type: FrameType.HELLO_ACK,
        seq: 0,
        ack: { version: 1, session: "s1", codec: "json", compression: [], window: 8 },
      },
      { type: FrameType.NOTIFY, seq: 0, method: "hold", params: new Uint8Array(0) },
      { type: FrameType.GOAWAY, seq: 0, code: Status.UNAVAILABLE, lastId: 0, reason: "bye" },
    ));
    conn.close();
  })();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const goaways: number[] = [];
  const client = await openSession(await dial(`tcp://127.0.0.1:${listener.addr.port}`), {
    handler: {
      message: (_s, m) => (m.type === FrameType.NOTIFY ? held : undefined),
      goaway: (_s, m) => void goaways.push(m.lastId),
    },
  });
  await serving;
  listener.close();
  // Write until the connection refuses: the server is gone.
  let seq = 1;
  while (client.send({ type: FrameType.REQUEST, seq, method: "x", params: new Uint8Array(1024) })) {
    seq += 2;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(goaways.length, 0, "the GOAWAY was not read yet");
  release();
  await client.closed;
  assert.deepEqual(goaways, [0]);
  assert.equal(client.peerGoaway?.reason, "bye");
});

Deno.test("Server: a broadcast larger than a session's maxFrame skips that session only", async () => {
  await using t = startServer();
  const seen: number[] = [];
  const small = await t.client({
    maxFrame: 4096,
    handler: { message: (_s, m) => void (m.type === FrameType.BROADCAST && seen.push(4096)) },
  });
  const large = await t.client({
    handler: { message: (_s, m) => void (m.type === FrameType.BROADCAST && seen.push(0)) },
  });
  assert.equal(small.settings?.maxFrame, 4096);
  // Random bytes: compression cannot bring the frame under 4 KiB.
  const result = t.server.broadcast("big", crypto.getRandomValues(new Uint8Array(8192)));
  assert.deepEqual(result, { delivered: 1, dropped: 0 });
  // The small session stays open and gets a later broadcast that fits.
  t.server.broadcast("small", new Uint8Array(16));
  await waitFor(() => seen.length === 3, "three broadcasts arrived");
  // The large session got both, the small one only the one that fits.
  assert.deepEqual(seen.toSorted(), [0, 0, 4096]);
  assert.equal(small.state, "active");
  assert.equal(large.state, "active");
});

Deno.test("Session: send() refuses a message that cannot be encoded, where it enters", async () => {
  await using t = startServer();
  const client = await t.client();
  assert.throws(
    () => client.send({ type: FrameType.REQUEST, seq: 1, method: "", params: new Uint8Array(0) }),
    { codeName: "invalid_argument" },
  );
  assert.throws(
    () => client.send({ type: FrameType.PING, seq: 0, payload: new Uint8Array(65) }),
    { codeName: "invalid_argument" },
  );
  assert.equal(client.queuedFrames, 0, "nothing was queued");
  assert.equal(client.state, "active");
});

Deno.test("Session: an outbound stage that throws closes the session with internal instead of dropping the message", async () => {
  await using t = startServer();
  let armed = false;
  const client = await t.client({
    outbound: {
      messages: [{
        transform(message: Message, controller: TransformStreamDefaultController<Message>) {
          if (armed) throw new Error("stage broke");
          controller.enqueue(message);
        },
      }],
    },
  });
  armed = true;
  client.send({ type: FrameType.REQUEST, seq: 1, method: "echo", params: new Uint8Array(0) });
  await client.closed;
  assert.equal(client.closeReason?.code, Status.INTERNAL);
  assert.match(client.closeReason!.message, /stage broke/);
});
