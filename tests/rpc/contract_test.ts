// Typed contracts at run time: implementing, calling every kind typed,
// validating params and stream input, reflection of descriptions, and the
// demo written as a contract.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import {
  bidi,
  clientStream,
  defineContract,
  Methods,
  REFLECTION_METHOD,
  serverStream,
  type StandardIssue,
  type StandardSchemaV1,
  typedClient,
  unary,
} from "../../rpc/mod.ts";
import { demoContract, demoMethods } from "../../rpc/demo.ts";
import { rejectsWith, rig } from "./_rig.ts";

/** A hand-written Standard Schema, as zod or valibot would give, optionally asynchronous. */
function schema<T>(
  check: (value: unknown) => T | StandardIssue[],
  async = false,
): StandardSchemaV1<unknown, T> {
  return {
    "~standard": {
      version: 1,
      vendor: "test",
      validate(value) {
        const out = check(value);
        const result = Array.isArray(out) && out.length > 0 && "message" in out[0]
          ? { issues: out as StandardIssue[] }
          : { value: out as T };
        return async ? Promise.resolve(result) : result;
      },
    },
  };
}

const point = (async: boolean) =>
  schema<{ x: number; y: number }>((v) => {
    const p = v as { x?: unknown; y?: unknown };
    const issues: StandardIssue[] = [];
    if (typeof p?.x !== "number") issues.push({ message: "Expected number", path: ["x"] });
    if (typeof p?.y !== "number") issues.push({ message: "Expected number", path: [{ key: "y" }] });
    return issues.length > 0 ? issues : { x: p.x as number, y: p.y as number };
  }, async);

const geo = defineContract({
  norm: unary<{ x: number; y: number }, number>({
    description: "Length of a vector",
    params: point(false),
  }),
  later: unary({ params: point(true) }),
  steps: serverStream<number, number>({ params: schema((v) => Number(v)) }),
  stepsLater: serverStream<number, number>({
    params: schema((v) => typeof v === "number" ? v : [{ message: "Expected number" }], true),
  }),
  total: clientStream<number, number, { scale: number } | undefined>({
    input: (v) => {
      if (typeof v !== "number") throw new TypeError(`Expected a number, got '${v}'`);
      return v;
    },
    params: (p) => ({ scale: Number((p as { scale?: unknown })?.scale ?? 1) }),
  }),
  upper: bidi<string, string>({
    input: schema((v) => typeof v === "string" ? v : [{ message: "Expected string" }], true),
  }),
  shape: {
    area: unary<{ w: number; h: number }, number>({
      params: async (p) => {
        await Promise.resolve();
        const { w, h } = p as { w: number; h: number };
        if (w < 0) throw new StreamwireError(Status.OUT_OF_RANGE, `w '${w}' is negative`);
        return { w, h };
      },
    }),
  },
  "shape.kind": unary<undefined, string>({ description: "A dotted key" }),
  seen: unary<unknown, unknown>({ params: (p) => ({ checked: p }) }),
});

const geoMethods = () =>
  new Methods().implement(geo, {
    norm: ({ x, y }) => Math.hypot(x, y),
    later: (p, ctx) => [p, ctx.params],
    steps: function* (n) {
      for (let i = 1; i <= n; i++) yield i;
    },
    stepsLater: (n) => ReadableStream.from([n, n * 2]),
    total: async (input, ctx) => {
      let total = 0;
      for await (const n of input) total += n;
      return total * (ctx.params?.scale ?? 1);
    },
    upper: async function* (input) {
      for await (const s of input) yield s.toUpperCase();
    },
    shape: { area: ({ w, h }) => w * h },
    "shape.kind": () => "rectangle",
    seen: (p, ctx) => ({ p, ctx: ctx.params, method: ctx.method }),
  });

