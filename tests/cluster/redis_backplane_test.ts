import assert from "node:assert/strict";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { conformance } from "./_conformance.ts";
import { freePort } from "./_child.ts";
import { RedisProcess } from "./_redis.ts";

conformance("redis", async () => {
  const redis = await RedisProcess.start();
  return {
    make: () =>
      RedisBackplane.connect(redis.url, { retention: 16, maxAppendMany: 64, prefix: "conf" }),
    stop: () => redis.stop(),
    start: () => redis.resume(),
    dispose: () => redis.stop(),
  };
});

Deno.test("RedisBackplane.connect fails clearly when Redis is unreachable", async () => {
  const port = freePort();
  await assert.rejects(
    RedisBackplane.connect(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 1000 }),
    (e: Error) => e.message.startsWith(`Cannot reach Redis at 'redis://127.0.0.1:${port}`),
  );
});
