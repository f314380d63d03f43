import assert from "node:assert/strict";
import { connectBackplane } from "../../cluster/connect_backplane.ts";
import { NatsBackplane } from "../../cluster/nats_backplane.ts";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { freePort } from "./_child.ts";
import { NatsProcess } from "./_nats.ts";
import { RedisProcess } from "./_redis.ts";

function invalid(message: string) {
  return (e: Error) =>
    e instanceof StreamwireError && e.code === Status.INVALID_ARGUMENT && e.message === message;
}

Deno.test("connectBackplane picks the engine by scheme", async () => {
  const nats = await NatsProcess.start();
  const redis = await RedisProcess.start();
  try {
    const n = await connectBackplane(nats.url, { prefix: "cb" });
    const r = await connectBackplane(redis.url, { prefix: "cb" });
    try {
      assert.ok(n instanceof NatsBackplane);
      assert.ok(r instanceof RedisBackplane);
      for (const b of [n, r]) {
        assert.equal(b.status, "up");
        const offset = await b.append("t", "topic:t", new Uint8Array([5]));
        assert.deepEqual((await b.read("t", 0, 10)).entries.map((e) => e.offset), [offset]);
      }
    } finally {
      await n.close();
      await r.close();
    }
  } finally {
    await nats.stop();
    await redis.stop();
  }
});

Deno.test("connectBackplane refuses memory:, unknown schemes and URLs that do not parse", async () => {
  await assert.rejects(
    connectBackplane("memory:"),
    invalid(
      "Backplane scheme 'memory:' has no URL: an in-memory backplane is made in-process with MemoryHub",
    ),
  );
  await assert.rejects(
    connectBackplane("amqp://guest:secret@127.0.0.1:5672"),
    invalid("Unknown backplane scheme 'amqp:'; expected redis://, rediss:// or nats://"),
  );
  await assert.rejects(
    connectBackplane("127.0.0.1:4222"),
    invalid("Backplane URL '127.0.0.1:4222' does not parse"),
  );
  await assert.rejects(
    connectBackplane("nats//user:secret@host"),
    invalid("Backplane URL 'nats//user:***@host' does not parse"),
  );
});

Deno.test("connectBackplane reports an unreachable NATS server as unavailable, without its password", async () => {
  const port = freePort();
  await assert.rejects(
    connectBackplane(`nats://u:secret@127.0.0.1:${port}`, { connectTimeoutMs: 1000 }),
    (e: Error) =>
      e instanceof StreamwireError && e.code === Status.UNAVAILABLE &&
      e.message.startsWith(`Cannot reach NATS JetStream at 'nats://u:***@127.0.0.1:${port}'`) &&
      !e.message.includes("secret"),
  );
});