Deno.test("a typed client calls every kind of method of a contract", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const api = r.client.typed(geo);
  assert.equal(await api.norm({ x: 3, y: 4 }, { timeout: 5_000 }), 5);
  assert.deepEqual(await Array.fromAsync(api.steps(3)), [1, 2, 3]);
  assert.equal(await api.total([1, 2, 3]), 6);
  assert.equal(await api.total(ReadableStream.from([1, 2]), { params: { scale: 10 } }), 30);
  assert.equal(
    await api.total((async function* () {
      yield 4;
    })()),
    4,
  );
  const { readable, writable } = api.upper();
  const writer = writable.getWriter();
  await writer.write("a");
  await writer.write("b");
  await writer.close();
  assert.deepEqual(await Array.fromAsync(readable), ["A", "B"]);
  assert.equal(await api.shape.area({ w: 2, h: 3 }), 6);
  assert.equal(await api["shape.kind"](), "rectangle");
});

Deno.test("a typed client's groups mirror the contract and are frozen", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const api = r.client.typed(geo);
  assert.deepEqual(Object.keys(api), [...Object.keys(geo.shape)]);
  assert.ok(Object.isFrozen(api) && Object.isFrozen(api.shape));
  assert.deepEqual([...geo.methods.keys()].slice(-3), ["shape.area", "shape.kind", "seen"]);
});

Deno.test("a Standard Schema's issues answer invalid_argument with their paths", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const error = await rejectsWith(r.client.call("norm", { x: "3" }), Status.INVALID_ARGUMENT);
  assert.equal(error.message, "Invalid params of 'norm': x: Expected number; y: Expected number");
  const later = await rejectsWith(r.client.call("later", {}), Status.INVALID_ARGUMENT);
  assert.match(later.message, /^Invalid params of 'later': x: Expected number/);
  const stream = r.client.stream("stepsLater", "2");
  const failed = await rejectsWith(Array.fromAsync(stream), Status.INVALID_ARGUMENT);
  assert.equal(failed.message, "Invalid params of 'stepsLater': Expected number");
});

Deno.test("handlers and ctx.params see the validated value, converted", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const api = r.client.typed(geo);
  assert.deepEqual(await api.later({ x: 1, y: 2, z: 3 } as never), [
    { x: 1, y: 2 },
    { x: 1, y: 2 },
  ]);
  assert.deepEqual(await api.seen(7), { p: { checked: 7 }, ctx: { checked: 7 }, method: "seen" });
  // A synchronous Standard Schema converts "3" to 3 for a server stream.
  assert.deepEqual(await Array.fromAsync(r.client.stream("steps", "3")), [1, 2, 3]);
  assert.deepEqual(await Array.fromAsync(api.stepsLater(2)), [2, 4]);
});

Deno.test("a validator function's error becomes invalid_argument; a StreamwireError stands", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const api = r.client.typed(geo);
  const negative = await rejectsWith(api.shape.area({ w: -1, h: 1 }), Status.OUT_OF_RANGE);
  assert.equal(negative.message, "w '-1' is negative");
  const item = await rejectsWith(
    r.client.upload("total", ReadableStream.from([1, "2"])),
    Status.INVALID_ARGUMENT,
  );
  assert.equal(item.message, "Invalid input value '1' of 'total': Expected a number, got '2'");
});

Deno.test("bidi input is checked value by value", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const { readable, writable } = r.client.duplex("upper");
  const writer = writable.getWriter();
  await writer.write("ok");
  await writer.write(1);
  const reader = readable.getReader();
  assert.deepEqual(await reader.read(), { value: "OK", done: false });
  const error = await rejectsWith(reader.read(), Status.INVALID_ARGUMENT);
  assert.equal(error.message, "Invalid input value '1' of 'upper': Expected string");
  writer.releaseLock();
});

Deno.test("reflection lists the contract's descriptions", async () => {
  await using r = await rig("memory", { methods: geoMethods });
  const list = await r.client.call(REFLECTION_METHOD) as { name: string }[];
  assert.deepEqual(list.find((m) => m.name === "norm"), {
    name: "norm",
    kind: "unary",
    description: "Length of a vector",
  });
  assert.deepEqual(list.find((m) => m.name === "shape.kind"), {
    name: "shape.kind",
    kind: "unary",
    description: "A dotted key",
  });
  assert.deepEqual(list.find((m) => m.name === "steps"), { name: "steps", kind: "server_stream" });
});

