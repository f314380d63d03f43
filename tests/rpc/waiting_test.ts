// While a client (re)connects, every kind of call waits for the connection
// and fails the same way when the client gives up or closes.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import type { StreamwireError } from "../../codec/error.ts";
import { type ClientOptions, connect, type RpcClient } from "../../rpc/client.ts";
import { RpcServer } from "../../rpc/server.ts";
import type { Connection } from "../../transport/connection.ts";
import { dial } from "../../transport/dial.ts";
import { memoryPair } from "../../transport/memory.ts";
import { type Kind, KINDS, Probe, rejectsWith, testMethods } from "./_rig.ts";

const FAST: ClientOptions["reconnect"] = { initialDelayMs: 1, maxDelayMs: 2, maxRetries: 200 };

interface Reconnecting extends AsyncDisposable {
  server: RpcServer;
  client: RpcClient;
  probe: Probe;
  /** Lets the next dial go ahead: to the server, or failing with `error`. */
  allow(error?: Error): void;
}

/**
 * A client whose first connection is dropped at once; its next dial waits
 * for `allow()`. Resolves once the client is reconnecting.
 */
async function reconnecting(kind: Kind, options: ClientOptions = {}): Promise<Reconnecting> {
  const probe = new Probe();
  const server: RpcServer = new RpcServer({ methods: testMethods(() => server, probe) });
  const addr = kind === "tcp" ? server.listen({ port: 0 }) : undefined;
  const open = (): Promise<Connection> => {
    if (addr !== undefined) return dial(addr);
    const [a, b] = memoryPair();
    server.accept(a);
    return Promise.resolve(b);
  };
  const gate = Promise.withResolvers<Error | undefined>();
  let dials = 0;
  const client = await connect("tcp://127.0.0.1:1", {
    reconnect: FAST,
    ...options,
    dial: async () => {
      if (dials++ === 0) return open();
      const error = await gate.promise;
      if (error !== undefined) throw error;
      return open();
    },
  });
  const connecting = new Promise<void>((resolve) =>
    client.addEventListener("statechange", (e) => {
      if ((e as CustomEvent<{ to: string }>).detail.to === "connecting") resolve();
    })
  );
  server.transport.kick(client.session!.id, "dropped");
  await connecting;
  return {
    server,
    client,
    probe,
    allow: (error) => gate.resolve(error),
    async [Symbol.asyncDispose]() {
      gate.resolve(new Error("test over"));
      await client.close();
      await server.shutdown({ deadlineMs: 50 });
    },
  };
}

for (const kind of KINDS) {
  Deno.test(`${kind}: every kind of call waits for the next connection`, async () => {
    await using r = await reconnecting(kind);
    const { client } = r;
    const noted = new Promise<void>((resolve) => (r.probe.onNotify = resolve));
    const call = client.call("add", [1, 2]);
    const batch = client.batch([{ method: "echo", params: "b" }]);
    const stream = client.stream("count", 3);
    const { readable, writable } = client.duplex("upper");
    const upload = client.upload("sum", ReadableStream.from([1, 2, 3]));
    const notify = client.notify("note", "n");
    const writer = writable.getWriter();
    const written = writer.write("d");
    assert.equal(client.state, "connecting");
    r.allow();
    assert.equal(await call, 3);
    assert.deepEqual(await batch, [{ ok: true, value: "b" }]);
    assert.deepEqual(await Array.fromAsync(stream), [1, 2, 3]);
    await written;
    await writer.close();
    assert.deepEqual(await Array.fromAsync(readable), ["D"]);
    assert.equal(await upload, 6);
    await notify;
    await noted;
    assert.deepEqual(r.probe.notified, ["n"]);
  });

  Deno.test(`${kind}: when the client gives up, every waiting call fails with the same error`, async () => {
    await using r = await reconnecting(kind, {
      reconnect: { initialDelayMs: 1, maxDelayMs: 1, maxRetries: 0 },
    });
    const { client } = r;
    const failures = [
      client.call("add", [1, 2]),
      client.batch([{ method: "echo" }]),
      client.stream("count", 3).getReader().read(),
      client.duplex("upper").readable.getReader().read(),
      client.upload("sum", ReadableStream.from([1])),
      client.notify("note"),
    ];
    r.allow(new Error("no route to host"));
    const errors = await Promise.all(failures.map((p) => rejectsWith(p, Status.UNAVAILABLE)));
    assert.match(errors[0].message, /no route to host/);
    assert.ok(errors.every((e) => e.message === errors[0].message), "the same error for all");
    // Later calls fail at once, alike.
    const late = await rejectsWith(
      client.stream("count", 1).getReader().read(),
      Status.UNAVAILABLE,
    );
    assert.equal(late.message, errors[0].message);
  });

  Deno.test(`${kind}: closing the client fails every waiting call with cancelled`, async () => {
    await using r = await reconnecting(kind);
    const { client } = r;
    const failures = [
      client.call("add", [1, 2]),
      client.batch([{ method: "echo" }]),
      client.stream("count", 3).getReader().read(),
      client.duplex("upper").writable.getWriter().write("x"),
      client.upload("sum", ReadableStream.from([1])),
      client.notify("note"),
    ];
    await client.close();
    const errors = await Promise.all(failures.map((p) => rejectsWith(p, Status.CANCELLED)));
    assert.ok(errors.every((e) => e.message === "Client closed"));
  });

  Deno.test(`${kind}: a waiting call keeps to its timeout, its signal and maxQueuedCalls`, async () => {
    await using r = await reconnecting(kind, { maxQueuedCalls: 3 });
    const { client } = r;
    await rejectsWith(client.call("add", [1, 2], { timeout: 10 }), Status.DEADLINE_EXCEEDED);
    await rejectsWith(
      client.stream("count", 3, { timeout: 10 }).getReader().read(),
      Status.DEADLINE_EXCEEDED,
    );
    const controller = new AbortController();
    const aborted = client.upload("sum", ReadableStream.from([1]), { signal: controller.signal });
    controller.abort();
    await rejectsWith(aborted, Status.CANCELLED);
    // A stream whose reader gives up stops waiting too.
    const given = client.stream("ticks");
    await given.cancel("not any more");
    // Three may wait; the fourth is refused at once.
    const waiting = [
      client.call("add", [1, 1]),
      client.call("add", [2, 2]),
      client.stream("count", 2),
    ];
    const refused: StreamwireError[] = await Promise.all([
      rejectsWith(client.call("add", [3, 3]), Status.RESOURCE_EXHAUSTED),
      rejectsWith(client.duplex("upper").readable.getReader().read(), Status.RESOURCE_EXHAUSTED),
    ]);
    assert.match(refused[0].message, /maxQueuedCalls '3'/);
    r.allow();
    assert.equal(await waiting[0], 2);
    assert.equal(await waiting[1], 4);
    assert.deepEqual(await Array.fromAsync(waiting[2] as ReadableStream), [1, 2]);
    assert.equal(r.probe.produced, 0, "the cancelled stream was never opened");
    assert.equal(client.pending, 0);
  });
}
