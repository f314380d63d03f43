// Reconnection policy of the client: exponential backoff with full jitter.
// Re-exported by client.ts.

/** Reconnection with exponential backoff and full jitter. */
export interface ReconnectOptions {
  /** First delay in ms. @default {100} */
  initialDelayMs?: number;
  /** Growth factor per attempt. @default {2} */
  factor?: number;
  /** Largest delay in ms. @default {30000} */
  maxDelayMs?: number;
  /** Attempts after a connection is lost (or the first one fails) before giving up. @default {5} */
  maxRetries?: number;
}

/** Defaults of {@linkcode ReconnectOptions}. */
export const RECONNECT_DEFAULTS: Required<ReconnectOptions> = {
  initialDelayMs: 100,
  factor: 2,
  maxDelayMs: 30_000,
  maxRetries: 5,
};

/**
 * Full-jitter backoff delay for an attempt (0-based): a uniform random
 * delay between 0 and `min(maxDelayMs, initialDelayMs * factor^attempt)`.
 *
 * @param attempt Attempt number, from 0.
 * @param options Backoff parameters.
 * @returns Delay in ms.
 *
 * @example Usage
 * ```ts
 * import { backoffDelay } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const delay = backoffDelay(3, { initialDelayMs: 100, factor: 2, maxDelayMs: 30_000 });
 * assert.ok(delay >= 0 && delay <= 800);
 * ```
 */
export function backoffDelay(attempt: number, options: ReconnectOptions = {}): number {
  const o = { ...RECONNECT_DEFAULTS, ...options };
  const cap = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** attempt);
  return Math.random() * cap;
}
