// The interceptors an RpcServer puts before the user's: OpenTelemetry spans
// and histograms (otel.ts), when asked for or when a provider is registered.

import type { Interceptor } from "./interceptor.ts";
import { hasGlobalTracerProvider, openTelemetry, type OpenTelemetryOptions } from "./otel.ts";

/**
 * The server's interceptor list: tracing first, so that its spans cover
 * the user's interceptors, when `telemetry` asks for it or, by default,
 * when a global tracer provider is registered; then the user's.
 */
export function servedInterceptors(
  user: Interceptor[] | undefined,
  telemetry: boolean | OpenTelemetryOptions | undefined,
): Interceptor[] | undefined {
  const traced = telemetry === undefined ? hasGlobalTracerProvider() : telemetry !== false;
  if (!traced) return user;
  return [openTelemetry(typeof telemetry === "object" ? telemetry : {}), ...user ?? []];
}
