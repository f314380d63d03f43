import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { clusterCases } from "./_cases.ts";
import { faultCases } from "./_faults.ts";
import { RedisProcess } from "./_redis.ts";

clusterCases("redis", async () => {
  const redis = await RedisProcess.start();
  return {
    make: () => RedisBackplane.connect(redis.url, { prefix: "cases" }),
    dispose: () => redis.stop(),
  };
});

faultCases("redis", async () => {
  const redis = await RedisProcess.start();
  return {
    url: redis.url,
    make: (prefix) => RedisBackplane.connect(redis.url, prefix ? { prefix } : {}),
    stop: () => redis.stop(),
    resume: () => redis.resume(),
    dispose: () => redis.stop(),
  };
});
