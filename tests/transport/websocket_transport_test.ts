// The WebSocket transport against peers played by hand: the checks before
// the upgrade, what the server does with messages that break the mapping,
// and the bounds that hold against a peer that does not read.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import type { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import { concat } from "../../codec/_bytes.ts";
import { dial, listenWebSocket, memoryPair, Server, type Session } from "../../transport/mod.ts";
import { upgradeClient } from "../../transport/_websocket_client.ts";
import { SUBPROTOCOL } from "../../transport/_websocket_frames.ts";
import {
  decodeAll,
  encode,
  guard,
  helloBytes,
  portOf,
  quietHandler,
  Signal,
  waitFor,
} from "./_helpers.ts";
import { WsPeer } from "./_websocket_peer.ts";

/** A transport Server on a WebSocket listener, with the sessions it closed. */
function serve(options: Parameters<typeof listenWebSocket>[0], server: Partial<{
  maxFrame: number;
  maxQueueBytes: number;
}> = {}) {
  const closes: { session: Session; reason: StreamwireError | undefined }[] = [];
  const changed = new Signal();
  const transport = new Server({
    ...server,
    handler: quietHandler({
      message(session, message) {
        // Answers every REQUEST with its params, so a peer that does not read falls behind.
        if (message.type === FrameType.REQUEST) {
          session.write({ type: FrameType.RESPONSE, seq: message.seq, data: message.params })
            .catch(() => {});
        }
      },
      open: () => changed.notify(),
      close(session, reason) {
        closes.push({ session, reason });
        changed.notify();
      },
    }),
  });
  const listener = listenWebSocket(options);
  const serving = transport.serve(listener);
  return {
    transport,
    listener,
    port: portOf(listener.addr),
    closes,
    until: (check: () => boolean, what: string) => changed.until(check, what),
    async [Symbol.asyncDispose]() {
      await transport.shutdown({ deadlineMs: 0 });
      await serving;
      await listener.closed;
    },
  };
}

async function handshaken(port: number): Promise<WsPeer> {
  const { status, peer } = await WsPeer.open(port);
  assert.equal(status, 101);
  await peer!.send(helloBytes());
  const ack = await peer!.next();
  assert.equal(ack?.opcode, 2);
  const [message] = await decodeAll(ack!.payload);
  assert.equal(message.type, FrameType.HELLO_ACK);
  return peer!;
}

/** The ERROR frames among binary messages. */
async function errors(binary: Uint8Array[]): Promise<Message[]> {
  const messages = (await Promise.all(binary.map(decodeAll))).flat();
  return messages.filter((m) => m.type === FrameType.ERROR);
}

