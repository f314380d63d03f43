import assert from "node:assert/strict";
import { register } from "prom-client";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { adminApp, metricsRegistry } from "../../rpc/admin.ts";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";
import { waitFor } from "./_rig.ts";

const methods = () =>
  new Methods()
    .unary("echo", (p) => p)
    .unary("missing", () => {
      throw new StreamwireError(Status.NOT_FOUND, "No such row");
    })
    .serverStream("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    });

interface Exposition {
  /** `# TYPE` of each family. */
  types: Map<string, string>;
  /** Each sample, keyed by name and labels as written. */
  samples: Map<string, number>;
}

/** Parses the Prometheus text format, one sample per line. */
function parse(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) {
      types.set(type[1], type[2]);
      continue;
    }
    const sample = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(sample, `not a sample: '${line}'`);
    assert.ok(!samples.has(sample[1]), `sample '${sample[1]}' twice`);
    samples.set(sample[1], Number(sample[2]));
  }
  return { types, samples };
}

async function scrape(server: RpcServer): Promise<Exposition> {
  const res = await adminApp(server).request("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

function serve(options: Partial<RpcServerOptions> = {}) {
  const server = new RpcServer({ methods: methods(), onError: () => {}, ...options });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  return { server, addr };
}

Deno.test("/metrics exposes every family after known traffic, with exact values", async () => {
  const { server, addr } = serve({ maxConnections: 2 });
  const a = await connect(addr, { reconnect: false });
  const b = await connect(addr, { reconnect: false });
  try {
    await assert.rejects(connect(addr, { reconnect: false })); // refused: the server is full
    for (const n of [1, 2, 3]) assert.equal(await a.call("echo", n), n);
    await assert.rejects(a.call("missing"), { codeName: "not_found" });
    await assert.rejects(a.call("nope"), { codeName: "unimplemented" });
    await assert.rejects(a.call("count", 1), { codeName: "unimplemented" }); // a stream, called unary
    const outcomes = await a.batch([{ method: "echo", params: 4 }, { method: "nope" }]);
    assert.deepEqual(outcomes.map((o) => o.ok), [true, false]);
    assert.deepEqual(await Array.fromAsync(a.stream("count", 2)), [0, 1]);
    const pushed = new Promise((resolve) => b.subscribe("news", resolve));
    assert.deepEqual(server.broadcast("news", "hi"), { delivered: 2, dropped: 0 });
    await pushed;

    const before = await scrape(server);
    const sessionB = [...server.transport.sessions()][1]; // in order of acceptance
    server.transport.kick(sessionB.id, "Testing");
    await waitFor(() => server.transport.sessionCount === 1, "the kicked session to close");
    const { types, samples } = await scrape(server);

    const expected: Record<string, string> = {
      streamwire_sessions: "gauge",
      streamwire_topics: "gauge",
      streamwire_outbound_queued_bytes: "gauge",
      streamwire_connections_accepted_total: "counter",
      streamwire_connections_refused_total: "counter",
      streamwire_handshake_failures_total: "counter",
      streamwire_sessions_closed_total: "counter",
      streamwire_dead_peers_total: "counter",
      streamwire_slow_consumer_drops_total: "counter",
      streamwire_broadcasts_total: "counter",
      streamwire_broadcast_deliveries_total: "counter",
      streamwire_frames_received_total: "counter",
      streamwire_frames_sent_total: "counter",
      streamwire_received_bytes_total: "counter",
      streamwire_sent_bytes_total: "counter",
      streamwire_session_errors_total: "counter",
      streamwire_calls_total: "counter",
      streamwire_calls_in_flight: "gauge",
      streamwire_call_duration_seconds: "histogram",
      process_cpu_user_seconds_total: "counter",
      process_resident_memory_bytes: "gauge",
      nodejs_heap_size_used_bytes: "gauge",
    };
    for (const [family, type] of Object.entries(expected)) {
      assert.equal(types.get(family), type, family);
    }
    for (const family of types.keys()) {
      if (types.get(family) === "counter") assert.match(family, /_total$/);
    }

    assert.deepEqual(
      Object.fromEntries([...samples].filter(([k]) => k.startsWith("streamwire_calls_total"))),
      {
        'streamwire_calls_total{method="echo",code="ok"}': 4,
        'streamwire_calls_total{method="missing",code="not_found"}': 1,
        'streamwire_calls_total{method="_unknown",code="unimplemented"}': 2,
        'streamwire_calls_total{method="count",code="unimplemented"}': 1,
        'streamwire_calls_total{method="count",code="ok"}': 1,
      },
    );
    const exact: Record<string, number> = {
      'streamwire_sessions{state="active"}': 1,
      'streamwire_sessions{state="connecting"}': 0,
      'streamwire_sessions{state="closed"}': 0,
      streamwire_topics: 0,
      streamwire_outbound_queued_bytes: 0,
      streamwire_connections_accepted_total: 2,
      streamwire_connections_refused_total: 1,
      streamwire_handshake_failures_total: 0,
      streamwire_sessions_closed_total: 1,
      streamwire_dead_peers_total: 0,
      streamwire_slow_consumer_drops_total: 0,
      streamwire_broadcasts_total: 1,
      streamwire_broadcast_deliveries_total: 2,
      'streamwire_session_errors_total{code="aborted"}': 1,
      'streamwire_calls_in_flight{method="echo"}': 0,
      'streamwire_call_duration_seconds_count{method="echo"}': 4,
      'streamwire_call_duration_seconds_bucket{le="+Inf",method="echo"}': 4,
      'streamwire_call_duration_seconds_count{method="count"}': 1,
      'streamwire_call_duration_seconds_count{method="missing"}': 1,
    };
    for (const [sample, value] of Object.entries(exact)) {
      assert.equal(samples.get(sample), value, sample);
    }
    // Buckets are cumulative and end at the count.
    const echoBuckets = [...samples].filter(([k]) =>
      k.startsWith("streamwire_call_duration_seconds_bucket") && k.endsWith('method="echo"}')
    ).map(([, v]) => v);
    assert.equal(echoBuckets.length, 15);
    assert.deepEqual(echoBuckets, [...echoBuckets].sort((x, y) => x - y));
    // Traffic counts closed sessions too: it never goes down when one closes.
    for (
      const family of [
        "streamwire_frames_received_total",
        "streamwire_frames_sent_total",
        "streamwire_received_bytes_total",
        "streamwire_sent_bytes_total",
      ]
    ) {
      assert.ok(samples.get(family)! >= before.samples.get(family)!, family);
      assert.ok(before.samples.get(family)! > 0, family);
    }
    // At least a frame header (17 bytes) per frame.
    assert.ok(
      samples.get("streamwire_received_bytes_total")! >=
        17 * samples.get("streamwire_frames_received_total")!,
    );
    assert.ok(samples.get("process_resident_memory_bytes")! > 0);
    assert.ok(samples.get("nodejs_heap_size_used_bytes")! > 0);
  } finally {
    await a.close();
    await b.close();
    await server.shutdown();
  }
});

Deno.test("/metrics folds method labels past maxMethods into _other", async () => {
  const { server, addr } = serve({ metrics: { maxMethods: 2 } });
  const client = await connect(addr, { reconnect: false });
  try {
    for (const method of ["echo", "missing", "echo", "missing", "count", "nope"]) {
      await client.call(method, 1).catch(() => {});
    }
    // reflection.list is a third registered method: past the cap.
    await client.call("reflection.list");
    const { samples } = await scrape(server);
    const labels = new Set(
      [...samples.keys()].filter((k) => k.startsWith("streamwire_calls_total"))
        .map((k) => /method="([^"]*)"/.exec(k)![1]),
    );
    assert.deepEqual([...labels].sort(), ["_other", "_unknown", "echo", "missing"]);
    assert.equal(samples.get('streamwire_calls_total{method="_other",code="ok"}'), 1);
    assert.equal(samples.get('streamwire_calls_total{method="_other",code="unimplemented"}'), 1);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("/metrics keeps each server's registry apart from others and from the global one", async () => {
  const one = serve();
  const two = serve({ metrics: false });
  const client = await connect(one.addr, { reconnect: false });
  try {
    await client.call("echo", 1);
    assert.notEqual(metricsRegistry(one.server), metricsRegistry(two.server));
    assert.equal(metricsRegistry(one.server), metricsRegistry(one.server));
    const { samples, types } = await scrape(two.server);
    assert.equal(samples.get("streamwire_connections_accepted_total"), 0);
    assert.equal(types.has("streamwire_calls_total"), false); // metrics: false
    assert.equal(two.server.metrics, undefined);
    assert.doesNotMatch(await register.metrics(), /streamwire_/);
  } finally {
    await client.close();
    await one.server.shutdown();
    await two.server.shutdown();
  }
});
