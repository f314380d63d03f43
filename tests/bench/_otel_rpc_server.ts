// A streamwire RpcServer with the demo methods on 127.0.0.1, for
// otel_bench.ts: `deno run -A tests/bench/_otel_rpc_server.ts <mode>`, where
// mode is `off` (metrics and tracing off), `default` (the defaults: metrics
// on, no tracer provider registered) or `traced` (metrics, and spans and
// histograms into an OpenTelemetry SDK whose exporter drops them).

import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { RpcServer, type RpcServerOptions } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { announce } from "./_child.ts";
import { DroppingExporter } from "./_otel_sdk.ts";

/** Aggregates what is recorded; collected by no one. */
class IdleReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const mode = Deno.args[0];
const options: Partial<RpcServerOptions> = mode === "off"
  ? { metrics: false, telemetry: false }
  : mode === "traced"
  ? {
    telemetry: {
      tracerProvider: new BasicTracerProvider({
        spanProcessors: [new BatchSpanProcessor(new DroppingExporter())],
      }),
      meterProvider: new MeterProvider({ readers: [new IdleReader()] }),
    },
  }
  : {};
// Above the 128 calls the bench keeps in flight: an interceptor makes every
// call asynchronous, so each one counts against the limit (default 100).
const server: RpcServer = new RpcServer({
  methods: demoMethods(() => server),
  maxConcurrentCalls: 1024,
  ...options,
});
announce(Number(new URL(server.listen({ hostname: "127.0.0.1", port: 0 })).port));
