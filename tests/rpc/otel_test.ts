import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { openTelemetry } from "../../rpc/otel.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";

/** A reader that collects when asked, for tests. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const methods = () =>
  new Methods()
    .unary("echo", (p) => p)
    .unary("missing", () => {
      throw new StreamwireError(Status.NOT_FOUND, "No such row");
    })
    .unary("broken", () => {
      throw new Error("disk on fire");
    })
    .serverStream("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    });

interface Rig {
  client: RpcClient;
  server: RpcServer;
  port: number;
  exporter: InMemorySpanExporter;
  reader: TestReader;
  close(): Promise<void>;
}

/** A server and a client over TCP, both traced into one exporter. */
async function rig(serverOptions: Partial<RpcServerOptions> = {}): Promise<Rig> {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const server = new RpcServer({
    methods: methods(),
    telemetry: { tracerProvider, meterProvider },
    onError: () => {},
    ...serverOptions,
  });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await connect(addr, {
    reconnect: false,
    interceptors: [openTelemetry({ tracerProvider, meterProvider, server: addr })],
  });
  return {
    client,
    server,
    port: Number(new URL(addr).port),
    exporter,
    reader,
    async close() {
      await client.close();
      await server.shutdown();
    },
  };
}

function byKind(spans: ReadableSpan[], kind: SpanKind): ReadableSpan[] {
  return spans.filter((s) => s.kind === kind);
}

function assertChild(child: ReadableSpan, parent: ReadableSpan): void {
  assert.equal(child.spanContext().traceId, parent.spanContext().traceId);
  assert.equal(child.parentSpanContext?.spanId, parent.spanContext().spanId);
}

Deno.test("openTelemetry links a client span and a server span in one trace for a unary call", async () => {
  const t = await rig();
  try {
    assert.equal(await t.client.call("echo", "hi"), "hi");
  } finally {
    await t.close();
  }
  const spans = t.exporter.getFinishedSpans();
  assert.equal(spans.length, 2);
  const [made] = byKind(spans, SpanKind.CLIENT);
  const [served] = byKind(spans, SpanKind.SERVER);
  assertChild(served, made);
  assert.equal(made.parentSpanContext, undefined);
  for (const span of [made, served]) {
    assert.equal(span.name, "echo");
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(span.attributes, {
      "rpc.system.name": "streamwire",
      "rpc.method": "echo",
      "rpc.status_code": "ok",
      "server.address": "127.0.0.1",
      "server.port": t.port,
    });
  }
});

