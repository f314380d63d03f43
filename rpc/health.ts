/**
 * Health checking in the shape of `grpc.health.v1`: `health.check` answers
 * whether the server (or one named service) is serving, `health.watch`
 * streams that status and every change of it. Every
 * {@linkcode RpcServer} serves both unless turned off, and a graceful
 * shutdown says `NOT_SERVING` to watchers before its GOAWAY.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { type MethodEntry, Methods } from "./methods.ts";

/** Name of the health check method. */
export const HEALTH_CHECK_METHOD = "health.check";
/** Name of the health watch method, a server stream. */
export const HEALTH_WATCH_METHOD = "health.watch";

/** Whether a server or service takes calls. */
export type HealthStatus = "SERVING" | "NOT_SERVING";

/** What `health.check` answers and `health.watch` streams. */
export interface HealthCheckResponse {
  /** The status. */
  status: HealthStatus;
}

/** Params of `health.check` and `health.watch`; omitted or `""`: the server as a whole. */
export interface HealthCheckRequest {
  /** Service name, as set with {@linkcode Health.set}. */
  service?: string;
}

/**
 * Longest service name taken in params; names are looked up in a map, and
 * a longer one cannot be a service anyone set.
 */
const MAX_SERVICE = 1024;

/**
 * A shutdown waits this long at most for watchers to take `NOT_SERVING`:
 * a watcher whose client grants no CREDIT cannot hold it longer.
 */
const DEFAULT_WAIT_MS = 1000;

/**
 * The health of a server and of the services it names. The server as a
 * whole is the service `""`, `SERVING` from the start; other services exist
 * once {@linkcode Health.set} names them.
 *
 * @example Usage
 * ```ts
 * import { Health } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const health = new Health();
 * health.set("chat", "NOT_SERVING");
 * assert.deepEqual(health.check(), { status: "SERVING" });
 * assert.deepEqual(health.check({ service: "chat" }), { status: "NOT_SERVING" });
 * await health.shutdown();
 * assert.equal(health.status(), "NOT_SERVING");
 * ```
 */
export class Health {
  #statuses = new Map<string, HealthStatus>([["", "SERVING"]]);
  /** Resolved and replaced at each change, waking every watcher. */
  #changed = Promise.withResolvers<void>();
  /** One per running watch; resolved when it ends. */
  #watchers = new Set<PromiseWithResolvers<void>>();
  #shutdown = false;

  /**
   * The status of a service.
   *
   * @param service Service name; `""` for the server as a whole.
   * @returns Its status, or undefined for a service never set.
   */
  status(service = ""): HealthStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Watches running: calls of `health.watch` not yet ended. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /** Whether {@linkcode Health.shutdown} was called: every status stays `NOT_SERVING`. */
  get shuttingDown(): boolean {
    return this.#shutdown;
  }

