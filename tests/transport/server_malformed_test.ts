// Malformed input and clients that vanish: the offender gets ERROR and is
// closed, the server forgets it and leaks nothing, other sessions carry on
// (PROTOCOL.md 1.3).

import assert from "node:assert/strict";
import { FrameType, HEADER_SIZE, Status } from "../../codec/constants.ts";
import type { Message } from "../../codec/message.ts";
import type { Session, SessionHandler } from "../../transport/mod.ts";
import {
  collector,
  encode,
  helloBytes,
  nextMacrotask,
  openFds,
  type RawPeer,
  startServer,
  type TestServer,
  waitFor,
} from "./_helpers.ts";

/** Answers every REQUEST with a RESPONSE carrying its params. */
const echo: SessionHandler = {
  message(session, m) {
    if (m.type === FrameType.REQUEST) {
      session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
    }
  },
};

const OPTIONS = { handler: echo, maxFrame: 4096 };

/** A REQUEST/RESPONSE round trip on a client session whose handler is `c`. */
async function roundTrip(
  client: Session,
  c: ReturnType<typeof collector>,
  seq: number,
): Promise<void> {
  const params = new TextEncoder().encode(`call ${seq}`);
  client.send({ type: FrameType.REQUEST, seq, method: "echo", params });
  const response = await c.next(FrameType.RESPONSE);
  assert.equal(response.seq, seq);
  assert.deepEqual((response as { data: Uint8Array }).data, params);
}

async function expectError(t: TestServer, peer: RawPeer, code: number): Promise<string> {
  const messages = await peer.rest();
  const errors = messages.filter((m) => m.type === FrameType.ERROR) as (Message & {
    code: number;
    message: string;
  })[];
  assert.equal(errors.length, 1, `one ERROR in ${JSON.stringify(messages)}`);
  assert.equal(errors[0].seq, 0);
  assert.equal(errors[0].code, code, errors[0].message);
  await t.until(() => t.server.sessionCount === 1, "only the healthy session left");
  return errors[0].message;
}

function pingBytes(): Uint8Array {
  return encode({ type: FrameType.PING, seq: 3, payload: Uint8Array.of(1, 2, 3, 4) });
}

const GARBAGE: { name: string; code: number; bytes: () => Uint8Array; message: RegExp }[] = [
  {
    name: "bad magic gets invalid_argument",
    code: Status.INVALID_ARGUMENT,
    bytes: () => new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    message: /^Bad magic '0x4745', expected '0xcafe'$/,
  },
  {
    name: "a checksum mismatch gets data_loss",
    code: Status.DATA_LOSS,
    bytes: () => {
      const bytes = pingBytes();
      bytes[HEADER_SIZE + 1] ^= 0xff;
      return bytes;
    },
    message: /checksum|CRC/i,
  },
  {
    name: "a frame over maxFrame gets resource_exhausted",
    code: Status.RESOURCE_EXHAUSTED,
    bytes: () => {
      // Only the header: the length is refused before the body is awaited.
      const bytes = pingBytes().slice(0, HEADER_SIZE);
      new DataView(bytes.buffer).setUint32(5, 4097);
      return bytes;
    },
    message: /^Frame length '4097' exceeds maxFrame '4096'$/,
  },
  {
    name: "an unknown frame type gets unimplemented",
    code: Status.UNIMPLEMENTED,
    bytes: () => {
      const bytes = pingBytes();
      bytes[4] = 0x77;
      return bytes;
    },
    message: /^Unknown frame type '0x77'$/,
  },
  {
    name: "a bad frame version gets unimplemented",
    code: Status.UNIMPLEMENTED,
    bytes: () => {
      const bytes = pingBytes();
      bytes[2] = 9;
      return bytes;
    },
    message: /^Unsupported protocol version '9'/,
  },
];

for (const { name, code, bytes, message } of GARBAGE) {
  for (const when of ["after", "before"]) {
    Deno.test(`Server malformed input ${when} the handshake: ${name}; other sessions unaffected`, async () => {
      await using t = startServer(OPTIONS);
      const c = collector();
      const healthy = await t.client({ handler: c.handler });
      await roundTrip(healthy, c, 1);
      const peer = await t.raw();
      if (when === "after") await peer.handshake();
      await peer.write(bytes());
      assert.match(await expectError(t, peer, code), message);
      assert.equal(peer.ended, "eof");
      // The other session still works, and lost nothing.
      await roundTrip(healthy, c, 3);
      assert.equal(healthy.state === "active" || healthy.state === "idle", true);
      assert.equal(t.server.metrics.handshakeFailures, when === "before" ? 1 : 0);
    });
  }
}

Deno.test("Server answers the frames before garbage in the same read, then sends ERROR and closes", async () => {
  await using t = startServer(OPTIONS);
  const peer = await t.raw();
  await peer.handshake();
  // One write: three requests, then garbage. The frames before the garbage
  // in the same read are still handled, and their answers go out first.
  const requests = [1, 3, 5].map((seq) =>
    encode({ type: FrameType.REQUEST, seq, method: "echo", params: Uint8Array.of(seq) })
  );
  await peer.write(
    new Uint8Array([...requests.flatMap((r) => [...r]), 0xde, 0xad, ...new Uint8Array(20)]),
  );
  const messages = await peer.rest();
  assert.deepEqual(
    messages.map((m) => [m.type, m.seq]),
    [[FrameType.RESPONSE, 1], [FrameType.RESPONSE, 3], [FrameType.RESPONSE, 5], [
      FrameType.ERROR,
      0,
    ]],
  );
  assert.equal((messages[3] as { code: number }).code, Status.INVALID_ARGUMENT);
  assert.equal(peer.ended, "eof");
  await t.until(() => t.server.sessionCount === 0, "the session removed");
});

