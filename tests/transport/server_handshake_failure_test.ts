// Every way a handshake fails: the ERROR code the client reads, the server
// closing the connection, and its session count back to 0 (PROTOCOL.md 4, 6).

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import { memoryPair, openSession } from "../../transport/mod.ts";
import {
  delay,
  encode,
  guard,
  helloBytes,
  quietHandler,
  type RawPeer,
  startServer,
  type TestServer,
} from "./_helpers.ts";

// The refusals below come from what the client sent, not from the clock:
// the default handshake timeout (5 s) keeps a busy machine from turning one
// into deadline_exceeded. The timeout tests set their own.
const OPTIONS = { token: "s3cret" } as const;
const TIMEOUT = { ...OPTIONS, handshakeTimeoutMs: 150 } as const;

/** Reads what the server sends until it closes: exactly one ERROR, then EOF. */
async function expectRefusal(t: TestServer, peer: RawPeer, code: number): Promise<Message> {
  const messages = await peer.rest();
  assert.equal(peer.ended, "eof", `the server closed the connection cleanly: ${peer.ended}`);
  const errors = messages.filter((m) => m.type === FrameType.ERROR);
  assert.equal(errors.length, 1, `one ERROR in ${JSON.stringify(messages)}`);
  const error = errors[0] as Message & { code: number; message: string };
  assert.equal(error.seq, 0);
  assert.equal(error.code, code, error.message);
  assert.ok(!messages.some((m) => m.type === FrameType.HELLO_ACK), "no HELLO_ACK");
  await t.until(() => t.server.sessionCount === 0, "the session removed");
  return error;
}

const CASES: { name: string; code: number; bytes: () => Uint8Array; message: RegExp }[] = [
  {
    name: "a bad token gets unauthenticated",
    code: Status.UNAUTHENTICATED,
    bytes: () => helloBytes({ token: "wrong" }),
    message: /token/,
  },
  {
    name: "a missing token gets unauthenticated",
    code: Status.UNAUTHENTICATED,
    bytes: () => helloBytes(),
    message: /token/,
  },
  {
    name: "no common codec gets unimplemented",
    code: Status.UNIMPLEMENTED,
    bytes: () => helloBytes({ token: "s3cret" }, { codecs: ["xml", "yaml"] }),
    message: /^No common codec: offered 'xml,yaml'/,
  },
  {
    name: "an unknown protocol version gets unimplemented",
    code: Status.UNIMPLEMENTED,
    bytes: () => helloBytes({ token: "s3cret" }, { version: 2 }),
    message: /^Unsupported protocol version '2', expected '1'$/,
  },
  {
    name: "a HELLO with bad fields gets invalid_argument",
    code: Status.INVALID_ARGUMENT,
    bytes: () => helloBytes({ token: "s3cret" }, { maxFrame: -1 }),
    message: /maxFrame/,
  },
  {
    name: "a REQUEST before HELLO gets failed_precondition",
    code: Status.FAILED_PRECONDITION,
    bytes: () =>
      encode({ type: FrameType.REQUEST, seq: 1, method: "echo", params: Uint8Array.of(1) }),
    message: /before the handshake/,
  },
  {
    name: "a NOTIFY before HELLO gets failed_precondition",
    code: Status.FAILED_PRECONDITION,
    bytes: () => encode({ type: FrameType.NOTIFY, seq: 0, method: "x", params: new Uint8Array(0) }),
    message: /before the handshake/,
  },
  {
    name: "a HELLO_ACK from the client gets failed_precondition",
    code: Status.FAILED_PRECONDITION,
    bytes: () => encode({ type: FrameType.HELLO_ACK, seq: 0, ack: { version: 1 } }),
    message: /HELLO/,
  },
];

for (const { name, code, bytes, message } of CASES) {
  Deno.test(`Server handshake: ${name} and closes the connection`, async () => {
    await using t = startServer(OPTIONS);
    const peer = await t.raw();
    await peer.write(bytes());
    const error = await expectRefusal(t, peer, code);
    assert.match((error as { message: string }).message, message);
    assert.equal(t.server.metrics.handshakeFailures, 1);
    assert.equal(t.server.metrics.accepted, 1);
    assert.equal(t.server.metrics.closed, 1);
  });
}

