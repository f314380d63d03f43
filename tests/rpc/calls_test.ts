import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import type { StreamwireError } from "../../codec/error.ts";
import { Methods } from "../../rpc/methods.ts";
import type { Push } from "../../rpc/peer.ts";
import { tap } from "../transport/_helpers.ts";
import { KINDS, rejectsWith, rig, settled } from "./_rig.ts";

for (const kind of KINDS) {
  Deno.test(`${kind}: unary calls return results, objects intact`, async () => {
    await using r = await rig(kind);
    assert.equal(await r.client.call("add", [2, 40]), 42);
    const value = { a: [1, "two", null, true], b: { c: 3.5 }, s: "ü✓" };
    assert.deepEqual(await r.client.call("echo", value), value);
    assert.equal(await r.client.call("echo"), undefined);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => r.client.call("add", [i, i])),
    );
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => 2 * i));
    assert.equal(r.client.pending, 0);
  });

  Deno.test(`${kind}: NOTIFY runs the handler and nothing is answered`, async () => {
    const received = tap();
    await using r = await rig(kind, { client: { inbound: received.stages } });
    const seen = new Promise<void>((resolve) => (r.probe.onNotify = resolve));
    const before = received.messages.length;
    r.client.notify("note", { hello: "world" });
    await seen;
    assert.deepEqual(r.probe.notified, [{ hello: "world" }]);
    // A NOTIFY for an unknown method is dropped quietly, not answered either.
    r.client.notify("no.such.method", 1);
    // The server reads frames in order: an answer to either NOTIFY would
    // reach the client before the RESPONSE to this later call.
    await r.client.call("echo", 1);
    assert.deepEqual(
      received.messages.slice(before).map((m) => m.type),
      [FrameType.RESPONSE],
      "only the echo RESPONSE was received",
    );
    assert.equal(r.client.pending, 0);
    assert.equal(r.serverPeer().inflight, 0);
  });

  Deno.test(`${kind}: BATCH keeps order and reports each failure with its code`, async () => {
    await using r = await rig(kind);
    const outcomes = await r.client.batch([
      { method: "add", params: [1, 2] },
      { method: "nope" },
      { method: "fail.code" },
      { method: "fail.plain" },
      { method: "add", params: "not a pair" },
      { method: "sleep", params: 5 },
      { method: "fail.async" },
      { method: "echo", params: { x: [1] } },
      { method: "count", params: 3 },
    ]);
    assert.equal(outcomes.length, 9);
    assert.deepEqual(outcomes[0], { ok: true, value: 3 });
    const err = (i: number): StreamwireError => {
      const o = outcomes[i];
      assert.equal(o.ok, false, `entry ${i} should fail`);
      return (o as { error: StreamwireError }).error;
    };
    assert.equal(err(1).code, Status.UNIMPLEMENTED);
    assert.match(err(1).message, /Unknown method 'nope'/);
    assert.equal(err(2).code, Status.NOT_FOUND);
    assert.equal(err(2).message, "No user 'ada'");
    // A plain Error crosses as `unknown` with a generic message: its own stays here.
    assert.equal(err(3).code, Status.UNKNOWN);
    assert.equal(err(3).message, "Internal error in 'fail.plain'");
    assert.deepEqual(r.probe.errors.map((e) => e.method), ["fail.plain"]);
    assert.equal(err(4).code, Status.INVALID_ARGUMENT);
    assert.deepEqual(outcomes[5], { ok: true, value: true });
    assert.equal(err(6).code, Status.ABORTED);
    assert.deepEqual(outcomes[7], { ok: true, value: { x: [1] } });
    assert.equal(err(8).code, Status.UNIMPLEMENTED, "a streaming method inside a BATCH");
    assert.deepEqual(await r.client.batch([]), []);
    assert.equal(r.serverPeer().inflight, 0);
  });

  Deno.test(`${kind}: server stream delivers every item, then ends`, async () => {
    await using r = await rig(kind);
    const items = await Array.fromAsync(r.client.stream("count", 1000));
    assert.equal(items.length, 1000);
    assert.deepEqual(items.slice(0, 3), [1, 2, 3]);
    assert.equal(items[999], 1000);
    assert.deepEqual(await Array.fromAsync(r.client.stream("count", 0)), []);
    // A handler failing midway: items so far, then its code.
    const reader = r.client.stream("failing").getReader();
    assert.deepEqual(await reader.read(), { value: 1, done: false });
    await rejectsWith(reader.read(), Status.DATA_LOSS);
    await settled(r);
  });

  Deno.test(`${kind}: client stream (upload) sends more than a window`, async () => {
    await using r = await rig(kind);
    assert.equal(await r.client.upload("sum", ReadableStream.from([1, 2, 3, 4])), 10);
    const values = Array.from({ length: 300 }, (_, i) => ({ i }));
    assert.deepEqual(await r.client.upload("collect", ReadableStream.from(values)), values);
    assert.equal(await r.client.upload("sum", ReadableStream.from([])), 0);
    await rejectsWith(r.client.upload("sum", ReadableStream.from(["x"])), Status.INVALID_ARGUMENT);
    await settled(r);
  });

  Deno.test(`${kind}: bidi (duplex) answers as values arrive`, async () => {
    await using r = await rig(kind);
    const { readable, writable } = r.client.duplex("upper");
    const writer = writable.getWriter();
    const reader = readable.getReader();
    await writer.write("ab");
    assert.deepEqual(await reader.read(), { value: "AB", done: false });
    await writer.write("cd");
    assert.deepEqual(await reader.read(), { value: "CD", done: false });
    // More than a window in flight in both directions.
    const many = Array.from({ length: 200 }, (_, i) => `x${i}`);
    const writing = (async () => {
      for (const s of many) await writer.write(s);
      await writer.close();
    })();
    const rest: unknown[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest.push(value);
    }
    await writing;
    assert.deepEqual(rest, many.map((s) => s.toUpperCase()));
    await settled(r);
  });

  Deno.test(`${kind}: the server calls methods of the client with even ids`, async () => {
    const ids: number[] = [];
    await using r = await rig(kind, {
      client: {
        methods: new Methods()
          .unary("client.whoami", (p, ctx) => {
            ids.push(ctx.id);
            return { me: "client", got: p };
          })
          .serverStream("client.count", function* (n: number) {
            for (let i = 0; i < n; i++) yield i;
          }),
      },
    });
    const peer = r.server.peer(r.serverSession())!;
    assert.ok(peer);
    assert.deepEqual(await peer.call("client.whoami", 7), { me: "client", got: 7 });
    assert.deepEqual(await peer.call("client.whoami", 8), { me: "client", got: 8 });
    assert.deepEqual(ids, [2, 4]);
    assert.ok(ids.every((id) => id % 2 === 0));
    assert.deepEqual(await Array.fromAsync(peer.stream("client.count", 100)), [
      ...Array(100).keys(),
    ]);
    await rejectsWith(peer.call("add", [1, 2]), Status.UNIMPLEMENTED);
    // Client calls still use odd ids meanwhile.
    assert.equal(
      ((await r.client.call("ctx")) as { id: number }).id % 2,
      1,
    );
  });

  Deno.test(`${kind}: BROADCAST reaches subscribe() and pushes`, async () => {
    await using r = await rig(kind);
    const got: unknown[] = [];
    const unsubscribe = r.client.subscribe("news", (params) => got.push(params));
    const reader = r.client.pushes.getReader();
    assert.deepEqual(r.server.broadcast("news", { n: 1 }), { delivered: 1, dropped: 0 });
    const push = (await reader.read()).value as Push;
    assert.deepEqual(push, { type: FrameType.BROADCAST, method: "news", params: { n: 1 } });
    assert.deepEqual(got, [{ n: 1 }]);
    // Topic fan-out through the demo chat methods.
    assert.equal(await r.client.call("chat.join", { room: "lobby" }), true);
    const lobby: unknown[] = [];
    r.client.subscribe("lobby", (params) => lobby.push(params));
    assert.equal(await r.client.call("chat.say", { room: "lobby", text: "hi" }), 1);
    const chat = (await reader.read()).value as Push;
    assert.equal(chat.method, "lobby");
    assert.deepEqual(chat.params, { from: r.serverSession().id, text: "hi" });
    assert.deepEqual(lobby, [{ from: r.serverSession().id, text: "hi" }]);
    unsubscribe();
    r.server.broadcast("news", { n: 2 });
    assert.equal(((await reader.read()).value as Push).method, "news");
    assert.deepEqual(got, [{ n: 1 }], "unsubscribed callback is not called");
    // A NOTIFY from the server to an unregistered client method is a push too.
    r.server.peer(r.serverSession())!.notify("tick", 5);
    assert.deepEqual((await reader.read()).value, {
      type: FrameType.NOTIFY,
      method: "tick",
      params: 5,
    });
    reader.releaseLock();
  });
}
