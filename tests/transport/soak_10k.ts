/**
 * Soak: N idle sessions on one transport {@linkcode Server}, held through
 * heartbeats, then one broadcast to all of them.
 *
 * Run: `deno run -A tests/transport/soak_10k.ts [N]` (N defaults to 10,000;
 * each session is one descriptor here and one in the server, so N must stay
 * below `ulimit -n`). It reports figures and never fails on them.
 *
 * The server runs in a child process, so its RSS is measured alone, against
 * its own baseline with the listener open and nothing connected. The
 * clients in this process are bare `Deno.Conn`s with a hand-made HELLO that
 * answer PINGs with PONG, to keep this side light.
 *
 * Reported, for the server:
 * - memory per idle session beyond the baseline, after the handshakes and
 *   again after at least two heartbeat intervals: RSS after V8 returned its
 *   free pages (a last-resort GC, what the sessions really hold), and RSS
 *   after ordinary GCs (what the process keeps, GC slack included);
 * - time to accept and handshake all N, in batches;
 * - a 100-byte BROADCAST to all N: time from the call until the last client
 *   has it, against the same frame written by a plain loop over N bare
 *   `Deno.Conn`s (N new connections, after the sessions are closed), and the
 *   memory of those bare connections.
 *
 * `SOAK_PROFILE=dir` writes a CPU profile of each child process into `dir`.
 *
 * @module
 */

import { JsonChild, lines, reply } from "../_json_child.ts";
import { FrameType } from "../../codec/constants.ts";
import { encodeFrames } from "../../codec/frame_encoder_stream.ts";
import { encodeMessage } from "../../codec/message.ts";
import { helloPayload, Server } from "../../transport/mod.ts";
import { listen } from "../../transport/listen.ts";

const HEARTBEAT_MS = 2000;
/**
 * Connections opened at once: a burst of thousands overflows the accept
 * backlog, and each SYN dropped there costs a second of retransmission.
 */
const BATCH = 250;
const TOPIC = "news";
/** Broadcasts timed (the median is reported): one can land on a heartbeat sweep or a GC. */
const ROUNDS = 5;
const PAYLOAD = new Uint8Array(100).map((_, i) => (i * 7 + 1) & 0xff);

/** Wall-clock time in ms with sub-ms precision, comparable across processes. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The wire bytes both the server's BROADCAST and the baseline loop send. */
function broadcastFrame(): Uint8Array {
  return encodeFrames([
    encodeMessage({ type: FrameType.BROADCAST, seq: 0, method: TOPIC, params: PAYLOAD }),
  ]);
}

// --- child: the server ------------------------------------------------------------

interface Memory {
  /** RSS after V8 returned its free pages (a last-resort GC): live memory. */
  rss: number;
  /** RSS after ordinary full GCs: what the process holds, GC slack included. */
  rssHeld: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

type Gc = (options?: { type: string; execution: string; flavor: string }) => void;

function memory(): Memory {
  const gc = (globalThis as { gc?: Gc }).gc!;
  gc();
  gc();
  const rssHeld = Deno.memoryUsage().rss;
  // As V8 does when the system is low on memory: compact and unmap free pages.
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  const { rss, heapTotal, heapUsed, external } = Deno.memoryUsage();
  return { rss, rssHeld, heapTotal, heapUsed, external };
}

/** The server under test: a transport Server with a trivial handler. */
async function serverChild(n: number): Promise<void> {
  const server = new Server({
    handler: { message() {} },
    heartbeatMs: HEARTBEAT_MS,
    handshakeTimeoutMs: 60_000,
    maxConnections: n + 100,
  });
  const listener = listen({ port: 0 });
  const serving = server.serve(listener);
  await sleep(200);
  reply({ port: Number(new URL(listener.addr).port), baseline: memory() });
  for await (const command of lines(Deno.stdin.readable)) {
    if (command === "stats") {
      const states: Record<string, number> = {};
      for (const session of server.sessions()) {
        states[session.state] = (states[session.state] ?? 0) + 1;
      }
      reply({ memory: memory(), sessions: server.sessionCount, states, metrics: server.metrics });
    } else if (command === "send") {
      const t0 = now();
      const result = server.broadcast(TOPIC, PAYLOAD);
      const t1 = now();
      // Written: every session's queue handed to the OS.
      const sessions = [...server.sessions()];
      while (sessions.some((s) => s.queuedBytes > 0)) await sleep(0);
      reply({ t0, t1, t2: now(), ...result });
    } else if (command === "exit") {
      await server.shutdown({ deadlineMs: 0 });
      await serving;
      reply({ done: true });
      return;
    }
  }
}

/** The baseline: bare accepted Deno.Conns, written to in a plain loop. */
async function rawChild(n: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.TcpConn[] = [];
  await sleep(200);
  reply({ port: listener.addr.port, baseline: memory() });
  for await (const command of lines(Deno.stdin.readable)) {
    if (command === "accept") {
      while (conns.length < n) conns.push(await listener.accept());
      await sleep(500);
      reply({ memory: memory(), sessions: conns.length });
    } else if (command === "send") {
      const bytes = broadcastFrame();
      const t0 = now();
      const writes: Promise<number>[] = [];
      for (const conn of conns) writes.push(conn.write(bytes));
      const t1 = now();
      await Promise.allSettled(writes);
      reply({ t0, t1, t2: now(), delivered: writes.length });
    } else if (command === "exit") {
      for (const conn of conns) conn.close();
      listener.close();
      reply({ done: true });
      return;
    }
  }
}

// --- parent: the clients -------------------------------------------------------------

/** A bare socket speaking just enough of the protocol: HELLO, PONG, and timestamps. */
class Client {
  readonly conn: Deno.TcpConn;
  pings = 0;
  /** When the last BROADCAST arrived (wall clock, ms); 0 before. */
  receivedAt = 0;
  errors = 0;
  #buffer = new Uint8Array(1024);
  #length = 0;
  #acked!: () => void;
  readonly acked: Promise<void>;
  readonly done: Promise<void>;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.acked = new Promise((resolve) => this.#acked = resolve);
    this.done = this.#loop().catch(() => {});
  }

