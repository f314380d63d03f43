import assert from "node:assert/strict";
import { FrameType } from "../../codec/constants.ts";
import type { Message } from "../../codec/message.ts";
import { getCodec } from "../../codec/payload_codec.ts";
import { connect } from "../../rpc/client.ts";
import { Health, HEALTH_CHECK_METHOD, HEALTH_WATCH_METHOD } from "../../rpc/health.ts";
import { Methods } from "../../rpc/methods.ts";
import { REFLECTION_METHOD } from "../../rpc/reflection.ts";
import { RpcServer } from "../../rpc/server.ts";

const quiet = () => {};

Deno.test("health.check answers SERVING for the server and the status of a named service", async () => {
  const server = new RpcServer({ methods: new Methods(), logger: quiet });
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
  });
  try {
    assert.deepEqual(await client.call(HEALTH_CHECK_METHOD), { status: "SERVING" });
    assert.deepEqual(await client.call(HEALTH_CHECK_METHOD, { service: "" }), {
      status: "SERVING",
    });
    await assert.rejects(client.call(HEALTH_CHECK_METHOD, { service: "chat" }), {
      codeName: "not_found",
      message: "Unknown service 'chat'",
    });
    await assert.rejects(client.call(HEALTH_CHECK_METHOD, ["chat"]), {
      codeName: "invalid_argument",
    });
    server.health!.set("chat", "NOT_SERVING");
    assert.deepEqual(await client.call(HEALTH_CHECK_METHOD, { service: "chat" }), {
      status: "NOT_SERVING",
    });
    const listed = await client.call(REFLECTION_METHOD) as { name: string; kind: string }[];
    assert.deepEqual(
      listed.filter((m) => m.name.startsWith("health.")).map((m) => [m.name, m.kind]),
      [[HEALTH_CHECK_METHOD, "unary"], [HEALTH_WATCH_METHOD, "server_stream"]],
    );
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("health.watch sends the status now and then each change", async () => {
  const server = new RpcServer({ methods: new Methods(), logger: quiet });
  server.health!.set("chat", "SERVING");
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
  });
  const reader = client.stream(HEALTH_WATCH_METHOD, { service: "chat" }).getReader();
  try {
    assert.deepEqual((await reader.read()).value, { status: "SERVING" });
    server.health!.set("chat", "NOT_SERVING");
    assert.deepEqual((await reader.read()).value, { status: "NOT_SERVING" });
    server.health!.set("", "NOT_SERVING"); // another service: nothing for this watcher
    server.health!.set("chat", "SERVING");
    assert.deepEqual((await reader.read()).value, { status: "SERVING" });
  } finally {
    await reader.cancel();
    await client.close();
    await server.shutdown();
  }
});

Deno.test("shutdown sends NOT_SERVING to watchers before the connection's GOAWAY, then ends the watch", async () => {
  const server = new RpcServer({ methods: new Methods(), logger: quiet });
  const seen: string[] = [];
  const tap = {
    transform(message: Message, controller: TransformStreamDefaultController<Message>) {
      if (message.type === FrameType.GOAWAY) seen.push("GOAWAY");
      if (message.type === FrameType.DATA) {
        seen.push((getCodec("json").decode(message.data) as { status: string }).status);
      }
      controller.enqueue(message);
    },
  };
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
    codecs: ["json"],
    inbound: { messages: [tap] },
  });
  const reader = client.stream(HEALTH_WATCH_METHOD).getReader();
  assert.deepEqual((await reader.read()).value, { status: "SERVING" });
  const stopping = server.shutdown();
  assert.deepEqual((await reader.read()).value, { status: "NOT_SERVING" });
  assert.equal((await reader.read()).done, true);
  await stopping;
  await client.close();
  assert.deepEqual(seen, ["SERVING", "NOT_SERVING", "GOAWAY"]);
  assert.equal(server.health!.status(), "NOT_SERVING");
  server.health!.set("", "SERVING"); // ignored while shutting down
  assert.equal(server.health!.status(), "NOT_SERVING");
});

Deno.test("health: false serves no health methods; a method of the user's of that name wins", async () => {
  const off = new RpcServer({ methods: new Methods(), health: false, logger: quiet });
  const mine = new RpcServer({
    methods: new Methods().unary(HEALTH_CHECK_METHOD, () => "my own"),
    health: new Health(),
    logger: quiet,
  });
  const a = await connect(off.listen({ hostname: "127.0.0.1", port: 0 }), { reconnect: false });
  const b = await connect(mine.listen({ hostname: "127.0.0.1", port: 0 }), { reconnect: false });
  try {
    assert.equal(off.health, undefined);
    await assert.rejects(a.call(HEALTH_CHECK_METHOD), { codeName: "unimplemented" });
    await assert.rejects(a.stream(HEALTH_WATCH_METHOD).getReader().read(), {
      codeName: "unimplemented",
    });
    const listed = await a.call(REFLECTION_METHOD) as { name: string }[];
    assert.ok(!listed.some((m) => m.name.startsWith("health.")), JSON.stringify(listed));
    assert.equal(await b.call(HEALTH_CHECK_METHOD), "my own");
  } finally {
    await Promise.all([a.close(), b.close()]);
    await Promise.all([off.shutdown(), mine.shutdown()]);
  }
});
