// Runs a call through a list of interceptors (interceptor.ts), first one outermost.

import type { Call, Interceptor, Next } from "./interceptor.ts";

/**
 * Calls `last` through `interceptors`. Whatever throws synchronously, an
 * interceptor or `last` itself, becomes a rejection: callers only handle those.
 */
export function intercept(
  interceptors: readonly Interceptor[],
  call: Call,
  last: Next,
): Promise<unknown> {
  let next: Next = (c) => {
    try {
      return last(c);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next);
  try {
    return Promise.resolve(next(call));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Marks an interceptor that only sets a missing `traceparent` of calls this
 * side makes from its supplier: a caller with no other interceptor does
 * that inline, without a chain of closures per call.
 */
export const TRACE_SUPPLIER: unique symbol = Symbol("streamwire.traceSupplier");

/** The supplier of an interceptor made by `traceContext()`, if `interceptor` is one. */
export function traceSupplier(interceptor: Interceptor): (() => string | undefined) | undefined {
  return (interceptor as { [TRACE_SUPPLIER]?: () => string | undefined })[TRACE_SUPPLIER];
}
