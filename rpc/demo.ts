/**
 * The built-in demo application served by `deno task serve`: an echo
 * server and a chat-room server. Its contract ({@linkcode demoContract}) is
 * fixed, so clients in other languages can rely on it, and TypeScript
 * clients call it typed with `client.typed(demoContract)`. Its own entry
 * point, `@streamwire/streamwire/demo`, apart from the RPC layer.
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
import {
  clientStream,
  type ClientStreamMethod,
  type Contract,
  defineContract,
  serverStream,
  type ServerStreamMethod,
  unary,
  type UnaryMethod,
} from "./contract.ts";
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

/** Params of `chat.join` and `chat.leave`. */
export interface RoomParams {
  /** The room, a topic of the server. */
  room: string;
}

/** Params of `chat.say`. */
export interface SayParams extends RoomParams {
  /** What to say. */
  text: string;
}

/** A `chat.say` message as members of the room receive it (a BROADCAST with method `room`). */
export interface ChatMessage {
  /** Session id of the sender. */
  from: string;
  /** What was said. */
  text: string;
}

/** The methods of {@linkcode demoContract}, with their params and results. */
export type DemoShape = {
  /** Returns its params. */
  echo: UnaryMethod<unknown, unknown>;
  /** `[a, b]` to `a + b`. */
  add: UnaryMethod<[number, number], number>;
  /** Ms since epoch. */
  time: UnaryMethod<undefined, number>;
  /** Waits `ms`, then returns true. */
  sleep: UnaryMethod<number, boolean>;
  /** Streams `1 … n`. */
  count: ServerStreamMethod<number, number>;
  /** The total of the numbers sent. */
  sum: ClientStreamMethod<number, number>;
  /** The chat room. */
  chat: {
    /** Joins the room's topic. */
    join: UnaryMethod<RoomParams, boolean>;
    /** Leaves it; false if not a member. */
    leave: UnaryMethod<RoomParams, boolean>;
    /** Broadcasts to the room; returns the members reached. */
    say: UnaryMethod<SayParams, number>;
  };
};

/**
 * The demo's contract; every validator answers `invalid_argument` with the
 * offending value quoted.
 *
 * - `echo`: returns its params.
 * - `add`: params `[a, b]`, returns `a + b`.
 * - `time`: ms since epoch.
 * - `sleep`: params ms, returns true; honours cancellation.
 * - `count`: server stream of `1 … n`.
 * - `sum`: client stream of numbers, returns the total.
 * - `chat.join` / `chat.leave`: params `{room}`; the session joins or leaves topic `room`.
 * - `chat.say`: params `{room, text}`; every member of `room` receives a
 *   BROADCAST with method `room` and params {@linkcode ChatMessage};
 *   returns the number of members reached.
 *
 * @example Call the demo typed
 * ```ts
 * import { demoContract, demoMethods } from "@streamwire/streamwire/demo";
 * import { connect, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
 * const client = await connect(server.listen({ port: 0 }));
 * const demo = client.typed(demoContract);
 * assert.equal(await demo.add([2, 40]), 42);
 * assert.equal(await demo.sum([1, 2, 3]), 6);
 * assert.equal(await demo.chat.join({ room: "lobby" }), true);
 * assert.equal(await demo.chat.say({ room: "lobby", text: "hi" }), 1);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export const demoContract: Contract<DemoShape> = defineContract({
  echo: unary<unknown, unknown>(),
  add: unary<[number, number], number>({
    params: (params) => {
      if (!Array.isArray(params) || params.length !== 2) {
        throw invalid(`add takes [a, b], got '${JSON.stringify(params)}'`);
      }
      return [finite(params[0], "a"), finite(params[1], "b")];
    },
  }),
  time: unary<undefined, number>(),
  sleep: unary<number, boolean>({
    params: (params) => {
      const ms = finite(params, "sleep ms");
      if (ms < 0 || ms > DEMO_MAX_SLEEP_MS) {
        throw invalid(`sleep ms must be within 0..${DEMO_MAX_SLEEP_MS}, got '${ms}'`);
      }
      return ms;
    },
  }),
  count: serverStream<number, number>({
    params: (params) => {
      const n = finite(params, "count n");
      if (!Number.isInteger(n) || n < 0 || n > DEMO_MAX_COUNT) {
        throw invalid(`count n must be an integer within 0..${DEMO_MAX_COUNT}, got '${n}'`);
      }
      return n;
    },
  }),
  sum: clientStream<number, number>({ input: (value) => finite(value, "sum item") }),
  chat: {
    join: unary<RoomParams, boolean>({ params: (params) => ({ room: room(params) }) }),
    leave: unary<RoomParams, boolean>({ params: (params) => ({ room: room(params) }) }),
    say: unary<SayParams, number>({
      params: (params) => {
        const name = room(params);
        const text = (params as { text?: unknown }).text;
        if (typeof text !== "string") {
          throw invalid(`params.text must be a string, got '${JSON.stringify(text)}'`);
        }
        return { room: name, text };
      },
    }),
  },
});

/**
 * The methods of {@linkcode demoContract}, bound to the server whose topics
 * `chat.*` uses.
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
  return new Methods().implement(demoContract, {
    echo: (params) => params,
    add: ([a, b]) => a + b,
    time: () => Date.now(),
    sleep: (ms, ctx) => {
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
    },
    count: function* (n) {
      for (let i = 1; i <= n; i++) yield i;
    },
    sum: async (input) => {
      let total = 0;
      for await (const value of input) total += value;
      return total;
    },
    chat: {
      join: ({ room }, ctx) => {
        server().transport.join(ctx.session, room);
        return true;
      },
      leave: ({ room }, ctx) => server().transport.leave(ctx.session, room),
      say: ({ room, text }, ctx) => {
        const message: ChatMessage = { from: ctx.session.id, text };
        return server().broadcast(room, message, { topic: room }).delivered;
      },
    },
  });
}
