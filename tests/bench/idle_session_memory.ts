/**
 * Server memory per idle, handshaken RPC session, with the clients in
 * another process: `deno run -A tests/bench/idle_session_memory.ts [N]`
 * (N defaults to 8,000; each session is one descriptor in the server and one
 * in the client process).
 *
 * Three processes: this one drives, a server child holds the sessions, and
 * a client child opens them (`connect()` of `rpc/`, 250 at a time: larger
 * bursts overflow the accept backlog). The server child reports its memory
 * before any connection and after the N handshakes, so the figures are per
 * session beyond its own baseline, and nothing of the clients is counted.
 * The same is done with N bare accepted `Deno.Conn`s (no read pending) as
 * the baseline.
 *
 * Memory is given two ways: live, after a last-resort GC (V8 compacts and
 * unmaps its free pages: what the sessions really hold), and held, after
 * ordinary full GCs (what the process keeps, V8's slack included). The
 * target, 12 KiB per session, applies to live RSS. The RpcServer row is
 * measured again with N/4 sessions: the slope between the two is what one
 * more session costs, free of the process's own growth that an average
 * over few sessions includes. It prints figures and never fails on them.
 * Run it under `ulimit -n 20000` for N above about 500.
 *
 * @module
 */

import { connect, type RpcClient, RpcServer } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { JsonChild, lines, reply } from "../_json_child.ts";
import { listen, Server } from "../../transport/mod.ts";

const BATCH = 250;
const TARGET_KIB = 12;

interface Memory {
  /** RSS after a last-resort GC: live memory. */
  rss: number;
  /** RSS after ordinary full GCs, V8's slack included. */
  rssHeld: number;
  heapUsed: number;
  /** V8 heap committed (pages), live objects and the free space between them. */
  heapTotal: number;
  external: number;
}

type Gc = (options?: { type: string; execution: string; flavor: string }) => void;

function memory(): Memory {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) throw new Error("Run the server child with --v8-flags=--expose-gc");
  gc();
  gc();
  const rssHeld = Deno.memoryUsage().rss;
  // What V8 does when the system runs short of memory: compact, unmap free pages.
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  const { rss, heapUsed, heapTotal, external } = Deno.memoryUsage();
  return { rss, rssHeld, heapUsed, heapTotal, external };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- children ---------------------------------------------------------------------

/** Holds sessions (`rpc`) or bare accepted connections (`bare`); answers `stats`. */
async function serverChild(mode: string, n: number): Promise<void> {
  let port: number;
  let count: () => number;
  if (mode === "rpc") {
    const server: RpcServer = new RpcServer({
      methods: demoMethods(() => server),
      maxConnections: n + 100,
    });
    port = Number(new URL(server.listen({ hostname: "127.0.0.1", port: 0 })).port);
    // Every client's connect() resolved after its handshake, so all are handshaken here.
    count = () => server.transport.sessionCount;
  } else if (mode === "session") {
    // The transport's session alone: handshake, read loop, outbound queue; no RPC layer.
    const server = new Server({ handler: { message() {} }, maxConnections: n + 100 });
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    port = Number(new URL(listener.addr).port);
    server.serve(listener);
    count = () => server.sessionCount;
  } else {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = listener.addr.port;
    const conns: Deno.Conn[] = [];
    // `reading`: each connection also has one 512-byte read pending, as a
    // session's idle connection does: the floor for a server that notices input.
    const reading = mode === "reading";
    (async () => {
      for await (const conn of listener) {
        conns.push(conn);
        if (reading) conn.read(new Uint8Array(512)).catch(() => {});
      }
    })();
    count = () => conns.length;
  }
  await sleep(200);
  reply({ port, baseline: memory() });
  for await (const command of lines(Deno.stdin.readable)) {
    if (command === "stats") reply({ open: count(), memory: memory() });
  }
  // Stdin closed: the driver is done or gone.
  Deno.exit(0);
}

