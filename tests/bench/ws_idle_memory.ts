/**
 * Server memory per idle, handshaken RPC session over WebSocket against
 * the same over TCP, clients in another process:
 * `deno run -A tests/bench/ws_idle_memory.ts [N]` (N defaults to 1,000).
 * The server child reports its memory (RSS after a last-resort GC, as in
 * `idle_session_memory.ts`) before any connection and after the N
 * handshakes; the figure is the difference over N. It prints and never
 * fails on the figures; the target is a WebSocket session within 2x a TCP one.
 *
 * @module
 */

import { connect, type RpcClient, RpcServer } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { listenWebSocket } from "../../transport/mod.ts";
import { JsonChild, lines, reply } from "../_json_child.ts";

const BATCH = 200;

type Gc = (options?: { type: string; execution: string; flavor: string }) => void;

function liveRss(): number {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) throw new Error("Run the server child with --v8-flags=--expose-gc");
  gc();
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return Deno.memoryUsage().rss;
}

async function serverChild(mode: string, n: number): Promise<void> {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    maxConnections: n + 100,
  });
  let addr: string;
  if (mode === "ws") {
    const listener = listenWebSocket({ url: "ws://127.0.0.1:0/", backlog: n + 100 });
    server.serve(listener);
    addr = listener.addr;
  } else {
    addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  reply({ addr, baseline: liveRss() });
  for await (const command of lines(Deno.stdin.readable)) {
    if (command === "stats") reply({ open: server.transport.sessionCount, rss: liveRss() });
  }
  Deno.exit(0);
}

async function clientChild(n: number, addr: string): Promise<void> {
  const clients: RpcClient[] = [];
  for (let i = 0; i < n; i += BATCH) {
    clients.push(
      ...await Promise.all(
        Array.from(
          { length: Math.min(BATCH, n - i) },
          () => connect(addr, { reconnect: false }),
        ),
      ),
    );
  }
  reply({ opened: clients.length });
  for await (const _ of Deno.stdin.readable) {
    // The end of stdin says when to stop.
  }
  Deno.exit(0);
}

async function measure(mode: string, n: number): Promise<number> {
  const server = new JsonChild(import.meta.filename!, ["--server", mode, `${n}`], [
    "--v8-flags=--expose-gc",
  ]);
  try {
    const ready = await server.ask();
    const clients = new JsonChild(import.meta.filename!, ["--clients", `${n}`, `${ready.addr}`]);
    try {
      await clients.ask();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const stats = await server.ask("stats");
      if (stats.open !== n) throw new Error(`Server holds '${stats.open}' of '${n}' sessions`);
      return ((stats.rss as number) - (ready.baseline as number)) / n;
    } finally {
      await clients.end();
    }
  } finally {
    await server.end();
  }
}

if (import.meta.main) {
  const [role, a, b] = Deno.args;
  if (role === "--server") await serverChild(a, Number(b));
  else if (role === "--clients") await clientChild(Number(a), b);
  else {
    const n = Number(role ?? 1000);
    const tcp = await measure("tcp", n);
    const ws = await measure("ws", n);
    const kib = (x: number) => `${(x / 1024).toFixed(1)} KiB`;
    console.log(`${n} idle sessions, live RSS per session: tcp ${kib(tcp)}, ws ${kib(ws)}`);
    console.log(
      `ws / tcp: ${(ws / tcp).toFixed(2)}x (target <= 2x: ${ws <= 2 * tcp ? "met" : "missed"})`,
    );
  }
}
