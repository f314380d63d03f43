// Cluster faults on an engine that runs as a server process: the engine
// restarts mid-run while nodes use it, and a `streamwire serve --cluster`
// node is killed while its clients follow a topic.

import assert from "node:assert/strict";
import type { Backplane } from "../../cluster/backplane.ts";
import { ClusterClient, type FollowInfo } from "../../cluster/cluster_client.ts";
import { guard, once } from "../transport/_helpers.ts";
import { spawnReady } from "./_child.ts";
import { startNodes, stopNodes } from "./_nodes.ts";

/** An engine server for the fault cases. */
export interface FaultEngine {
  /** The URL `serve --cluster` takes. */
  url: string;
  /** A backplane on it with `prefix`. */
  make(prefix?: string): Promise<Backplane>;
  /** Stops the server; its data is lost. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  resume(): Promise<void>;
  /** Stops it for good. */
  dispose(): Promise<void>;
}

/** A `streamwire serve --cluster` child process, ready once it printed its cluster node line. */
export async function serveNode(
  url: string,
  nodeId: string,
): Promise<{ child: Deno.ChildProcess; addr: string }> {
  const { child, seen } = await spawnReady(
    Deno.execPath(),
    ["run", "-A", "cli/main.ts", "serve", "--port", "0", "--no-admin"]
      .concat(["--cluster", url, "--node-id", nodeId]),
    { log: "stdout", ready: /cluster node /, other: "null" },
  );
  return { child, addr: /listening on (\S+)/.exec(seen)![1] };
}

/** Registers the fault cases for `name`; `engine` starts a fresh server per case. */
export function faultCases(name: string, engine: () => Promise<FaultEngine>): void {
  Deno.test(`${name} cluster: the engine restarts mid-run; local delivery goes on, the node recovers`, async () => {
    const e = await engine();
    const nodes = await startNodes(2, () => e.make("rs"));
    const [a, b] = nodes;
    const client = await ClusterClient.connect([a.addr]);
    try {
      const got: unknown[] = [];
      const waiters: [number, () => void][] = [];
      await client.follow("t", (v) => {
        got.push(v);
        for (const [n, resolve] of waiters) if (got.length >= n) resolve();
      });
      const seen = (n: number) => {
        const { promise, resolve } = Promise.withResolvers<void>();
        if (got.length >= n) resolve();
        else waiters.push([n, resolve]);
        return guard(promise, `${n} followed messages`);
      };
      await a.cluster.broadcast("t", 1, { topic: "t" });
      await seen(1);
      const degraded = once(a.cluster, "status", (s) => s === "degraded");
      await e.stop();
      await degraded;
      // Local delivery keeps working while the engine is away, without an offset.
      assert.deepEqual(await a.cluster.broadcast("t", 2, { topic: "t" }), { offset: 0 });
      await seen(2);
      const back = once(a.cluster, "status", (s) => s === "connected");
      await e.resume();
      await back;
      // b may still be reconnecting: its calls fail until it is back and a announced again.
      await guard(
        (async () => {
          while (!(await b.cluster.nodes().catch(() => [])).some((n) => n.id === "n0")) {
            await new Promise((r) => setTimeout(r, 10));
          }
        })(),
        "n0 announced again",
      );
      // a's topic subscription may come back a little after: publish until one lands.
      const ticker = setInterval(() => b.cluster.broadcast("t", 3, { topic: "t" }), 50);
      try {
        await seen(3);
      } finally {
        clearInterval(ticker);
      }
      assert.deepEqual(got.slice(0, 3), [1, 2, 3]);
    } finally {
      await client.close();
      await stopNodes(nodes);
      await e.dispose();
    }
  });

  Deno.test(`${name} cluster: a serve node is killed while its clients follow a topic; they resume on another with no gap or duplicate`, async () => {
    const e = await engine();
    const nodes = await startNodes(2, () => e.make());
    const [pub, spare] = nodes;
    const doomed = await serveNode(e.url, "doomed");
    const followers: { client: ClusterClient; got: [unknown, FollowInfo][] }[] = [];
    const total = 300;
    const all = Promise.withResolvers<void>();
    const check = () => followers.every((f) => f.got.length >= total) && all.resolve();
    let killed = false;
    try {
      for (let i = 0; i < 5; i++) {
        const client = await ClusterClient.connect([doomed.addr, spare.addr], {
          reconnect: { initialDelayMs: 1, maxDelayMs: 20, maxRetries: 20 },
        });
        const f = { client, got: [] as [unknown, FollowInfo][] };
        await client.follow("ticker", (v, info) => {
          f.got.push([v, info]);
          check();
        });
        followers.push(f);
      }
      const gone = once<string>(pub.cluster, "nodegone", (id) => id === "doomed");
      for (let i = 0; i < total; i++) {
        await pub.cluster.broadcast("ticker", i, { topic: "ticker" });
        if (i === 100) {
          // SIGKILL: no GOAWAY, no goodbye to the cluster, connections cut by the kernel.
          Deno.kill(doomed.child.pid, "SIGKILL");
          await doomed.child.status;
          killed = true;
        }
      }
      await guard(all.promise, `${total} messages at every follower`);
      await gone;
      for (const f of followers) {
        assert.deepEqual(f.got.map(([v]) => v), Array.from({ length: total }, (_, i) => i));
        assert.equal(new Set(f.got.map(([, info]) => info.offset)).size, total, "no duplicate");
      }
      assert.ok(followers.some((f) => f.got.some(([, info]) => info.recovered)), "some replayed");
    } finally {
      if (!killed) {
        Deno.kill(doomed.child.pid, "SIGKILL");
        await doomed.child.status;
      }
      for (const f of followers) await f.client.close();
      await stopNodes(nodes);
      await e.dispose();
    }
  });
}
