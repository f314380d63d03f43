// Nothing is dropped or thrown on the way out: answers wait for queue room,
// frames over maxFrame fail their own call, callbacks fail on their own.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import type { Message } from "../../codec/message.ts";
import { Methods } from "../../rpc/methods.ts";
import { type ErrorInfo, RpcPeer } from "../../rpc/peer.ts";
import type { Push } from "../../rpc/peer.ts";
import { memoryPair } from "../../transport/memory.ts";
import { openSession } from "../../transport/open_session.ts";
import { Server } from "../../transport/server.ts";
import { KINDS, rejectsWith, rig } from "./_rig.ts";

const big = (n: number) => "x".repeat(n);

for (const kind of KINDS) {
  Deno.test(`${kind}: a result larger than maxFrame answers 8; the call goes on working`, async () => {
    await using r = await rig(kind, {
      server: { maxFrame: 1024 },
      client: { codecs: ["json"] },
      methods: () =>
        new Methods()
          .unary("big", (n: number) => big(n))
          .serverStream("bigs", function* (n: number) {
            yield "small";
            yield big(n);
          }),
    });
    const e = await rejectsWith(r.client.call("big", 2000), Status.RESOURCE_EXHAUSTED);
    // JSON adds the two quotes.
    assert.equal(e.message, "Result of '2002' bytes exceeds maxFrame '1024'");
    assert.equal(await r.client.call("big", 10), big(10));
    const b = await rejectsWith(
      r.client.batch([{ method: "big", params: 600 }, { method: "big", params: 600 }]),
      Status.RESOURCE_EXHAUSTED,
    );
    assert.match(b.message, /^Result of '\d+' bytes exceeds maxFrame '1024'$/);
    const reader = r.client.stream("bigs", 2000).getReader();
    assert.equal((await reader.read()).value, "small");
    await rejectsWith(reader.read(), Status.RESOURCE_EXHAUSTED);
    assert.equal(r.serverPeer().inflight, 0);
    assert.equal(r.client.pending, 0);
  });

  Deno.test(`${kind}: a call larger than maxFrame fails locally with 8, of every kind`, async () => {
    await using r = await rig(kind, { server: { maxFrame: 1024 } });
    const framesIn = () => r.serverSession().stats.framesIn;
    const before = framesIn();
    await rejectsWith(r.client.call("echo", big(2000)), Status.RESOURCE_EXHAUSTED);
    await rejectsWith(
      r.client.batch([{ method: "echo", params: big(2000) }]),
      Status.RESOURCE_EXHAUSTED,
    );
    await rejectsWith(r.client.notify("note", big(2000)), Status.RESOURCE_EXHAUSTED);
    await rejectsWith(
      r.client.stream("count", big(2000)).getReader().read(),
      Status.RESOURCE_EXHAUSTED,
    );
    assert.equal(r.client.pending, 0);
    assert.equal(framesIn(), before, "none of them was sent");
    // A value too large for a stream fails that call, both ways.
    const { readable, writable } = r.client.duplex("upper");
    const writer = writable.getWriter();
    await writer.write("ok");
    const reader = readable.getReader();
    assert.equal((await reader.read()).value, "OK");
    await rejectsWith(writer.write(big(2000)), Status.RESOURCE_EXHAUSTED);
    await rejectsWith(reader.read(), Status.RESOURCE_EXHAUSTED);
    assert.equal(r.client.pending, 0);
    assert.equal(await r.client.call("echo", "still fine"), "still fine");
  });

  Deno.test(`${kind}: with the server's queue full, every answer and value still arrives, END last`, async () => {
    await using r = await rig(kind, {
      server: { maxQueueBytes: 256 },
      methods: () =>
        new Methods()
          .unary("blob", (i: number) => big(300) + i)
          .serverStream("blobs", function* (n: number) {
            for (let i = 0; i < n; i++) yield big(200) + i;
          })
          .bidi("echoes", async function* (input: ReadableStream<string>) {
            for await (const s of input) yield s + big(200);
          }),
    });
    const items = await Array.fromAsync(r.client.stream("blobs", 200)) as string[];
    assert.equal(items.length, 200);
    assert.equal(items.at(-1), big(200) + 199);
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => r.client.call("blob", i)),
    );
    assert.deepEqual(answers, Array.from({ length: 100 }, (_, i) => big(300) + i));
    const { readable, writable } = r.client.duplex("echoes");
    const writing = ReadableStream.from(Array.from({ length: 50 }, (_, i) => `${i}`))
      .pipeTo(writable);
    const echoed = await Array.fromAsync(readable);
    await writing;
    assert.equal(echoed.length, 50);
  });
}