  /**
   * Sets the status of a service and tells its watchers. Ignored once
   * shutting down, so nothing says `SERVING` during a drain.
   *
   * @param service Service name; `""` for the server as a whole.
   * @param status The new status.
   */
  set(service: string, status: HealthStatus): void {
    if (status !== "SERVING" && status !== "NOT_SERVING") {
      throw new TypeError(`Health status must be SERVING or NOT_SERVING, got '${status}'`);
    }
    if (this.#shutdown || this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    this.#wake();
  }

  /**
   * Turns every service `NOT_SERVING` and ends every watch once its client
   * was sent that. Resolves when each watch has handed its last status to
   * its session (so a GOAWAY sent afterwards follows it on the wire), or
   * after `waitMs`.
   *
   * @param options How long to wait for watchers, in ms. @default {1000}
   * @returns Resolves once the watchers took the change.
   */
  async shutdown(options: { waitMs?: number } = {}): Promise<void> {
    if (!this.#shutdown) {
      this.#shutdown = true;
      for (const service of this.#statuses.keys()) this.#statuses.set(service, "NOT_SERVING");
      this.#wake();
    }
    if (this.#watchers.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#watchers].map((w) => w.promise)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.waitMs ?? DEFAULT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * What `health.check` answers.
   *
   * @param params `{service?}`, or nothing for the server as a whole.
   * @returns The status.
   * @throws {StreamwireError} `not_found` for a service never set,
   *   `invalid_argument` for params of another shape.
   */
  check(params?: HealthCheckRequest | null): HealthCheckResponse {
    return { status: this.#known(serviceOf(params)) };
  }

  /**
   * What `health.watch` streams: the current status, then each change,
   * until `signal` fires or the server shuts down (after `NOT_SERVING`).
   * Changes made faster than the client reads are folded into the latest.
   *
   * @param params `{service?}`, or nothing for the server as a whole.
   * @param signal Ends the watch.
   * @returns The statuses.
   * @throws {StreamwireError} As {@linkcode Health.check}.
   */
  watch(
    params?: HealthCheckRequest | null,
    signal?: AbortSignal,
  ): AsyncIterableIterator<HealthCheckResponse> {
    const service = serviceOf(params);
    this.#known(service);
    return this.#watch(service, signal);
  }

  #known(service: string): HealthStatus {
    const status = this.#statuses.get(service);
    if (status === undefined) {
      throw new StreamwireError(Status.NOT_FOUND, `Unknown service '${service}'`);
    }
    return status;
  }

  #wake(): void {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    changed.resolve();
  }

  async *#watch(service: string, signal?: AbortSignal): AsyncGenerator<HealthCheckResponse> {
    const running = Promise.withResolvers<void>();
    this.#watchers.add(running);
    const aborted = Promise.withResolvers<void>();
    const onAbort = () => aborted.resolve();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      let sent = this.#statuses.get(service)!;
      // The code after each `yield` runs when the consumer asks for the
      // next value: the RPC layer has then queued the previous one.
      yield { status: sent };
      while (!signal?.aborted) {
        const now = this.#statuses.get(service)!;
        if (now !== sent) {
          sent = now;
          yield { status: sent };
        } else if (this.#shutdown) {
          return;
        } else {
          await Promise.race([this.#changed.promise, aborted.promise]);
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#watchers.delete(running);
      running.resolve();
    }
  }
}

function serviceOf(params: unknown): string {
  if (params === undefined || params === null) return "";
  if (typeof params === "object" && !Array.isArray(params)) {
    const service = (params as HealthCheckRequest).service;
    if (service === undefined) return "";
    if (typeof service === "string" && service.length <= MAX_SERVICE) return service;
  }
  throw new StreamwireError(
    Status.INVALID_ARGUMENT,
    `Health params must be {service?: string}, got '${JSON.stringify(params)?.slice(0, 200)}'`,
  );
}

/**
 * A registry that serves `methods` and, beside them, `health.check` and
 * `health.watch` answered from `health`. A method of either name in
 * `methods` wins; methods registered later are served.
 *
 * @param methods The application's methods; not modified.
 * @param health Whose status the methods tell.
 * @returns A registry to serve.
 *
 * @example Usage
 * ```ts
 * import {
 *   Health,
 *   HEALTH_CHECK_METHOD,
 *   HEALTH_WATCH_METHOD,
 *   Methods,
 *   withHealth,
 * } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const served = withHealth(new Methods().unary("ping", () => "pong"), new Health());
 * assert.equal(served.get(HEALTH_CHECK_METHOD)?.kind, "unary");
 * assert.equal(served.get(HEALTH_WATCH_METHOD)?.kind, "server_stream");
 * assert.deepEqual([...served.names()], ["ping", HEALTH_CHECK_METHOD, HEALTH_WATCH_METHOD]);
 * ```
 */
export function withHealth(methods: Methods, health: Health): Methods {
  return new HealthMethods(methods, health);
}

class HealthMethods extends Methods {
  #inner: Methods;
  #entries: Map<string, MethodEntry>;

  constructor(inner: Methods, health: Health) {
    super();
    this.#inner = inner;
    this.#entries = new Map<string, MethodEntry>([
      [HEALTH_CHECK_METHOD, {
        kind: "unary",
        description: "Whether the server (or params.service) is SERVING or NOT_SERVING",
        handler: (params) => health.check(params as HealthCheckRequest),
      }],
      [HEALTH_WATCH_METHOD, {
        kind: "server_stream",
        description: "The health status now, then each change",
        handler: (params, ctx) => health.watch(params as HealthCheckRequest, ctx.signal),
      }],
    ]);
  }

  override get(name: string): MethodEntry | undefined {
    return this.#inner.get(name) ?? this.#entries.get(name);
  }

  override *names(): IterableIterator<string> {
    yield* this.#inner.names();
    for (const name of this.#entries.keys()) {
      if (this.#inner.get(name) === undefined) yield name;
    }
  }
}
