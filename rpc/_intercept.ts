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
