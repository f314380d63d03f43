import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { type ClientOptions, connect, RpcClient } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import type { Connection } from "../../transport/connection.ts";
import { dial } from "../../transport/dial.ts";
import { memoryPair } from "../../transport/memory.ts";
import {
  ackHello,
  fakeServer,
  KINDS,
  Probe,
  rejectsWith,
  rig,
  testMethods,
  waitFor,
} from "./_rig.ts";
import { T } from "./_wire.ts";
import { Signal } from "../transport/_helpers.ts";

const FAST: ClientOptions["reconnect"] = { initialDelayMs: 10, maxDelayMs: 20, maxRetries: 200 };

function newServer(): RpcServer {
  const probe = new Probe();
  const server: RpcServer = new RpcServer({ methods: testMethods(() => server, probe) });
  return server;
}

/** The client's states so far; `reached(state)` resolves once it was in `state`. */
function recordStates(
  client: RpcClient,
): string[] & { reached(state: string): Promise<void> } {
  const states: string[] = [];
  const changed = new Signal();
  client.addEventListener("statechange", (e) => {
    states.push((e as CustomEvent<{ to: string }>).detail.to);
    changed.notify();
  });
  // Not enumerable, so that the list still compares equal to a plain array.
  return Object.defineProperty(states, "reached", {
    value: (state: string) =>
      changed.until(() => states.includes(state), `the client state '${state}'`),
  }) as string[] & { reached(state: string): Promise<void> };
}

Deno.test("tcp: after a shutdown, safe calls are retried on a new server on the same port", async () => {
  const s1 = newServer();
  const addr = s1.listen({ port: 0 });
  const port = Number(new URL(addr).port);
  let failedDials = 0;
  const dialFailed = new Signal();
  const client = new RpcClient(
    () =>
      dial(addr).catch((error) => {
        failedDials++;
        dialFailed.notify();
        throw error;
      }),
    { reconnect: FAST },
  );
  const states = recordStates(client);
  let s2: RpcServer | undefined;
  try {
    await client.start();
    assert.deepEqual(states, ["connecting", "connected", "authenticating", "ready"]);
    states.length = 0;
    // The unsafe sleep outlasts the safety net: only the shutdown ends it.
    const unsafe = client.call("sleep", 60_000);
    const safe = client.call("sleep", 300, { idempotent: true });
    const session = [...s1.transport.sessions()][0];
    await waitFor(() => s1.peer(session)?.inflight === 2, "both sleeps in flight");
    // Drain only briefly: the sleeps still running are cut off.
    const down = s1.shutdown({ deadlineMs: 30 });
    // No public event announces a received GOAWAY: polled.
    await waitFor(
      () => client.session?.peerGoaway !== undefined || client.state !== "ready",
      "the GOAWAY or the lost connection seen by the client",
    );
    const queued = client.call("add", [1, 2]); // not sent while draining: goes to the next server
    await down;
    const e = await rejectsWith(unsafe, Status.UNAVAILABLE);
    assert.match(e.message, /Connection lost/);
    // Reconnection attempts fail while no server listens.
    await dialFailed.until(() => failedDials >= 2, "two failed reconnection attempts");
    assert.notEqual(client.state, "ready");
    s2 = newServer();
    s2.listen({ port });
    assert.equal(await queued, 3);
    assert.equal(await safe, true);
    assert.equal(await client.call("add", [2, 2]), 4);
    assert.equal(client.state, "ready");
    assert.equal(states[0], "disconnected");
    assert.ok(states.includes("connecting"));
    assert.deepEqual(states.slice(-3), ["connected", "authenticating", "ready"]);
    assert.equal(client.pending, 0);
  } finally {
    await client.close();
    await s1.shutdown();
    await s2?.shutdown();
  }
  assert.equal(states.at(-1), "disconnected");
  assert.equal(states.at(-2), "closing");
});