  async #loop(): Promise<void> {
    for (;;) {
      if (this.#length === this.#buffer.length) {
        const bigger = new Uint8Array(this.#buffer.length * 2);
        bigger.set(this.#buffer);
        this.#buffer = bigger;
      }
      const n = await this.conn.read(this.#buffer.subarray(this.#length));
      if (n === null) return;
      const at = now();
      this.#length += n;
      let offset = 0;
      while (this.#length - offset >= 17) {
        const view = new DataView(this.#buffer.buffer, offset);
        const length = view.getUint32(5);
        if (this.#length - offset < 17 + length) break;
        const type = this.#buffer[offset + 4];
        if (type === FrameType.HELLO_ACK) this.#acked();
        else if (type === FrameType.BROADCAST) this.receivedAt = at;
        else if (type === FrameType.ERROR) this.errors++;
        else if (type === FrameType.PING) {
          this.pings++;
          const payload = this.#buffer.slice(offset + 17, offset + 17 + length);
          const seq = view.getUint32(9);
          this.conn.write(
            encodeFrames([{ type: FrameType.PONG, flags: 0, seq, body: payload }]),
          ).catch(() => {});
        }
        offset += 17 + length;
      }
      this.#buffer.copyWithin(0, offset, this.#length);
      this.#length -= offset;
    }
  }

  close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
    return this.done;
  }
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** A child of this script in `mode`, holding `n` connections. */
function child(mode: "--server" | "--raw", n: number): JsonChild {
  // SOAK_PROFILE=dir writes a CPU profile of each child there.
  const profile = Deno.env.get("SOAK_PROFILE");
  return new JsonChild(import.meta.filename!, [mode, `${n}`], [
    "--v8-flags=--expose-gc",
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []),
  ]);
}

/** Asks a child to exit, then waits for it. */
async function exit(process: JsonChild): Promise<void> {
  await process.ask("exit");
  await process.end();
}

/** Opens n clients in batches; resolves once each is ready. */
async function openClients(
  n: number,
  open: () => Promise<Client>,
): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i += BATCH) {
    clients.push(
      ...await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, open)),
    );
  }
  return clients;
}

/** Asks the child to send the frame to all, and times its arrival at every client. */
interface Delivery {
  /** When the last client had it, ms after the send started. */
  last: number;
  p50: number;
  p99: number;
  /** How long the send call (or loop) itself took. */
  loop: number;
  /** When every write had completed in the sender. */
  written: number;
  missing: number;
}

async function timeDelivery(child: JsonChild, clients: Client[]): Promise<Delivery> {
  for (const c of clients) c.receivedAt = 0;
  const answer = await child.ask("send");
  const start = answer.t0 as number;
  const deadline = Date.now() + 10_000;
  while (clients.some((c) => c.receivedAt === 0) && Date.now() < deadline) await sleep(5);
  const times = clients.filter((c) => c.receivedAt > 0).map((c) => c.receivedAt - start);
  times.sort((a, b) => a - b);
  return {
    last: times.at(-1) ?? NaN,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    loop: (answer.t1 as number) - start,
    written: (answer.t2 as number) - start,
    missing: clients.length - times.length,
  };
}

/** Several sends, apart, each timed; prints each and returns the median round. */
async function timeRounds(child: JsonChild, clients: Client[], label: string): Promise<Delivery> {
  const rounds: Delivery[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await sleep(300);
    const round = await timeDelivery(child, clients);
    rounds.push(round);
    console.log(
      `${label}, round ${i + 1}: last received after ${round.last.toFixed(1)} ms ` +
        `(p50 ${round.p50.toFixed(1)}, p99 ${round.p99.toFixed(1)}; the call took ` +
        `${round.loop.toFixed(1)} ms, all written after ${round.written.toFixed(1)} ms)` +
        (round.missing ? `, ${round.missing} MISSING` : ""),
    );
  }
  return rounds.sort((a, b) => a.last - b.last)[ROUNDS >> 1];
}

