/**
 * What OpenTelemetry and the Prometheus counters cost a server: pipelined
 * unary calls (10,000 per iteration, 128 in flight, 64-byte params) with
 * client and server in separate processes over loopback TCP, against the
 * same server with both off, in one run:
 * `deno bench -A tests/bench/otel_bench.ts`.
 *
 * - baseline: `metrics: false, telemetry: false`;
 * - the defaults: call counters on, no tracer provider registered, so no
 *   spans (what an `RpcServer` does unless told otherwise);
 * - counters, and spans and histograms into an OpenTelemetry SDK
 *   (`BasicTracerProvider` with a `BatchSpanProcessor` whose exporter drops
 *   the spans, `MeterProvider` with a reader);
 * - the same server, and a client tracing its calls too.
 *
 * Figures: docs/PERFORMANCE.md, section "Telemetry".
 *
 * @module
 */

import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { connect, openTelemetry } from "../../rpc/mod.ts";
import { spawnServer } from "./_child.ts";
import { PAYLOAD, pipeline } from "./_clients.ts";
import { DroppingExporter } from "./_otel_sdk.ts";

const CALLS = 10_000;
const IN_FLIGHT = 128;

const [off, defaults, traced] = await Promise.all(
  ["off", "default", "traced"].map((mode) => spawnServer("_otel_rpc_server.ts", [mode])),
);
const target = (port: number) => `tcp://127.0.0.1:${port}`;
const offClient = await connect(target(off.port), { reconnect: false });
const defaultClient = await connect(target(defaults.port), { reconnect: false });
const tracedClient = await connect(target(traced.port), { reconnect: false });
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new DroppingExporter())],
});
const bothClient = await connect(target(traced.port), {
  reconnect: false,
  interceptors: [openTelemetry({ tracerProvider, server: target(traced.port) })],
});

globalThis.addEventListener("unload", () => {
  for (const client of [offClient, defaultClient, tracedClient, bothClient]) client.close();
});

const rows = [
  { name: "server: metrics and tracing off", client: offClient, baseline: true },
  { name: "server: defaults (call counters, no tracer provider)", client: defaultClient },
  { name: "server: counters + OpenTelemetry SDK spans and histograms", client: tracedClient },
  { name: "server and client: OpenTelemetry SDK spans and histograms", client: bothClient },
];
for (const { name, client, baseline } of rows) {
  Deno.bench({
    group: "unary pipelined, 10,000 calls, 128 in flight",
    name,
    baseline,
    n: 30,
    warmup: 10,
    async fn() {
      await pipeline(CALLS, IN_FLIGHT, () => client.call("echo", PAYLOAD));
    },
  });
}