for (const kind of KINDS) {
  Deno.test(`${kind}: a call that crossed a GOAWAY goes to the next server, exactly once`, async () => {
    const counts = { first: 0, second: 0 };
    const add = (which: keyof typeof counts) => ([a, b]: [number, number]) => {
      counts[which]++;
      return a + b;
    };
    const first: RpcServer = new RpcServer({
      methods: new Methods()
        .unary("stop", () => {
          // GOAWAY goes out now, with lastId this call's id: the call read
          // after it in the same write is refused, never run.
          first.shutdown();
          return "stopping";
        })
        .unary("add", add("first")),
    });
    const second = new RpcServer({ methods: new Methods().unary("add", add("second")) });
    const to = (server: RpcServer): () => Promise<Connection> => {
      if (kind === "tcp") {
        const addr = server.listen({ port: 0 });
        return () => dial(addr);
      }
      return () => {
        const [a, b] = memoryPair();
        server.accept(a);
        return Promise.resolve(b);
      };
    };
    const dials = [to(first), to(second)];
    let dialed = 0;
    const client = await connect("tcp://127.0.0.1:1", {
      reconnect: FAST,
      dial: () => dials[Math.min(dialed++, 1)](),
    });
    try {
      const session = client.session!;
      // One write carries both REQUESTs.
      const [stopped, sum] = await Promise.all([client.call("stop"), client.call("add", [2, 3])]);
      assert.equal(stopped, "stopping");
      assert.equal(sum, 5);
      assert.equal(session.peerGoaway?.lastId, 1);
      assert.deepEqual(counts, { first: 0, second: 1 });
      assert.equal(dialed, 2);
      assert.equal(await client.call("add", [1, 1]), 2);
      assert.deepEqual(counts, { first: 0, second: 2 });
    } finally {
      await client.close();
      await first.shutdown();
      await second.shutdown();
    }
  });

  Deno.test(`${kind}: idempotent calls in flight are retried after a lost connection`, async () => {
    const fake = fakeServer(kind);
    const real = newServer();
    const addr = kind === "tcp" ? real.listen({ port: 0 }) : undefined;
    let dials = 0;
    const client = new RpcClient(() => {
      if (dials++ === 0) return fake.dial();
      if (addr) return dial(addr);
      const [x, y] = memoryPair();
      real.accept(x);
      return Promise.resolve(y);
    }, { reconnect: FAST });
    const accepted = fake.accepted();
    const starting = client.start();
    const peer = await accepted;
    try {
      await ackHello(peer);
      await starting;
      const retried = client.batch([{ method: "add", params: [1, 2] }], { idempotent: true });
      const lost = client.call("add", [5, 5]);
      const req = await peer.next();
      assert.equal(req.type, T.BATCH);
      await peer.next();
      await peer.close(); // no GOAWAY: nothing is known about what ran
      await rejectsWith(lost, Status.UNAVAILABLE);
      assert.deepEqual(await retried, [{ ok: true, value: 3 }]);
    } finally {
      await client.close();
      await peer.close();
      fake.close();
      await real.shutdown();
    }
  });

  Deno.test(`${kind}: maxRetries exhausted fails waiting calls with unavailable`, async () => {
    const server = newServer();
    const addr = kind === "tcp" ? server.listen({ port: 0 }) : undefined;
    const options: ClientOptions = {
      reconnect: { initialDelayMs: 5, maxDelayMs: 5, maxRetries: 2 },
      dial: addr ? () => dial(addr) : () => {
        const [x, y] = memoryPair();
        server.accept(x);
        return Promise.resolve(y);
      },
    };
    const client = await connect("tcp://127.0.0.1:1", options);
    const states = recordStates(client);
    try {
      await server.shutdown();
      await states.reached("disconnected");
      const waiting = client.call("add", [1, 2]);
      const e = await rejectsWith(waiting, Status.UNAVAILABLE);
      assert.match(e.message, /after '3' attempt\(s\)/);
      assert.equal(client.state, "disconnected");
      assert.equal(states.filter((s) => s === "connecting").length, 3);
      await rejectsWith(client.call("add", [1, 2]), Status.UNAVAILABLE);
    } finally {
      await client.close();
    }
    // connect() itself gives up the same way.
    await rejectsWith(
      connect("tcp://127.0.0.1:1", { ...options, reconnect: { initialDelayMs: 1, maxRetries: 1 } }),
      Status.UNAVAILABLE,
    );
  });

  Deno.test(`${kind}: GOAWAY drain: an in-flight call completes, new calls stay off the session`, async () => {
    await using r = await rig(kind);
    const inflight = r.client.call("sleep", 100);
    const stream = r.client.stream("count", 5);
    await waitFor(() => r.serverPeer().inflight >= 1, "the sleep in flight on the server");
    const session = r.serverSession();
    const down = r.server.shutdown();
    // No public event announces a received GOAWAY: polled.
    await waitFor(() => r.client.session?.peerGoaway !== undefined, "the GOAWAY");
    const lastId = session.lastPeerCallId;
    assert.equal(r.client.session?.peerGoaway?.lastId, lastId);
    const late = r.client.call("add", [1, 2]);
    const lateStream = r.client.stream("count", 1);
    assert.equal(await inflight, true);
    assert.deepEqual(await Array.fromAsync(stream), [1, 2, 3, 4, 5]);
    await down;
    assert.equal(session.lastPeerCallId, lastId, "no call opened after GOAWAY");
    // Without reconnection, the calls waiting for the next connection fail
    // alike when the session closes.
    const e = await rejectsWith(late, Status.UNAVAILABLE);
    const e2 = await rejectsWith(lateStream.getReader().read(), Status.UNAVAILABLE);
    assert.equal(e2.message, e.message);
  });
}

for (const kind of KINDS) {
  Deno.test(`${kind}: without reconnection, calls after a lost connection fail at once`, async () => {
    await using r = await rig(kind, { client: { reconnect: false } });
    const states = recordStates(r.client);
    const inflight = r.client.call("hang");
    await waitFor(() => r.serverPeer().inflight === 1, "the call in flight on the server");
    r.server.transport.kick(r.serverSession().id, "bye");
    await rejectsWith(inflight, Status.UNAVAILABLE);
    await states.reached("disconnected");
    await rejectsWith(r.client.call("add", [1, 2]), Status.UNAVAILABLE);
    await rejectsWith(r.client.batch([{ method: "echo" }]), Status.UNAVAILABLE);
    await rejectsWith(r.client.stream("count", 1).getReader().read(), Status.UNAVAILABLE);
    await rejectsWith(r.client.notify("note"), Status.UNAVAILABLE);
  });
}

Deno.test("memory: reconnecting client retries a queued call on the next connection", async () => {
  const server = newServer();
  let conns = 0;
  const client = await connect("tcp://127.0.0.1:1", {
    reconnect: FAST,
    dial: () => {
      conns++;
      const [a, b] = memoryPair();
      server.accept(a);
      return Promise.resolve(b);
    },
  });
  try {
    const states = recordStates(client);
    const session = [...server.transport.sessions()][0];
    server.transport.kick(session.id, "go away");
    await states.reached("disconnected");
    assert.equal(await client.call("echo", "again"), "again");
    assert.equal(conns, 2);
  } finally {
    await client.close();
    await server.shutdown();
  }
});
