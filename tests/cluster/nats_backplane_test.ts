import assert from "node:assert/strict";
import { NatsBackplane } from "../../cluster/nats_backplane.ts";
import { conformance } from "./_conformance.ts";
import { NatsProcess } from "./_nats.ts";

conformance("nats", async () => {
  const nats = await NatsProcess.start();
  return {
    make: () => NatsBackplane.connect(nats.url, { retention: 16, prefix: "conf" }),
    stop: () => nats.stop(),
    start: () => nats.resume(),
    dispose: () => nats.stop(),
  };
});

Deno.test("NatsBackplane.connect fails clearly when NATS is unreachable", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await assert.rejects(
    NatsBackplane.connect(`nats://127.0.0.1:${port}`, { connectTimeoutMs: 1000 }),
    (e: Error) => e.message.startsWith(`Cannot reach NATS JetStream at 'nats://127.0.0.1:${port}`),
  );
});