/** Opens N clients of `mode` to `port`, says so, and holds them until stdin closes. */
async function clientChild(mode: string, n: number, port: number): Promise<void> {
  const open: () => Promise<RpcClient | Deno.Conn> = mode === "rpc" || mode === "session"
    ? () => connect(`tcp://127.0.0.1:${port}`, { reconnect: false })
    : () => Deno.connect({ hostname: "127.0.0.1", port });
  const clients: (RpcClient | Deno.Conn)[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    clients.push(...await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, open)));
  }
  reply({ opened: clients.length, ms: performance.now() - started });
  for await (const _ of Deno.stdin.readable) {
    // Nothing is sent; the end of stdin says when to stop.
  }
  Deno.exit(0);
}

// --- driver -----------------------------------------------------------------------

function perSession(after: Memory, before: Memory, n: number): Memory {
  return {
    rss: (after.rss - before.rss) / n,
    rssHeld: (after.rssHeld - before.rssHeld) / n,
    heapUsed: (after.heapUsed - before.heapUsed) / n,
    heapTotal: (after.heapTotal - before.heapTotal) / n,
    external: (after.external - before.external) / n,
  };
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function measure(mode: string, n: number): Promise<{ memory: Memory; ms: number }> {
  const server = new JsonChild(import.meta.filename!, ["--server", mode, `${n}`], [
    "--v8-flags=--expose-gc",
  ]);
  try {
    const ready = await server.ask();
    const clients = new JsonChild(import.meta.filename!, [
      "--clients",
      mode,
      `${n}`,
      `${ready.port}`,
    ]);
    try {
      const opened = await clients.ask();
      await sleep(500);
      const stats = await server.ask("stats");
      if (stats.open !== n) {
        throw new Error(`Server holds '${stats.open}' of '${n}' ${mode} clients`);
      }
      return {
        memory: perSession(stats.memory as Memory, ready.baseline as Memory, n),
        ms: opened.ms as number,
      };
    } finally {
      await clients.end();
    }
  } finally {
    await server.end();
  }
}

async function main(n: number): Promise<void> {
  console.log(`${n} idle connections, server alone in a child process, clients in another:`);
  const describe = (m: Memory) =>
    `live RSS ${kib(m.rss)} (heap used ${kib(m.heapUsed)} of ${kib(m.heapTotal)} committed, ` +
    `external ${kib(m.external)}), ` +
    `held RSS ${kib(m.rssHeld)}`;
  const bare = await measure("bare", n);
  console.log(`  bare accepted Deno.Conn, no read pending: ${describe(bare.memory)}`);
  const reading = await measure("reading", n);
  console.log(`  bare accepted Deno.Conn, one 512-byte read pending: ${describe(reading.memory)}`);
  const session = await measure("session", n);
  console.log(`  handshaken transport Session, no RPC layer: ${describe(session.memory)}`);
  const rpc = await measure("rpc", n);
  console.log(
    `  handshaken RpcServer session (opened in ${(rpc.ms / 1000).toFixed(2)} s): ` +
      describe(rpc.memory),
  );
  // What one more session costs, without the process's own growth (a young
  // generation grown by the handshakes' garbage, allocator arenas) that a
  // per-session average at small N spreads over few sessions: the slope
  // between N/4 and N sessions.
  const quarter = Math.max(1, Math.floor(n / 4));
  const few = await measure("rpc", quarter);
  const marginal = (rpc.memory.rss * n - few.memory.rss * quarter) / (n - quarter);
  console.log(
    `  the same with ${quarter}: ${describe(few.memory)}\n` +
      `per session: ${kib(rpc.memory.rss)} live RSS on average at ${n}, ${
        kib(marginal)
      } for each one more (from ${quarter} to ${n}); ${
        (rpc.memory.rss / bare.memory.rss).toFixed(1)
      }x a bare connection (target <= ${TARGET_KIB} KiB per session, one more: ${
        marginal <= TARGET_KIB * 1024 ? "met" : "missed"
      })`,
  );
}

if (import.meta.main) {
  const [role, mode, count, port] = Deno.args;
  if (role === "--server") {
    await serverChild(mode, Number(count));
  } else if (role === "--clients") {
    await clientChild(mode, Number(count), Number(port));
  } else {
    const n = Number(role ?? 8000);
    if (!Number.isInteger(n) || n < 1 || n > 9000) {
      console.error(`N '${role}' must be an integer in 1..9000 (one descriptor each side)`);
      Deno.exit(2);
    }
    await main(n);
  }
}