for (const kind of KINDS) {
  Deno.test(`${kind}: a call cancelled while waiting for queue room is cancelled after it is sent`, async () => {
    await using r = await rig(kind, { client: { maxQueueBytes: 1024 } });
    // A large call fills the client's queue: the OPEN behind it waits for room.
    const large = r.client.call("echo", big(100_000));
    const ticks = r.client.stream("ticks");
    await ticks.cancel("changed my mind");
    const controller = new AbortController();
    const hanging = r.client.call("hang", undefined, { signal: controller.signal });
    controller.abort();
    await rejectsWith(hanging, Status.CANCELLED);
    assert.equal(await large, big(100_000));
    // Sent after all of them: when it is answered, the server has read the
    // OPEN, the REQUEST and, after each, its CANCEL.
    assert.equal(await r.client.call("echo", 1), 1);
    assert.equal(r.serverPeer().inflight, 0, "nothing left running on the server");
    assert.equal(r.client.pending, 0);
  });
}

Deno.test("RpcPeer.handle never throws: a failing onPush goes to onError", async () => {
  const server = new Server({ handler: { message() {} } });
  const [a, b] = memoryPair();
  server.accept(a);
  const session = await openSession(b, { handler: { message() {} } });
  try {
    const errors: [unknown, ErrorInfo][] = [];
    const pushes: Push[] = [];
    const peer = new RpcPeer(session, {
      onPush: (push) => {
        pushes.push(push);
        throw new Error("callback bug");
      },
      onError: (error, info) => errors.push([error, info]),
    });
    const broadcast: Message = {
      type: FrameType.BROADCAST,
      seq: 0,
      method: "news",
      params: new TextEncoder().encode("1"),
    };
    peer.handle(broadcast);
    peer.handle({ ...broadcast, type: FrameType.NOTIFY });
    assert.equal(pushes.length, 2);
    assert.deepEqual(errors.map(([e, i]) => [(e as Error).message, i.method, i.id]), [
      ["callback bug", "news", 0],
      ["callback bug", "news", 0],
    ]);
    // A frame for a call nobody made, and a malformed DATA, are dropped quietly.
    peer.handle({ type: FrameType.RESPONSE, seq: 7, data: new Uint8Array([0xff]) });
    peer.handle({ type: FrameType.DATA, seq: 8, data: new Uint8Array([0xff]) });
    assert.equal(errors.length, 2);
  } finally {
    await session.close();
    await server.shutdown();
  }
});

for (const kind of KINDS) {
  Deno.test(`${kind}: a throwing onPush or subscriber affects neither the connection nor other calls`, async () => {
    const pushed = Promise.withResolvers<void>();
    const serverErrors: string[] = [];
    const clientErrors: string[] = [];
    await using r = await rig(kind, {
      server: {
        onPush: () => {
          pushed.resolve();
          throw new Error("server callback bug");
        },
        onError: (error) => serverErrors.push((error as Error).message),
      },
      client: { onError: (error) => clientErrors.push((error as Error).message) },
    });
    const slow = r.client.call("sleep", 20);
    await r.client.notify("not.registered", 1);
    await pushed.promise;
    assert.equal(await slow, true);
    assert.equal(await r.client.call("echo", "after"), "after");
    assert.deepEqual(serverErrors, ["server callback bug"]);
    // On the client: one subscriber throws, the next one and the pushes stream still get it.
    const got: unknown[] = [];
    r.client.subscribe("news", () => {
      throw new Error("subscriber bug");
    });
    r.client.subscribe("news", (params) => got.push(params));
    const reader = r.client.pushes.getReader();
    r.server.broadcast("news", { n: 1 });
    assert.deepEqual((await reader.read()).value, {
      type: FrameType.BROADCAST,
      method: "news",
      params: { n: 1 },
    });
    reader.releaseLock();
    assert.deepEqual(got, [{ n: 1 }]);
    assert.deepEqual(clientErrors, ["subscriber bug"]);
    assert.equal(await r.client.call("echo", "still"), "still");
    assert.equal(r.client.state, "ready");
  });

  Deno.test(`${kind}: upload resolves with an answer given before all input was read, and stops sending`, async () => {
    await using r = await rig(kind, {
      methods: () =>
        new Methods().clientStream("first", async (input: ReadableStream<number>) => {
          const reader = input.getReader();
          const { value } = await reader.read();
          return value;
        }).unary("echo", (p) => p),
    });
    let pulled = 0;
    const cancelled = Promise.withResolvers<void>();
    const source = new ReadableStream<number>({
      pull(controller) {
        controller.enqueue(++pulled);
        if (pulled === 1000) controller.close();
      },
      cancel() {
        cancelled.resolve();
      },
    }, { highWaterMark: 0 });
    assert.equal(await r.client.upload("first", source), 1);
    await cancelled.promise;
    assert.ok(pulled < 1000, `read ${pulled} of 1000 values`);
    assert.equal(r.client.pending, 0);
    // An async iterable input is closed the same way.
    let closed = false;
    const values = async function* () {
      try {
        for (let i = 1; i <= 1000; i++) yield i;
      } finally {
        closed = true;
      }
    };
    assert.equal(await r.client.upload("first", values()), 1);
    assert.ok(closed);
    assert.equal(await r.client.call("echo", 2), 2);
  });
}