Deno.test("Server handshake: frames after HELLO in the same write are taken under the negotiated settings", async () => {
  // The server reads frame by frame: the REQUEST after HELLO arrives once the
  // session is established, so it reaches the handler instead of failing the
  // handshake (docs/PROTOCOL.md, Handshake).
  const seen: Message[] = [];
  const { promise: request, resolve } = Promise.withResolvers<Message>();
  await using t = startServer({
    ...OPTIONS,
    handler: {
      message(_session, message) {
        seen.push(message);
        resolve(message);
      },
    },
  });
  const peer = await t.raw();
  await peer.write(
    new Uint8Array([
      ...helloBytes({ token: "s3cret" }),
      ...encode({ type: FrameType.REQUEST, seq: 1, method: "echo", params: Uint8Array.of(1) }),
    ]),
  );
  assert.equal((await peer.next())?.type, FrameType.HELLO_ACK);
  assert.equal((await guard(request, "the REQUEST at the handler")).type, FrameType.REQUEST);
  assert.deepEqual(seen.map((m) => m.type), [FrameType.REQUEST]);
  assert.equal(t.server.metrics.handshakeFailures, 0);
});

Deno.test("Server handshake: a second HELLO after the handshake gets failed_precondition", async () => {
  await using t = startServer(OPTIONS);
  const peer = await t.raw();
  const ack = await peer.handshake({ token: "s3cret" });
  const session = t.server.session(ack.session as string)!;
  await peer.write(helloBytes({ token: "s3cret" }));
  const messages = await peer.rest();
  const error = messages.find((m) => m.type === FrameType.ERROR) as { code: number } | undefined;
  assert.equal(error?.code, Status.FAILED_PRECONDITION);
  await session.closed;
  assert.equal(t.server.sessionCount, 0);
});

Deno.test("Server handshake: no HELLO within handshakeTimeoutMs closes the connection", async () => {
  await using t = startServer(TIMEOUT);
  const start = Date.now();
  const peer = await t.raw();
  await t.until(() => t.server.sessionCount === 1, "the session accepted");
  // The client connects and waits; the server gives up on its own.
  const error = await expectRefusal(t, peer, Status.DEADLINE_EXCEEDED);
  const elapsed = Date.now() - start;
  assert.match((error as { message: string }).message, /^Handshake not completed within '150' ms$/);
  // A lower bound only: late is what a busy machine does, early is a bug.
  assert.ok(elapsed >= 150, `closed after ${elapsed} ms, not before the timeout`);
  assert.equal(t.server.metrics.handshakeFailures, 1);
});

Deno.test("Server handshake: a trickling HELLO (slowloris) is closed at the timeout", async () => {
  await using t = startServer(TIMEOUT);
  const peer = await t.raw();
  const hello = helloBytes({ token: "s3cret" });
  // A byte every 20 ms, and never the last one: the frame cannot complete,
  // however the writes and the timeout interleave.
  const trickle = (async () => {
    for (let i = 0; i < hello.length - 1; i++) {
      if (!await peer.write(hello.subarray(i, i + 1))) return;
      await delay(20);
    }
  })();
  await expectRefusal(t, peer, Status.DEADLINE_EXCEEDED);
  await trickle;
  assert.equal(t.server.metrics.handshakeFailures, 1);
});

Deno.test("openSession rejects with the server's ERROR: unauthenticated, unimplemented", async () => {
  await using t = startServer({ ...OPTIONS, codecs: ["json"] });
  await assert.rejects(t.client({ token: "nope" }), (error) => {
    assert.ok(error instanceof StreamwireError);
    assert.equal(error.code, Status.UNAUTHENTICATED);
    return true;
  });
  await assert.rejects(t.client({ token: "s3cret", codecs: ["cbor"] }), (error) => {
    assert.ok(error instanceof StreamwireError);
    assert.equal(error.code, Status.UNIMPLEMENTED);
    return true;
  });
  await t.until(() => t.server.sessionCount === 0, "the sessions removed");
  assert.equal(t.server.metrics.handshakeFailures, 2);
  // The right token still works.
  const client = await t.client({ token: "s3cret" });
  assert.equal(client.state, "active");
});

Deno.test("openSession rejects with deadline_exceeded when no HELLO_ACK comes", async () => {
  // A peer that swallows the HELLO and never answers.
  const [a, b] = memoryPair();
  const reading = Array.fromAsync(b.readable).catch(() => []);
  await assert.rejects(
    openSession(a, { handler: quietHandler(), handshakeTimeoutMs: 60 }),
    (error) => {
      assert.ok(error instanceof StreamwireError);
      assert.equal(error.code, Status.DEADLINE_EXCEEDED);
      assert.equal(error.message, "No HELLO_ACK within '60' ms");
      return true;
    },
  );
  await Promise.all([a.closed, b.closed, reading]);
});
