/**
 * One entry point from a URL to a backplane engine, chosen by its scheme:
 * `redis://` and `rediss://` to {@linkcode RedisBackplane}, `nats://` to
 * {@linkcode NatsBackplane}. The in-memory engine lives in one process and
 * has no URL.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Backplane, BackplaneOptions } from "./backplane.ts";
import { NatsBackplane } from "./nats_backplane.ts";
import { RedisBackplane } from "./redis_backplane.ts";
import { redactUrl } from "./_engine.ts";

/** Options of {@linkcode connectBackplane}, those every URL engine takes. */
export interface ConnectBackplaneOptions extends BackplaneOptions {
  /**
   * Reconnection delay after the n-th failed attempt: `min(base * 2^n, max)`
   * ms, with jitter.
   *
   * @default {{ baseMs: 50, maxMs: 2000 }}
   */
  backoff?: { baseMs?: number; maxMs?: number };
  /**
   * How long the connection waits for the engine before it fails.
   *
   * @default {5000}
   */
  connectTimeoutMs?: number;
}

/** The schemes {@linkcode connectBackplane} knows. */
export const BACKPLANE_SCHEMES: readonly string[] = ["redis:", "rediss:", "nats:"];

/**
 * Connects to the backplane engine a URL names.
 *
 * @param url `redis://host:port`, `rediss://host:port` (TLS) or `nats://host:port`.
 * @param options Prefix, retention, backoff and connect timeout.
 * @returns A backplane that is up.
 * @throws {StreamwireError} `invalid_argument` for a URL that does not parse
 *   or whose scheme is not one of {@linkcode BACKPLANE_SCHEMES} (`memory:`
 *   included: an in-memory backplane is made with `MemoryHub`), and
 *   `unavailable` when the engine cannot be reached.
 *
 * @example An unknown scheme is refused before anything is dialled
 * ```ts
 * import { connectBackplane } from "@streamwire/streamwire/cluster";
 * import { Status, StreamwireError } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   connectBackplane("kafka://127.0.0.1:9092"),
 *   (e) =>
 *     e instanceof StreamwireError && e.code === Status.INVALID_ARGUMENT &&
 *     e.message === "Unknown backplane scheme 'kafka:'; expected redis://, rediss:// or nats://",
 * );
 * ```
 */
export function connectBackplane(
  url: string,
  options: ConnectBackplaneOptions = {},
): Promise<Backplane> {
  let scheme: string;
  try {
    scheme = new URL(url).protocol;
  } catch {
    return Promise.reject(
      new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Backplane URL '${redactUrl(url)}' does not parse`,
      ),
    );
  }
  switch (scheme) {
    case "redis:":
    case "rediss:":
      return RedisBackplane.connect(url, options);
    case "nats:":
      return NatsBackplane.connect(url, options);
    case "memory:":
      return Promise.reject(
        new StreamwireError(
          Status.INVALID_ARGUMENT,
          `Backplane scheme 'memory:' has no URL: an in-memory backplane is made in-process with MemoryHub`,
        ),
      );
    default:
      return Promise.reject(
        new StreamwireError(
          Status.INVALID_ARGUMENT,
          `Unknown backplane scheme '${scheme}'; expected redis://, rediss:// or nats://`,
        ),
      );
  }
}
