// The session core frame by frame: what shares a read with the handshake or
// a connection ERROR, the outbound bound at send() time, and the limits the
// handshake negotiated (PROTOCOL.md 1.3, 3.1, 4, 5).

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { Flag, FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
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
  let server!: Server;
  const payload = text.encode('"tick"');
  server = new Server({
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
  let requests = 0;
  let wake: (() => void) | undefined;
  await using t = startServer({
    maxQueueBytes,
    handler: {
      async message(session, m) {
        if (m.type !== FrameType.REQUEST) return;
        requests++;
        wake?.();
        await session.write({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
        most = Math.max(most, session.queuedBytes);
      },
    },
  });
  const peer = await t.raw();
  await peer.handshake();
  const total = 64; // 16 MiB of requests from a peer that reads nothing yet
  const writing = (async () => {
    for (let i = 0; i < total; i++) {
      const params = new Uint8Array(size).fill(i);
      await peer.send({ type: FrameType.REQUEST, seq: 2 * i + 1, method: "echo", params });
    }
  })();
  // The server takes a few requests, fills its queue and stops reading.
  await new Promise<void>((resolve) => {
    wake = () => requests >= 5 && resolve();
    wake();
  });
  const server = t.server.sessions().next().value as Session;
  assert.ok(!server.writable, "the queue is full");
  assert.ok(server.queuedBytes <= maxQueueBytes + size + 64, `queued ${server.queuedBytes}`);
  // Now the peer reads: every request is answered, and the bound held throughout.
  const seqs: number[] = [];
  while (seqs.length < total) {
    const m = await peer.next(10_000);
    if (m?.type === FrameType.RESPONSE) seqs.push(m.seq);
  }
  await writing;
  assert.equal(seqs.length, total);
  assert.ok(most <= maxQueueBytes + size + 64, `the queue peaked at ${most} bytes`);
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