function perItem(after: Memory, before: Memory, n: number): Memory {
  return {
    rss: (after.rss - before.rss) / n,
    rssHeld: (after.rssHeld - before.rssHeld) / n,
    heapTotal: (after.heapTotal - before.heapTotal) / n,
    heapUsed: (after.heapUsed - before.heapUsed) / n,
    external: (after.external - before.external) / n,
  };
}

function describe(m: Memory): string {
  return `RSS ${kib(m.rss)} (heap used ${kib(m.heapUsed)} of ${kib(m.heapTotal)}, external ${
    kib(m.external)
  }; ${kib(m.rssHeld)} before V8 unmapped free pages)`;
}

async function main(n: number): Promise<void> {
  const started = now();
  const out = (line: string) => console.log(line);
  out(`soak: ${n} sessions, heartbeatMs ${HEARTBEAT_MS}, server alone in a child process`);

  // --- sessions ---
  const server = child("--server", n);
  const ready = await server.ask();
  const port = ready.port as number;
  const baseline = ready.baseline as Memory;
  const hello = encodeFrames([
    encodeMessage({
      type: FrameType.HELLO,
      seq: 0,
      hello: helloPayload({ codecs: ["raw"], compression: [], agent: "soak/1" }),
    }),
  ]);
  const t0 = now();
  let clients = await openClients(n, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new Client(conn);
    await conn.write(hello);
    await client.acked;
    return client;
  });
  const handshakeMs = now() - t0;
  out(
    `handshake: ${n} accepted and handshaken in ${handshakeMs.toFixed(0)} ms ` +
      `(${(n / handshakeMs * 1000).toFixed(0)}/s, batches of ${BATCH})`,
  );
  await sleep(500);
  const afterHandshake = perItem((await server.ask("stats")).memory as Memory, baseline, n);
  out(`server memory per session after the handshakes: ${describe(afterHandshake)}`);

  // Hold through at least two heartbeat intervals.
  const holdMs = 2 * HEARTBEAT_MS + HEARTBEAT_MS / 2;
  await sleep(holdMs);
  const held = await server.ask("stats");
  const idle = perItem(held.memory as Memory, baseline, n);
  const pings = clients.map((c) => c.pings).sort((a, b) => a - b);
  const metrics = held.metrics as Record<string, number>;
  const errors = clients.reduce((sum, c) => sum + c.errors, 0);
  out(
    `held ${holdMs} ms: ${held.sessions} sessions ${JSON.stringify(held.states)}, ` +
      `PINGs answered per client ${pings[0]}..${pings.at(-1)}, ` +
      `deadPeers ${metrics.deadPeers}, ERRORs ${errors}`,
  );
  out(`server memory per idle session after the hold: ${describe(idle)}`);
  const broadcast = await timeRounds(server, clients, "broadcast() of 100 B to all sessions");
  await Promise.all(clients.map((c) => c.close()));
  await exit(server);

  // --- baseline: the same bytes over bare connections ---
  const raw = child("--raw", n);
  const rawReady = await raw.ask();
  const rawPort = rawReady.port as number;
  const accepting = raw.ask("accept");
  clients = await openClients(
    n,
    async () => new Client(await Deno.connect({ hostname: "127.0.0.1", port: rawPort })),
  );
  const bare = perItem((await accepting).memory as Memory, rawReady.baseline as Memory, n);
  out(`bare Deno.Conn (accepted, no read pending) per connection: ${describe(bare)}`);
  const loop = await timeRounds(raw, clients, "baseline: the same frame, conn.write() in a loop");
  await Promise.all(clients.map((c) => c.close()));
  await exit(raw);

  out("");
  out("summary:");
  const target = (bytes: number) => bytes <= 16 * 1024 ? "met" : "MISSED";
  out(
    `  RSS per idle session after the hold: ${kib(idle.rss)} live (target <= 16 KiB: ${
      target(idle.rss)
    }; bare Deno.Conn ${kib(bare.rss)}, ratio ${(idle.rss / bare.rss).toFixed(2)}), ` +
      `${kib(idle.rssHeld)} held with GC slack (${target(idle.rssHeld)}); ` +
      `after the handshakes ${kib(afterHandshake.rss)} live, ${kib(afterHandshake.rssHeld)} held`,
  );
  out(`  accept + handshake of ${n}: ${handshakeMs.toFixed(0)} ms`);
  out(
    `  broadcast to ${n}, median of ${ROUNDS}: last received after ${
      broadcast.last.toFixed(1)
    } ms (target < 100 ms: ${broadcast.last < 100 ? "met" : "MISSED"}); ` +
      `plain loop ${loop.last.toFixed(1)} ms; ratio ${(broadcast.last / loop.last).toFixed(2)}`,
  );
  out(`  total run ${((now() - started) / 1000).toFixed(1)} s`);
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--server") {
    await serverChild(Number(args[1]));
  } else if (args[0] === "--raw") {
    await rawChild(Number(args[1]));
  } else {
    const n = Number(args[0] ?? 10_000);
    if (!Number.isInteger(n) || n < 1 || n > 18_000) {
      console.error(`N '${args[0]}' must be an integer in 1..18000 (one descriptor each side)`);
      Deno.exit(2);
    }
    await main(n);
  }
}
