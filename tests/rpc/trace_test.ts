import assert from "node:assert/strict";
import { type Context, context, ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import { rig } from "./_rig.ts";

/**
 * A synchronous context manager: enough for a test, since the traceparent
 * of a call is taken while `client.call` runs.
 */
function installStackContextManager(): () => void {
  const stack: Context[] = [];
  context.setGlobalContextManager({
    active: () => stack.at(-1) ?? ROOT_CONTEXT,
    with: (ctx, fn, thisArg, ...args) => {
      stack.push(ctx);
      try {
        return fn.call(thisArg, ...args);
      } finally {
        stack.pop();
      }
    },
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      stack.length = 0;
      return this;
    },
  });
  return () => context.disable();
}

Deno.test("a call made inside an active OpenTelemetry span carries its traceparent", async () => {
  const uninstall = installStackContextManager();
  try {
    await using r = await rig("memory");
    const span = trace.wrapSpanContext({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      traceFlags: TraceFlags.SAMPLED,
    });
    const inside = await context.with(
      trace.setSpan(context.active(), span),
      () => r.client.call("ctx"),
    ) as { traceparent: string | null };
    assert.equal(inside.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    const outside = await r.client.call("ctx") as { traceparent: string | null };
    assert.equal(outside.traceparent, null);
  } finally {
    uninstall();
  }
});
