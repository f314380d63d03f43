/**
 * The built-in demo application served by `deno task serve`: an echo
 * server and a chat-room server. Its contract is fixed, so clients in other
 * languages can rely on it. Its own entry point,
 * `@streamwire/streamwire/demo`, apart from the RPC layer.
 *
 * @example Serve the demo
 * ```ts
 * import { demoMethods } from "@streamwire/streamwire/demo";
 * import { connect, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
 * const client = await connect(server.listen({ port: 0 }));
 * assert.equal(await client.call("echo", "hi"), "hi");
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { Methods } from "./methods.ts";
import type { RpcServer } from "./server.ts";

/** Largest `count` stream the demo serves, so one call cannot run forever. */
export const DEMO_MAX_COUNT = 10_000_000;
/** Longest `sleep` the demo accepts, in ms. */
export const DEMO_MAX_SLEEP_MS = 60_000;

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

function finite(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw invalid(
      `${what} must be a finite number, got '${JSON.stringify(value) ?? String(value)}'`,
    );
  }
  return value;
}

function room(params: unknown): string {
  const name = (params as { room?: unknown } | null)?.room;
  if (typeof name !== "string" || name.length === 0) {
    throw invalid(`params.room must be a non-empty string, got '${JSON.stringify(name)}'`);
  }
  return name;
}

/**
 * The demo methods, bound to the server whose topics `chat.*` uses:
 *
 * - `echo`: returns its params.
 * - `add`: params `[a, b]`, returns `a + b`.
 * - `time`: ms since epoch.
 * - `sleep`: params ms, returns true; honours cancellation.
 * - `count`: server stream of `1 … n`.
 * - `sum`: client stream of numbers, returns the total.
 * - `chat.join` / `chat.leave`: params `{room}`; the session joins or leaves topic `room`.
 * - `chat.say`: params `{room, text}`; every member of `room` receives a
 *   BROADCAST with method `room` and params `{from, text}`; returns the
 *   number of members reached.
 *
 * @param server The server the methods run on.
 * @returns The methods.
 *
 * @example Usage
 * ```ts
 * import { demoMethods } from "@streamwire/streamwire/demo";
 * import { connect, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
 * const client = await connect(server.listen({ port: 0 }));
 * assert.equal(await client.call("add", [2, 40]), 42);
 * assert.deepEqual(await Array.fromAsync(client.stream("count", 3)), [1, 2, 3]);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export function demoMethods(server: () => RpcServer): Methods {
  return new Methods()
    .unary("echo", (params) => params)
    .unary("add", (params) => {
      if (!Array.isArray(params) || params.length !== 2) {
        throw invalid(`add takes [a, b], got '${JSON.stringify(params)}'`);
      }
      return finite(params[0], "a") + finite(params[1], "b");
    })
    .unary("time", () => Date.now())
    .unary("sleep", (params, ctx) => {
      const ms = finite(params, "sleep ms");
      if (ms < 0 || ms > DEMO_MAX_SLEEP_MS) {
        throw invalid(`sleep ms must be within 0..${DEMO_MAX_SLEEP_MS}, got '${ms}'`);
      }
      const signal = ctx.signal;
      return new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => {
          signal.removeEventListener("abort", onAbort);
          resolve(true);
        }, ms);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    })
    .serverStream("count", function* (params) {
      const n = finite(params, "count n");
      if (!Number.isInteger(n) || n < 0 || n > DEMO_MAX_COUNT) {
        throw invalid(`count n must be an integer within 0..${DEMO_MAX_COUNT}, got '${n}'`);
      }
      for (let i = 1; i <= n; i++) yield i;
    })
    .clientStream("sum", async (input) => {
      let total = 0;
      for await (const value of input) total += finite(value, "sum item");
      return total;
    })
    .unary("chat.join", (params, ctx) => {
      server().transport.join(ctx.session, room(params));
      return true;
    })
    .unary("chat.leave", (params, ctx) => server().transport.leave(ctx.session, room(params)))
    .unary("chat.say", (params, ctx) => {
      const name = room(params);
      const text = (params as { text?: unknown }).text;
      if (typeof text !== "string") {
        throw invalid(`params.text must be a string, got '${JSON.stringify(text)}'`);
      }
      const { delivered } = server().broadcast(name, { from: ctx.session.id, text }, {
        topic: name,
      });
      return delivered;
    });
}
