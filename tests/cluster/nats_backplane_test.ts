import assert from "node:assert/strict";
import { NatsBackplane } from "../../cluster/nats_backplane.ts";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { conformance } from "./_conformance.ts";
import { freePort } from "./_child.ts";
import { NatsProcess } from "./_nats.ts";

conformance("nats", async () => {
  const nats = await NatsProcess.start();
  return {
    make: () =>
      NatsBackplane.connect(nats.url, { retention: 16, maxAppendMany: 64, prefix: "conf" }),
    stop: () => nats.stop(),
    start: () => nats.resume(),
    dispose: () => nats.stop(),
  };
});

Deno.test("NatsBackplane.connect fails clearly when NATS is unreachable", async () => {
  const port = freePort();
  await assert.rejects(
    NatsBackplane.connect(`nats://127.0.0.1:${port}`, { connectTimeoutMs: 1000 }),
    (e: Error) => e.message.startsWith(`Cannot reach NATS JetStream at 'nats://127.0.0.1:${port}`),
  );
});

Deno.test("NatsBackplane refuses publishes and appends past maxPendingBytes until earlier ones are confirmed", async () => {
  const nats = await NatsProcess.start();
  const b = await NatsBackplane.connect(nats.url, { maxPendingBytes: 10 });
  const exhausted = (message: string) => (e: Error) =>
    e instanceof StreamwireError && e.code === Status.RESOURCE_EXHAUSTED && e.message === message;
  try {
    const first = b.publish("ch", new Uint8Array(8));
    await assert.rejects(
      b.publish("ch", new Uint8Array(8)),
      exhausted("Pending bytes '16' exceed maxPendingBytes '10'"),
    );
    await assert.rejects(
      b.append("log", "ch", new Uint8Array(3)),
      exhausted("Pending bytes '11' exceed maxPendingBytes '10'"),
    );
    await first;
    // Confirmed: room again.
    await b.publish("ch", new Uint8Array(8));
    assert.ok(await b.append("log", "ch", new Uint8Array(10)) > 0);
  } finally {
    await b.close();
    await nats.stop();
  }
});
