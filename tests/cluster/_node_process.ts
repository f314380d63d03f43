// One node of the cluster figures, run as its own process:
//   deno run -A tests/cluster/_node_process.ts <node-id> [redis-url]
// Without a Redis URL it is a single server (the baseline). It listens on a
// free loopback port, prints `ready <addr>` on stdout, serves the bench
// methods below and stops on SIGTERM.
//
// - `bench.publish {count, topic?, window?}`: `count` broadcasts of `{i}`,
//   through the cluster when there is one (at most `window` in flight,
//   default 256), else `RpcServer.broadcast` yielding every 128.
// - `bench.one {method, topic?}`: one broadcast of `{t}`, answered once
//   published.
// - `bench.join {topic}`: the caller joins a topic, answered once this node
//   follows the topic's channel.
// - `bench.mem`: this process's memory (`Deno.memoryUsage()`) and sessions.

import { Cluster } from "../../cluster/cluster.ts";
import { RedisBackplane } from "../../cluster/redis_backplane.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";

const [nodeId, redisUrl] = Deno.args;
const methods = new Methods();
const server = new RpcServer({ methods, health: false, logger: () => {} });
const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
const cluster = redisUrl === undefined ? undefined : await Cluster.start(server, {
  backplane: await RedisBackplane.connect(redisUrl),
  nodeId,
  address: addr,
  codecs: ["msgpack"],
});

function publish(
  method: string,
  value: unknown,
  topic: string | null | undefined,
): Promise<unknown> | undefined {
  topic ??= undefined; // msgpack carries an absent topic as null
  if (cluster !== undefined) return cluster.broadcast(method, value, { topic });
  server.broadcast(method, value, { topic });
}

methods
  .unary("bench.publish", async (p) => {
    const { count, topic, window } = p as { count: number; topic?: string; window?: number };
    const start = performance.now();
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const sent = publish(topic ?? "t", { i }, topic);
      if (sent !== undefined) {
        inFlight.push(sent);
        if (inFlight.length >= (window ?? 256)) await inFlight.shift();
      } else if (i % 128 === 127) await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(inFlight);
    return performance.now() - start;
  })
  .unary("bench.one", async (p) => {
    const { method, topic } = p as { method: string; topic?: string };
    await publish(method, { t: 0 }, topic);
    return true;
  })
  .unary("bench.join", async (p, ctx) => {
    const { topic } = p as { topic: string };
    server.transport.join(ctx.session, topic);
    await cluster?.ready(topic);
    return true;
  })
  .unary("bench.mem", () => ({ ...Deno.memoryUsage(), sessions: server.transport.sessionCount }));

console.log(`ready ${addr}`);
const stop = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", () => stop.resolve());
await stop.promise;
if (cluster !== undefined) await cluster.shutdown({ deadlineMs: 0 });
else await server.shutdown({ deadlineMs: 0 });
Deno.exit(0);