Deno.test("a method without validators is registered with its own handler", () => {
  const handler = () => "rectangle";
  const methods = new Methods().implement(defineContract({ kind: unary() }), { kind: handler });
  assert.equal(methods.get("kind")?.handler, handler);
});

Deno.test("defineContract refuses empty keys, non-methods and names defined twice", () => {
  const cases: [unknown, RegExp][] = [
    [{ "": unary() }, /Contract key in '' is empty/],
    [{ a: { "": unary() } }, /Contract key in 'a' is empty/],
    [{ a: 1 }, /Contract group 'a' must be an object of methods/],
    [{ "a.b": unary(), a: { b: unary() } }, /Contract method 'a.b' is defined twice/],
  ];
  for (const [shape, message] of cases) {
    assert.throws(
      () => defineContract(shape as never),
      (e: unknown) => e instanceof StreamwireError && e.code === Status.INVALID_ARGUMENT,
    );
    assert.throws(() => defineContract(shape as never), message);
  }
});

Deno.test("implement refuses a contract method without a function, registering none", () => {
  const contract = defineContract({ a: unary(), g: { toString: unary() } });
  const methods = new Methods();
  assert.throws(
    () => methods.implement(contract, { a: () => 1, g: {} } as never),
    /Contract method 'g.toString' has no handler, got 'undefined'/,
  );
  assert.deepEqual([...methods.names()], []);
});

Deno.test("a typed client works over the server's peer, calling methods the client serves", async () => {
  const ui = defineContract({ confirm: unary<string, boolean>() });
  await using r = await rig("memory", {
    client: {
      methods: new Methods().implement(ui, { confirm: (question) => question.endsWith("?") }),
    },
  });
  const api = typedClient(r.serverPeer(), ui);
  assert.equal(await api.confirm("sure?"), true);
});

Deno.test("the demo as a contract: typed calls, and its messages as before", async () => {
  await using r = await rig("memory", { methods: (server) => demoMethods(server) });
  const demo = r.client.typed(demoContract);
  assert.equal(await demo.add([2, 40]), 42);
  assert.equal(typeof await demo.time(), "number");
  assert.equal(await demo.sleep(0), true);
  assert.deepEqual(await Array.fromAsync(demo.count(3)), [1, 2, 3]);
  assert.equal(await demo.sum([1, 2, 3]), 6);
  assert.deepEqual(await demo.echo({ a: 1 }), { a: 1 });
  const pushes = r.client.pushes.getReader();
  assert.equal(await demo.chat.join({ room: "lobby" }), true);
  assert.equal(await demo.chat.say({ room: "lobby", text: "hi" }), 1);
  const push = await pushes.read();
  assert.deepEqual(push.value?.params, { from: r.serverSession().id, text: "hi" });
  pushes.releaseLock();
  assert.equal(await demo.chat.leave({ room: "lobby" }), true);

  const cases: [Promise<unknown>, string][] = [
    [r.client.call("add", "x"), `add takes [a, b], got '"x"'`],
    [r.client.call("add", [1, "2"]), `b must be a finite number, got '"2"'`],
    [r.client.call("sleep", -1), "sleep ms must be within 0..60000, got '-1'"],
    [
      Array.fromAsync(r.client.stream("count", 1.5)),
      "count n must be an integer within 0..10000000, got '1.5'",
    ],
    [
      r.client.upload("sum", ReadableStream.from([1, "x"])),
      `sum item must be a finite number, got '"x"'`,
    ],
    [r.client.call("chat.join", {}), "params.room must be a non-empty string, got 'undefined'"],
    [r.client.call("chat.say", { room: "a", text: 1 }), "params.text must be a string, got '1'"],
  ];
  for (const [call, message] of cases) {
    const error = await rejectsWith(call, Status.INVALID_ARGUMENT);
    assert.equal(error.message, message);
  }
});