Deno.test("Server handles the frames before a checksum mismatch in the same read", async () => {
  await using t = startServer(OPTIONS);
  const peer = await t.raw();
  await peer.handshake();
  const good = encode({
    type: FrameType.REQUEST,
    seq: 1,
    method: "echo",
    params: Uint8Array.of(1),
  });
  const bad = encode({ type: FrameType.REQUEST, seq: 3, method: "echo", params: Uint8Array.of(3) });
  bad[bad.length - 1] ^= 0xff;
  const after = encode({
    type: FrameType.REQUEST,
    seq: 5,
    method: "echo",
    params: Uint8Array.of(5),
  });
  await peer.write(new Uint8Array([...good, ...bad, ...after]));
  const messages = await peer.rest();
  assert.deepEqual(messages.map((m) => [m.type, m.seq]), [
    [FrameType.RESPONSE, 1],
    [FrameType.ERROR, 0],
  ]);
  assert.equal((messages[1] as { code: number }).code, Status.DATA_LOSS);
});

// --- clients that vanish ----------------------------------------------------

Deno.test("Server forgets a client that dies mid-frame, leaking no descriptor", async () => {
  await using t = startServer(OPTIONS);
  const c = collector();
  const healthy = await t.client({ handler: c.handler });
  await roundTrip(healthy, c, 1);
  const baseline = openFds();
  for (let i = 0; i < 5; i++) {
    const peer = await t.raw();
    const ack = await peer.handshake();
    const session = t.server.session(ack.session as string)!;
    const frame = encode({
      type: FrameType.REQUEST,
      seq: 1,
      method: "echo",
      params: new Uint8Array(1000),
    });
    // Half a frame, then the end of the stream: the server reads them in
    // that order.
    await peer.write(frame.subarray(0, frame.length >> 1));
    assert.equal(t.server.sessionCount, 2);
    await peer.close();
    await session.closed;
    assert.equal(t.server.sessionCount, 1, "session removed after the half frame");
    await session.conn.closed;
  }
  // Descriptors have no event of their own: polled, with the safety net.
  await waitFor(() => openFds() === baseline, `descriptors back to ${baseline}`);
  await roundTrip(healthy, c, 3);
  assert.equal(t.server.metrics.closed, 5);
});

Deno.test("Server forgets a client that dies before finishing HELLO", async () => {
  await using t = startServer(OPTIONS);
  const baseline = openFds();
  const peer = await t.raw();
  const hello = helloBytes();
  await peer.write(hello.subarray(0, 10));
  await t.until(() => t.server.sessionCount === 1, "the session accepted");
  const [session] = t.server.sessions();
  await peer.close();
  await session.closed;
  assert.equal(t.server.sessionCount, 0);
  await session.conn.closed;
  await waitFor(() => openFds() === baseline, `descriptors back to ${baseline}`);
});

Deno.test("Server forgets a client that resets the connection", async () => {
  await using t = startServer(OPTIONS);
  const port = Number(new URL(t.addr).port);
  const c = collector();
  const healthy = await t.client({ handler: c.handler });
  await roundTrip(healthy, c, 1);
  const baseline = openFds();
  for (let i = 0; i < 5; i++) {
    // A bare socket: it never reads, so HELLO_ACK and the RESPONSE sit unread
    // in its receive buffer, and closing it sends RST instead of FIN.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(helloBytes());
    const other = () => [...t.server.sessions()].find((s) => s.id !== healthy.id);
    await t.until(() => other()?.state === "active", "the handshake");
    const session = other()!;
    await conn.write(
      encode({ type: FrameType.REQUEST, seq: 1, method: "echo", params: new Uint8Array(100) }),
    );
    // Written to the socket (no event marks a completed write): polled.
    await waitFor(() => session.stats.framesOut >= 2, "the RESPONSE written");
    conn.close();
    await session.closed;
    assert.equal(t.server.sessionCount, 1, "session removed after the reset");
    await session.conn.closed;
  }
  await waitFor(() => openFds() === baseline, `descriptors back to ${baseline}`);
  await roundTrip(healthy, c, 3);
});

Deno.test("Server forgets a client that resets while the server is writing to it", async () => {
  await using t = startServer({ ...OPTIONS, closeTimeoutMs: 100 });
  const port = Number(new URL(t.addr).port);
  const baseline = openFds();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(helloBytes());
  await t.until(() => [...t.server.sessions()][0]?.state === "active", "the handshake");
  const [session] = t.server.sessions();
  // Fill the socket until the session's own queue refuses more: the kernel
  // buffers are full and a write is pending, whatever their size. The
  // writer yields between sends so the writes run.
  const chunk = new Uint8Array(3000);
  let sent = 0;
  while (session.send({ type: FrameType.NOTIFY, seq: 0, method: "fill", params: chunk })) {
    if (++sent % 16 === 0) await nextMacrotask();
  }
  assert.ok(session.queuedBytes > 0, "a write is pending");
  conn.close();
  await session.closed;
  assert.equal(t.server.sessionCount, 0);
  await session.conn.closed;
  await waitFor(() => openFds() === baseline, `descriptors back to ${baseline}`);
});