Deno.test("openTelemetry continues a traceparent set on the call", async () => {
  const t = await rig();
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  try {
    await t.client.call("echo", 1, { traceparent });
  } finally {
    await t.close();
  }
  const [made] = byKind(t.exporter.getFinishedSpans(), SpanKind.CLIENT);
  const [served] = byKind(t.exporter.getFinishedSpans(), SpanKind.SERVER);
  assert.equal(made.spanContext().traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert.equal(made.parentSpanContext?.spanId, "00f067aa0ba902b7");
  assertChild(served, made);
});

Deno.test("openTelemetry marks failures: error.type on both sides, span errors for the server's faults only", async () => {
  const t = await rig();
  try {
    await assert.rejects(t.client.call("missing"), { codeName: "not_found" });
    await assert.rejects(t.client.call("broken"), { codeName: "unknown" });
    await assert.rejects(t.client.call("nope"), { codeName: "unimplemented" });
  } finally {
    await t.close();
  }
  const spans = t.exporter.getFinishedSpans();
  const find = (name: string, kind: SpanKind) =>
    spans.find((s) => s.name === name && s.kind === kind)!;

  const missingClient = find("missing", SpanKind.CLIENT);
  const missingServer = find("missing", SpanKind.SERVER);
  assertChild(missingServer, missingClient);
  assert.equal(missingClient.status.code, SpanStatusCode.ERROR);
  assert.equal(missingClient.status.message, "No such row");
  assert.equal(missingServer.status.code, SpanStatusCode.UNSET); // the caller's doing
  for (const span of [missingClient, missingServer]) {
    assert.equal(span.attributes["rpc.status_code"], "not_found");
    assert.equal(span.attributes["error.type"], "not_found");
  }

  const brokenServer = find("broken", SpanKind.SERVER);
  assert.equal(brokenServer.status.code, SpanStatusCode.ERROR);
  assert.equal(brokenServer.status.message, "disk on fire");
  assert.equal(brokenServer.attributes["error.type"], "unknown");
  assert.equal(find("broken", SpanKind.CLIENT).attributes["error.type"], "unknown");

  // An unknown method never reaches the server's handlers: a client span only.
  assert.equal(spans.filter((s) => s.name === "nope").length, 1);
  assert.equal(find("nope", SpanKind.CLIENT).attributes["rpc.status_code"], "unimplemented");
});

Deno.test("openTelemetry makes one client span per batch and one server span per entry, its children", async () => {
  const t = await rig();
  try {
    const outcomes = await t.client.batch([
      { method: "echo", params: 1 },
      { method: "missing" },
      { method: "echo", params: 2 },
    ]);
    assert.deepEqual(outcomes.map((o) => o.ok), [true, false, true]);
  } finally {
    await t.close();
  }
  const spans = t.exporter.getFinishedSpans();
  const [made] = byKind(spans, SpanKind.CLIENT);
  const served = byKind(spans, SpanKind.SERVER);
  assert.equal(made.name, "batch");
  assert.equal(made.attributes["rpc.method"], undefined);
  assert.equal(made.attributes["rpc.status_code"], "ok");
  assert.equal(made.attributes["streamwire.batch.size"], 3);
  assert.equal(made.attributes["streamwire.batch.failed"], 1);
  assert.deepEqual(served.map((s) => s.name).sort(), ["echo", "echo", "missing"]);
  for (const span of served) assertChild(span, made);
  assert.equal(served.find((s) => s.name === "missing")!.attributes["error.type"], "not_found");
});

Deno.test("openTelemetry makes one span per stream, from start to end, with events", async () => {
  const t = await rig();
  try {
    assert.deepEqual(await Array.fromAsync(t.client.stream("count", 3)), [0, 1, 2]);
  } finally {
    await t.close();
  }
  const spans = t.exporter.getFinishedSpans();
  assert.equal(spans.length, 2);
  const [made] = byKind(spans, SpanKind.CLIENT);
  const [served] = byKind(spans, SpanKind.SERVER);
  assertChild(served, made);
  for (const span of [made, served]) {
    assert.equal(span.name, "count");
    assert.equal(span.attributes["rpc.status_code"], "ok");
    assert.deepEqual(span.events.map((e) => e.name), ["rpc.stream.start", "rpc.stream.end"]);
    assert.deepEqual(span.events[1].attributes, { "rpc.status_code": "ok" });
  }
});

Deno.test("openTelemetry records rpc.client.call.duration and rpc.server.call.duration in seconds", async () => {
  const t = await rig();
  try {
    await t.client.call("echo", 1);
    await t.client.call("echo", 2);
    await assert.rejects(t.client.call("missing"));
  } finally {
    await t.close();
  }
  const { resourceMetrics } = await t.reader.collect();
  const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  for (const name of ["rpc.client.call.duration", "rpc.server.call.duration"]) {
    const metric = metrics.find((m) => m.descriptor.name === name)!;
    assert.equal(metric.descriptor.unit, "s");
    const points = metric.dataPoints as DataPoint<Histogram>[];
    const count = (method: string, code: string) =>
      points.find((p) =>
        p.attributes["rpc.method"] === method && p.attributes["rpc.status_code"] === code
      )?.value.count;
    assert.equal(count("echo", "ok"), 2, name);
    assert.equal(count("missing", "not_found"), 1, name);
    const failed = points.find((p) => p.attributes["rpc.method"] === "missing")!;
    assert.equal(failed.attributes["error.type"], "not_found");
    assert.equal(failed.attributes["rpc.system.name"], "streamwire");
    assert.equal(failed.attributes["server.port"], t.port);
  }
});

Deno.test("RpcServer traces nothing with telemetry false, and without a global provider by default", async () => {
  for (const telemetry of [false, undefined]) {
    const t = await rig({ telemetry });
    try {
      await t.client.call("echo", 1);
    } finally {
      await t.close();
    }
    const spans = t.exporter.getFinishedSpans();
    assert.deepEqual(spans.map((s) => s.kind), [SpanKind.CLIENT]);
  }
});
