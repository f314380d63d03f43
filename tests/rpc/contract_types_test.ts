// What the type checker accepts and rejects for contracts: `deno check`
// verifies every `@ts-expect-error` below has an error to expect. The
// rejected calls sit in functions that never run.

import {
  bidi,
  clientStream,
  defineContract,
  Methods,
  type RpcClient,
  serverStream,
  type StandardSchemaV1,
  unary,
} from "../../rpc/mod.ts";
import { demoContract } from "../../rpc/demo.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
function assertType<_ extends true>(): void {}

const contract = defineContract({
  add: unary<[number, number], number>(),
  time: unary<undefined, number>(),
  count: serverStream<number, number>(),
  sum: clientStream<number, number>(),
  tagged: clientStream<string, string[], { tag: string }>(),
  shout: bidi<string, string>(),
  chat: { join: unary<{ room: string }, boolean>() },
  "room.say": unary<{ room: string; text: string }, number>(),
});

const handlers = {
  add: ([a, b]: [number, number]) => a + b,
  time: () => Date.now(),
  count: function* (n: number) {
    for (let i = 1; i <= n; i++) yield i;
  },
  sum: async (input: ReadableStream<number>) => (await Array.fromAsync(input)).length,
  tagged: async (input: ReadableStream<string>, ctx: { params: { tag: string } }) =>
    (await Array.fromAsync(input)).map((s) => `${ctx.params.tag}${s}`),
  shout: (input: ReadableStream<string>) =>
    input.pipeThrough(new TransformStream({ transform: (s, c) => c.enqueue(s.toUpperCase()) })),
  chat: { join: () => true },
  "room.say": () => 1,
};

Deno.test("a contract's handlers and typed client have the contract's types", () => {
  // Handlers typed only by the contract: params, input and ctx.params are inferred.
  new Methods().implement(contract, {
    add: ([a, b]) => a + b,
    time: () => Date.now(),
    count: async function* (n, ctx) {
      for (let i = 1; i <= n && !ctx.signal.aborted; i++) yield i;
    },
    sum: async (input) => {
      let total = 0;
      for await (const n of input) total += n;
      return total;
    },
    tagged: async (input, ctx) => (await Array.fromAsync(input)).map((s) => ctx.params.tag + s),
    shout: async function* (input) {
      for await (const s of input) yield s.toUpperCase();
    },
    chat: { join: ({ room }) => room.length > 0 },
    "room.say": ({ text }) => Promise.resolve(text.length),
  });
  new Methods().implement(demoContract, {
    echo: (p) => p,
    add: ([a, b]) => a + b,
    time: () => 0,
    sleep: () => true,
    count: () => [1],
    sum: () => 0,
    chat: { join: () => true, leave: () => false, say: () => 0 },
  });
});

// Never run: checked only.
export function rejected(): void {
  // @ts-expect-error a handler is missing (`room.say`)
  new Methods().implement(contract, { ...handlers, "room.say": undefined });
  const { chat: _chat, ...withoutChat } = handlers;
  // @ts-expect-error a group is missing
  new Methods().implement(contract, withoutChat);
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error wrong params type
    add: ([a, b]: [string, string]) => Number(a + b),
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error wrong result type
    add: ([a, b]) => `${a + b}`,
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error wrong result type, asynchronously
    time: () => Promise.resolve("now"),
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error a unary handler for a server stream
    count: (n: number) => n + 1,
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error a unary handler for a client stream
    sum: (n: number) => n,
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error a stream of the wrong type
    count: function* () {
      yield "one";
    },
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error input of the wrong type
    shout: (input: ReadableStream<number>) => input,
  });
  new Methods().implement(contract, {
    ...handlers,
    // @ts-expect-error a method the contract does not have
    extra: () => 1,
  });
  // @ts-expect-error a validator of another type than the params
  unary<number, number>({ params: (v: unknown) => String(v) });
}

// Never run: checked only.
export async function typedCalls(client: RpcClient): Promise<void> {
  const api = client.typed(contract);
  assertType<Equal<Awaited<ReturnType<typeof api.add>>, number>>();
  assertType<Equal<ReturnType<typeof api.count>, ReadableStream<number>>>();
  assertType<Equal<ReturnType<typeof api.sum>, Promise<number>>>();
  assertType<
    Equal<
      ReturnType<typeof api.shout>,
      { readable: ReadableStream<string>; writable: WritableStream<string> }
    >
  >();
  assertType<Equal<Awaited<ReturnType<typeof api.chat.join>>, boolean>>();
  assertType<Equal<Awaited<ReturnType<(typeof api)["room.say"]>>, number>>();

  const sum: number = await api.add([2, 40], { timeout: 1000 });
  await api.time();
  await api.sum([1, 2, 3]);
  await api.sum(ReadableStream.from([1]), { signal: AbortSignal.timeout(1000) });
  await api.tagged(["a"], { params: { tag: "#" } });
  await api.chat.join({ room: "lobby" });
  await api["room.say"]({ room: "lobby", text: "hi" });
  // @ts-expect-error params of the wrong type
  await api.add(["2", "40"]);
  // @ts-expect-error params are required
  await api.add();
  // @ts-expect-error the result is a number
  const wrong: string = await api.add([1, 2]);
  // @ts-expect-error values of the wrong type
  await api.sum(["1"]);
  // @ts-expect-error a client stream whose OPEN params are required
  await api.tagged(["a"]);
  // @ts-expect-error a method the contract does not have
  api.nothing();
  // @ts-expect-error the flat key is not a group
  api.room.say({ room: "lobby", text: "hi" });
  const writer = api.shout().writable.getWriter();
  // @ts-expect-error the bidi stream takes strings
  await writer.write(1);
  void sum, wrong;

  const demo = client.typed(demoContract);
  assertType<Equal<Awaited<ReturnType<typeof demo.chat.say>>, number>>();
  assertType<Equal<ReturnType<typeof demo.count>, ReadableStream<number>>>();
}

// A Standard Schema's output type is the params type when none is given.
const numberPair: StandardSchemaV1<unknown, [number, number]> = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (value) =>
      Array.isArray(value) ? { value: [Number(value[0]), Number(value[1])] } : {
        issues: [{ message: "Expected a pair" }],
      },
  },
};
const inferred = unary({ params: numberPair });
assertType<Equal<NonNullable<(typeof inferred)["~types"]>["params"], [number, number]>>();

// The base of the rejected cases is accepted as it is.
export function accepted(): void {
  new Methods().implement(contract, handlers);
}
