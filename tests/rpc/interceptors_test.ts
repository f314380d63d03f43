import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Call, Interceptor } from "../../rpc/interceptor.ts";
import { Methods } from "../../rpc/methods.ts";
import { KINDS, rejectsWith, rig } from "./_rig.ts";

/** Records what each interceptor saw, in order of events. */
function recorder(name: string, log: string[]): Interceptor {
  return (next) => async (call) => {
    log.push(`${name}>${call.side}:${call.kind}:${call.method}`);
    try {
      const result = await next(call);
      log.push(`${name}<ok`);
      return result;
    } catch (error) {
      log.push(`${name}<${(error as StreamwireError).codeName}`);
      throw error;
    }
  };
}

const metadataOf = (call: Call, name: string) => call.metadata.find(([n]) => n === name)?.[1];

for (const kind of KINDS) {
  Deno.test(`${kind}: interceptors run in list order and see both sides' metadata`, async () => {
    const log: string[] = [];
    const seen: (string | undefined)[] = [];
    await using r = await rig(kind, {
      client: {
        interceptors: [
          recorder("c1", log),
          (next) => (call) => {
            call.metadata.push(["x-request-id", "r-1"]);
            return next(call);
          },
          recorder("c2", log),
        ],
      },
      server: {
        interceptors: [
          recorder("s1", log),
          (next) => (call) => {
            seen.push(metadataOf(call, "x-request-id"));
            call.metadata.push(["x-user", "ada"]);
            return next(call);
          },
        ],
      },
    });
    const echoed = await r.client.call("ctx") as { metadata: [string, string][] };
    assert.deepEqual(echoed.metadata, [["x-request-id", "r-1"], ["x-user", "ada"]]);
    assert.deepEqual(seen, ["r-1"]);
    assert.deepEqual(log, [
      "c1>caller:unary:ctx",
      "c2>caller:unary:ctx",
      "s1>callee:unary:ctx",
      "s1<ok",
      "c2<ok",
      "c1<ok",
    ]);
  });

  Deno.test(`${kind}: an interceptor rejects with a code; it sees results, errors and time`, async () => {
    const outcomes: { method: string; result?: unknown; code?: number; ms: number }[] = [];
    let served = 0;
    await using r = await rig(kind, {
      methods: () =>
        new Methods()
          .unary("add", ([a, b]: [number, number]) => {
            served++;
            return a + b;
          })
          .unary("nope", () => {
            throw new StreamwireError(Status.NOT_FOUND, "nothing");
          }),
      server: {
        interceptors: [
          (next) => async (call) => {
            const started = performance.now();
            try {
              const result = await next(call);
              outcomes.push({ method: call.method, result, ms: performance.now() - started });
              return result;
            } catch (error) {
              outcomes.push({
                method: call.method,
                code: (error as StreamwireError).code,
                ms: performance.now() - started,
              });
              throw error;
            }
          },
          (next) => (call) => {
            if (metadataOf(call, "authorization") !== "Bearer ok") {
              throw new StreamwireError(Status.UNAUTHENTICATED, `No token for '${call.method}'`);
            }
            return next(call);
          },
        ],
      },
    });
    const e = await rejectsWith(r.client.call("add", [1, 2]), Status.UNAUTHENTICATED);
    assert.equal(e.message, "No token for 'add'");
    assert.equal(served, 0, "refused before the handler");
    const metadata = { authorization: "Bearer ok" };
    assert.equal(await r.client.call("add", [1, 2], { metadata }), 3);
    await rejectsWith(r.client.call("nope", undefined, { metadata }), Status.NOT_FOUND);
    assert.deepEqual(
      outcomes.map(({ method, result, code }) => ({ method, result, code })),
      [
        { method: "add", result: undefined, code: Status.UNAUTHENTICATED },
        { method: "add", result: 3, code: undefined },
        { method: "nope", result: undefined, code: Status.NOT_FOUND },
      ],
    );
    assert.ok(outcomes.every((o) => o.ms >= 0));
    // A client interceptor that throws fails the call locally: nothing is sent.
    await using local = await rig(kind, {
      client: {
        interceptors: [() => () => {
          throw new StreamwireError(Status.PERMISSION_DENIED, "not from here");
        }],
      },
    });
    const framesIn = local.serverSession().stats.framesIn;
    await rejectsWith(local.client.call("echo", 1), Status.PERMISSION_DENIED);
    assert.equal(local.serverSession().stats.framesIn, framesIn);
  });

  Deno.test(`${kind}: server interceptors wrap each batch entry; a client batch is one call`, async () => {
    const log: string[] = [];
    await using r = await rig(kind, {
      client: { interceptors: [recorder("c", log)] },
      server: {
        interceptors: [
          recorder("s", log),
          (next) => (call) => {
            if (call.method === "fail.code") {
              throw new StreamwireError(Status.ABORTED, "refused by interceptor");
            }
            return next(call);
          },
        ],
      },
    });
    const outcomes = await r.client.batch([
      { method: "add", params: [1, 2] },
      { method: "fail.code" },
      { method: "echo", params: "x" },
    ]);
    assert.deepEqual(outcomes[0], { ok: true, value: 3 });
    assert.equal(!outcomes[1].ok && outcomes[1].error.code, Status.ABORTED);
    assert.deepEqual(outcomes[2], { ok: true, value: "x" });
    // Entries start in order and may run concurrently.
    assert.deepEqual(log.filter((l) => l.startsWith("s>")), [
      "s>callee:unary:add",
      "s>callee:unary:fail.code",
      "s>callee:unary:echo",
    ]);
    assert.deepEqual(log.filter((l) => l.startsWith("s<")).sort(), ["s<aborted", "s<ok", "s<ok"]);
    assert.deepEqual([log[0], log.at(-1)], ["c>caller:batch:", "c<ok"]);
  });

  Deno.test(`${kind}: streams attach once an asynchronous interceptor calls next`, async () => {
    const log: string[] = [];
    const gate = Promise.withResolvers<void>();
    await using r = await rig(kind, {
      client: {
        interceptors: [
          recorder("c", log),
          (next) => async (call) => {
            await gate.promise;
            return next(call);
          },
        ],
      },
      server: { interceptors: [recorder("s", log)] },
    });
    // Returned at once, before the call is sent.
    const { readable, writable } = r.client.duplex("upper");
    const counted = r.client.stream("count", 3);
    const uploaded = r.client.upload("sum", ReadableStream.from([1, 2, 3]));
    const writer = writable.getWriter();
    const writing = writer.write("ab");
    assert.equal(r.client.pending, 0);
    gate.resolve();
    await writing;
    const reader = readable.getReader();
    assert.deepEqual(await reader.read(), { value: "AB", done: false });
    await writer.close();
    assert.deepEqual(await reader.read(), { value: undefined, done: true });
    assert.deepEqual(await Array.fromAsync(counted), [1, 2, 3]);
    assert.equal(await uploaded, 6);
    // Each call's next resolved when its stream finished, on both sides.
    for (
      const [side, kind, method] of [
        ["caller", "bidi", "upper"],
        ["caller", "server_stream", "count"],
        ["caller", "client_stream", "sum"],
        ["callee", "bidi", "upper"],
        ["callee", "server_stream", "count"],
        ["callee", "client_stream", "sum"],
      ]
    ) {
      assert.ok(log.includes(`${side === "caller" ? "c" : "s"}>${side}:${kind}:${method}`));
    }
    assert.equal(log.filter((l) => l === "c<ok").length, 3);
    assert.equal(log.filter((l) => l === "s<ok").length, 3);
  });

  Deno.test(`${kind}: a server stream's next resolves after its last DATA, a failure rejects it`, async () => {
    const finished: string[] = [];
    let produced = 0;
    await using r = await rig(kind, {
      methods: () =>
        new Methods()
          .serverStream("three", function* () {
            for (let i = 0; i < 3; i++) {
              produced++;
              yield i;
            }
          })
          .serverStream("broken", function* () {
            yield 1;
            throw new StreamwireError(Status.DATA_LOSS, "lost");
          }),
      server: {
        interceptors: [(next) => async (call) => {
          try {
            await next(call);
            finished.push(`${call.method} after ${produced}`);
          } catch (error) {
            finished.push(`${call.method} ${(error as StreamwireError).codeName}`);
            throw error;
          }
        }],
      },
    });
    assert.deepEqual(await Array.fromAsync(r.client.stream("three")), [0, 1, 2]);
    await rejectsWith(Array.fromAsync(r.client.stream("broken")), Status.DATA_LOSS);
    assert.deepEqual(finished, ["three after 3", "broken data_loss"]);
  });

  Deno.test(`${kind}: NOTIFY goes through interceptors on both sides`, async () => {
    const log: string[] = [];
    const noted = Promise.withResolvers<void>();
    await using r = await rig(kind, {
      client: { interceptors: [recorder("c", log)] },
      server: {
        interceptors: [(next) => (call) => {
          log.push(`s>${call.side}:${call.kind}:${call.method}`);
          if (call.params === "refuse") throw new StreamwireError(Status.PERMISSION_DENIED, "no");
          return next(call);
        }],
      },
    });
    r.probe.onNotify = () => noted.resolve();
    await r.client.notify("note", "refuse");
    await r.client.notify("note", "ok");
    await noted.promise;
    assert.deepEqual(r.probe.notified, ["ok"]);
    assert.deepEqual(log.filter((l) => l.startsWith("c")), [
      "c>caller:notify:note",
      "c<ok",
      "c>caller:notify:note",
      "c<ok",
    ]);
    assert.deepEqual(log.filter((l) => l.startsWith("s")), [
      "s>callee:notify:note",
      "s>callee:notify:note",
    ]);
    assert.deepEqual(r.probe.errors, [], "a refused NOTIFY is not a bug");
  });

  Deno.test(`${kind}: a server's interceptors wrap the calls it makes to a client`, async () => {
    const log: string[] = [];
    await using r = await rig(kind, {
      client: {
        interceptors: [recorder("c", log)],
        methods: new Methods().unary("client.ping", () => "pong"),
      },
      server: { interceptors: [recorder("s", log)] },
    });
    assert.equal(await r.serverPeer().call("client.ping"), "pong");
    assert.deepEqual(log, [
      "s>caller:unary:client.ping",
      "c>callee:unary:client.ping",
      "c<ok",
      "s<ok",
    ]);
  });
}

Deno.test("a client's interceptors replace traceContext(): with none, no traceparent is sent", async () => {
  const { traceContext } = await import("../../rpc/trace.ts");
  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  await using withTrace = await rig("memory", {
    client: { interceptors: [traceContext(() => tp)] },
  });
  assert.equal((await withTrace.client.call("ctx") as { traceparent: string }).traceparent, tp);
  await using without = await rig("memory", { client: { interceptors: [] } });
  assert.equal((await without.client.call("ctx") as { traceparent: null }).traceparent, null);
  // On the serving side, traceContext() leaves the caller's traceparent alone.
  await using served = await rig("memory", {
    server: {
      interceptors: [traceContext(() => "00-ffffffffffffffffffffffffffffffff-1111111111111111-01")],
    },
    client: { interceptors: [] },
  });
  assert.equal((await served.client.call("ctx") as { traceparent: null }).traceparent, null);
});
