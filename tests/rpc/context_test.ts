import assert from "node:assert/strict";
import { traceContext } from "../../rpc/trace.ts";
import { KINDS, rig } from "./_rig.ts";

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

interface Seen {
  traceparent: string | null;
  tracestate: string | null;
  metadata: [string, string][];
}

for (const kind of KINDS) {
  Deno.test(`${kind}: traceContext's traceparent reaches ctx.traceparent`, async () => {
    let calls = 0;
    await using r = await rig(kind, {
      client: {
        interceptors: [traceContext(() => {
          calls++;
          return TP;
        })],
      },
    });
    const seen = await r.client.call("ctx") as Seen;
    assert.equal(seen.traceparent, TP);
    assert.equal(seen.tracestate, null);
    assert.deepEqual(seen.metadata, []);
    assert.ok(calls >= 1);
    // A per-call value wins, with tracestate and metadata alongside.
    const own = await r.client.call("ctx", undefined, {
      traceparent: TP2,
      tracestate: "vendor=1",
      metadata: { "x-user": "ada", "x-req": "42" },
    }) as Seen;
    assert.equal(own.traceparent, TP2);
    assert.equal(own.tracestate, "vendor=1");
    assert.deepEqual(own.metadata, [["x-user", "ada"], ["x-req", "42"]]);
    // Batches and streams carry it too.
    const [o] = await r.client.batch([{ method: "ctx" }]);
    assert.equal(o.ok && (o.value as Seen).traceparent, TP);
    const reader = r.client.stream("ticks").getReader();
    await reader.read();
    await reader.cancel();
    // NOTIFY as well.
    r.client.notify("ctx", undefined, { traceparent: TP2 });
    await r.probe.until(() => r.probe.contexts.length === 4, "the NOTIFY handled");
    assert.equal(r.probe.contexts[3].traceparent, TP2);
    assert.equal(r.probe.contexts[3].id, 0);
  });

  Deno.test(`${kind}: without a traceparent, none is seen`, async () => {
    await using r = await rig(kind);
    const seen = await r.client.call("ctx") as Seen;
    assert.equal(seen.traceparent, null);
    const ctx = r.probe.contexts[0];
    assert.ok(ctx.deadline > Date.now() + 20_000, "default 30 s timeout crosses as the deadline");
    assert.equal(ctx.session.id, r.serverSession().id);
  });
}