Deno.test("websocket listener refuses wrong paths, origins, tokens and subprotocols before the upgrade", async () => {
  await using server = serve({
    url: "ws://127.0.0.1:0/rpc",
    origins: ["https://app.example"],
    token: "s3cret",
  });
  const port = server.port;
  const bearer = "Bearer s3cret";
  const cases: [Parameters<typeof WsPeer.open>[1], number][] = [
    [{ path: "/other", authorization: bearer }, 404],
    [{ path: "/rpc", authorization: bearer, origin: "https://evil.example" }, 403],
    [{ path: "/rpc" }, 401],
    [{ path: "/rpc", authorization: "Bearer wrong" }, 401],
    [{ path: "/rpc?token=wrong" }, 401],
    [{ path: "/rpc", authorization: bearer, protocol: null }, 400],
    [{ path: "/rpc", authorization: bearer, protocol: "chat, other" }, 400],
    [{ path: "/rpc", authorization: bearer, origin: "https://app.example" }, 101],
    // No Origin: not a browser, let through.
    [{ path: "/rpc?token=s3cret" }, 101],
    [{ path: "/rpc", authorization: bearer, protocol: "other, streamwire.v1" }, 101],
  ];
  for (const [request, expected] of cases) {
    const { status, peer } = await WsPeer.open(port, request);
    assert.equal(status, expected, JSON.stringify(request));
    peer?.close();
  }
  const plain = await fetch(`http://127.0.0.1:${port}/rpc`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
});

Deno.test("websocket dial maps refusals to status codes", async () => {
  await using server = serve({ url: "ws://127.0.0.1:0/rpc", token: "s3cret" });
  const base = `ws://127.0.0.1:${server.port}`;
  await assert.rejects(dial(`${base}/rpc`), { code: Status.UNAUTHENTICATED });
  await assert.rejects(dial(`${base}/nope`), { code: Status.NOT_FOUND });
  const ok = await dial({ url: `${base}/rpc`, token: "s3cret" });
  assert.equal(ok.transport, "ws");
  ok.close();
  await ok.closed;
});

Deno.test("websocket server refuses a message over maxFrame + 17 with ERROR 8 and close 1009", async () => {
  await using server = serve({ url: "ws://127.0.0.1:0/" }, { maxFrame: 4096 });
  const peer = await handshaken(server.port);
  // Whole frames, each small, together over the negotiated maxFrame plus a header.
  const notify = encode({
    type: FrameType.NOTIFY,
    seq: 0,
    method: "n",
    params: new Uint8Array(1000),
  });
  const message = new Uint8Array(notify.length * 5);
  for (let i = 0; i < 5; i++) message.set(notify, i * notify.length);
  assert.ok(message.length > 4096 + 17);
  await peer.send(message);
  const { code, binary } = await peer.untilClose();
  assert.equal(code, 1009);
  const [error] = await errors(binary);
  assert.equal((error as { code: number }).code, Status.RESOURCE_EXHAUSTED);
  peer.close();
  await server.until(() => server.closes.length === 1, "the session closed");
  assert.equal(server.closes[0].reason?.code, Status.RESOURCE_EXHAUSTED);
});

Deno.test("websocket server refuses a text message with ERROR 3 and close 1003", async () => {
  await using server = serve("ws://127.0.0.1:0/");
  const peer = await handshaken(server.port);
  await peer.send(new TextEncoder().encode('{"jsonrpc":"2.0"}'), 1);
  const { code, binary } = await peer.untilClose();
  assert.equal(code, 1003);
  const [error] = await errors(binary);
  assert.equal((error as { code: number }).code, Status.INVALID_ARGUMENT);
  peer.close();
});

Deno.test("websocket server refuses a message that ends inside a frame with close 1002", async () => {
  await using server = serve("ws://127.0.0.1:0/");
  const { peer } = await WsPeer.open(server.port);
  const hello = helloBytes();
  await peer!.send(hello.subarray(0, 10));
  const { code, binary } = await peer!.untilClose();
  assert.equal(code, 1002);
  const [error] = await errors(binary);
  assert.equal((error as { code: number }).code, Status.INVALID_ARGUMENT);
  peer!.close();
});

Deno.test("websocket server stays within its bounds while a client sends calls and never reads", async () => {
  const maxQueueBytes = 256 * 1024;
  await using server = serve("ws://127.0.0.1:0/", { maxQueueBytes });
  const peer = await handshaken(server.port);
  await server.until(() => server.transport.sessionCount === 1, "the session");
  const [session] = server.transport.sessions();
  const params = new Uint8Array(32 * 1024);
  let largest = 0;
  // Up to 4,096 calls of 32 KiB, answers never read: past what the kernel's
  // socket buffers hold (a few MiB each way on loopback).
  const sending = (async () => {
    for (let seq = 1; seq < 8192 && server.closes.length === 0; seq += 2) {
      await peer.send(encode({ type: FrameType.REQUEST, seq, method: "echo", params }));
      largest = Math.max(largest, session.queuedBytes);
    }
  })().catch(() => {});
  // Either the server refuses the peer once its unread messages pass
  // maxInboundBytes, or TCP flow control stops the peer first (Deno's
  // WebSocket may stop reading while its own write is blocked): both bound
  // memory. Wait for the refusal or for the session's queue at its bound.
  const frame = params.length + 64;
  await waitFor(() => {
    largest = Math.max(largest, session.queuedBytes);
    return server.closes.length === 1 || session.queuedBytes + frame > maxQueueBytes;
  }, "the server to refuse the peer or its queue to reach its bound");
  // The session's queue bound held (one frame over it at most).
  assert.ok(largest <= maxQueueBytes + frame, `queued up to ${largest} bytes`);
  // A peer refused for unread messages past the bound gets 8.
  if (server.closes.length === 1) {
    assert.equal(server.closes[0].reason?.code, Status.RESOURCE_EXHAUSTED);
  }
  peer.close();
  await guard(sending, "the sender to stop");
});

Deno.test("websocket listener close stops accepting and releases the port once sessions end", async () => {
  const server = serve("ws://127.0.0.1:0/");
  const peer = await handshaken(server.port);
  server.listener.close();
  const { status } = await WsPeer.open(server.port);
  assert.equal(status, 503);
  // The accepted session still works after close().
  await peer.send(encode({ type: FrameType.PING, seq: 0, payload: Uint8Array.of(7) }));
  const pong = await decodeAll((await peer.next())!.payload);
  assert.equal(pong[0].type, FrameType.PONG);
  peer.close();
  await server[Symbol.asyncDispose]();
  await assert.rejects(WsPeer.open(server.port), Deno.errors.ConnectionRefused);
});

Deno.test("websocket listen refuses bad addresses and options", () => {
  for (const bad of ["ws://127.0.0.1:0/?x=1", "http://127.0.0.1:0/", "wss://127.0.0.1:0/"]) {
    assert.throws(() => listenWebSocket(bad), { code: Status.INVALID_ARGUMENT }, bad);
  }
  assert.throws(
    () => listenWebSocket({ url: "ws://127.0.0.1:0/", maxInboundBytes: 0 }),
    { code: Status.INVALID_ARGUMENT },
  );
});

Deno.test("websocket client answers a flood of PINGs from a server that does not read with a bounded number of PONGs, the last for the latest PING", async () => {
  const [socket, server] = memoryPair({ highWaterMark: 0 });
  const decoder = new TextDecoder();
  // The server's side by hand: read the upgrade request, answer it, then
  // 1,000 PINGs and one binary message, reading nothing meanwhile.
  const message = encode({ type: FrameType.PING, seq: 0, payload: Uint8Array.of(42) });
  const serverSide = (async () => {
    let request = "";
    while (!request.includes("\r\n\r\n")) request += decoder.decode((await server.read!())!);
    const key = /Sec-WebSocket-Key: (\S+)/i.exec(request)![1];
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    const frames: number[] = [];
    for (let i = 0; i < 1000; i++) frames.push(0x89, 2, i >>> 8, i & 0xff);
    frames.push(0x82, message.length, ...message);
    await server.write!(
      concat([
        new TextEncoder().encode(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
        ),
        Uint8Array.from(frames),
      ]),
    );
  })();
  const conn = await upgradeClient(
    socket as Parameters<typeof upgradeClient>[0],
    new URL("ws://h/"),
    {
      signal: new AbortController().signal,
    },
  );
  await serverSide;
  // read() handles the PINGs on its way to the binary message.
  assert.deepEqual(await conn.read!(), message);
  conn.close();
  // Now the server reads what the client wrote: PONGs, then the Close.
  const written: Uint8Array[] = [];
  for (let chunk = await server.read!(); chunk !== null; chunk = await server.read!()) {
    written.push(chunk);
  }
  const bytes = concat(written);
  const pongs: number[] = [];
  for (let at = 0; at < bytes.length;) {
    const opcode = bytes[at] & 0x0f;
    const length = bytes[at + 1] & 0x7f;
    const mask = bytes.subarray(at + 2, at + 6);
    const payload = bytes.subarray(at + 6, at + 6 + length).map((b, i) => b ^ mask[i & 3]);
    if (opcode === 0xa) pongs.push((payload[0] << 8) | payload[1]);
    at += 6 + length;
  }
  assert.ok(pongs.length >= 1 && pongs.length <= 2, `${pongs.length} PONGs for 1,000 PINGs`);
  assert.equal(pongs.at(-1), 999);
  await Promise.all([conn.closed, server.closed]);
});
