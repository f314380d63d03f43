// The user's own stages in the session pipeline, on RpcServer and the
// client: frame-level in both directions (a toy cipher applied on one side
// and undone on the other) and message-level taps.

import assert from "node:assert/strict";
import { FrameType } from "../../codec/constants.ts";
import type { Frame } from "../../codec/frame.ts";
import type { Message } from "../../codec/message.ts";
import type { Stage } from "../../codec/stage.ts";
import type { SessionStages } from "../../transport/session.ts";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";

/** XORs every body byte after the first 2 with `key`: its own inverse. */
function xor(key: number): Stage<Frame, Frame> {
  return {
    transform(frame, controller) {
      const body = frame.body.slice();
      for (let i = 0; i < body.length; i++) body[i] ^= key;
      controller.enqueue({ ...frame, body });
    },
  };
}

/** Counts the messages passing by type, and passes them on unchanged. */
function tap(counts: Map<number, number>): Stage<Message, Message> {
  return {
    transform(message, controller) {
      counts.set(message.type, (counts.get(message.type) ?? 0) + 1);
      controller.enqueue(message);
    },
  };
}

/** Frame stages that scramble bodies on the way out and restore them on the way in. */
function scrambled(key: number): { inbound: SessionStages; outbound: SessionStages } {
  return { inbound: { frames: [xor(key)] }, outbound: { frames: [xor(key)] } };
}

Deno.test("User frame stages on both sides scramble every body on the wire and restore it", async () => {
  const wire: Uint8Array[] = [];
  const server = new RpcServer({
    methods: new Methods()
      .unary("echo", (p) => p)
      .serverStream("count", function* (n: number) {
        for (let i = 1; i <= n; i++) yield i;
      }),
    ...scrambled(0x5a),
  });
  const addr = server.listen({ port: 0 });
  // The client's inbound sees the frames as the server scrambled them first:
  // a tap before the descrambler records the bodies as they travelled.
  const client = await connect(addr, {
    reconnect: false,
    inbound: {
      frames: [{
        transform(frame: Frame, c: TransformStreamDefaultController<Frame>) {
          if (frame.type === FrameType.RESPONSE) wire.push(frame.body.slice());
          c.enqueue(frame);
        },
      }, xor(0x5a)],
    },
    outbound: { frames: [xor(0x5a)] },
  });
  try {
    assert.equal(await client.call("echo", "hello"), "hello");
    assert.deepEqual(await Array.fromAsync(client.stream("count", 3)), [1, 2, 3]);
    assert.equal(wire.length, 1);
    // msgpack of "hello" is a5 68 65 6c 6c 6f; scrambled it is not.
    assert.notDeepEqual([...wire[0]], [0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    assert.deepEqual([...wire[0]].map((b) => b ^ 0x5a), [0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("User message stages see every message in and out, per session when made by a function", async () => {
  const made: Map<number, number>[] = [];
  const server = new RpcServer({
    methods: new Methods().unary("echo", (p) => p),
    inbound: () => {
      const counts = new Map<number, number>();
      made.push(counts);
      return { messages: [tap(counts)] };
    },
  });
  const addr = server.listen({ port: 0 });
  const out = new Map<number, number>();
  const clients = [
    await connect(addr, { reconnect: false, outbound: { messages: [tap(out)] } }),
    await connect(addr, { reconnect: false }),
  ];
  try {
    await clients[0].call("echo", 1);
    await clients[0].call("echo", 2);
    await clients[1].call("echo", 3);
    assert.equal(made.length, 2, "one set of stages per session");
    assert.equal(made[0].get(FrameType.HELLO), 1);
    assert.equal(made[0].get(FrameType.REQUEST), 2);
    assert.equal(made[1].get(FrameType.REQUEST), 1);
    assert.equal(out.get(FrameType.HELLO), 1);
    assert.equal(out.get(FrameType.REQUEST), 2);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.shutdown();
  }
});
