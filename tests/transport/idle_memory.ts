/**
 * Memory held per idle TCP connection, server side, with a read pending on
 * each: streamwire's {@linkcode Connection} against a default reader on the
 * raw `conn.readable`.
 *
 * Run: `deno run -A tests/transport/idle_memory.ts [N]` (N defaults to 2000;
 * each connection uses two file descriptors in this process). Each mode runs
 * in a fresh child process, so that memory freed by one does not flatter the
 * next, and the figures are per connection beyond the process's baseline
 * (the listener open, nothing connected).
 *
 * @module
 */

import { type Connection, listen } from "../../transport/mod.ts";

const MODES = {
  "bare Deno.Conn, no read": "bare",
  "conn.read() into 4 KiB": "read4k",
  "streamwire Connection": "streamwire",
  "raw conn.readable reader": "readable",
} as const;
type Mode = typeof MODES[keyof typeof MODES];

interface Sample {
  rss: number;
  external: number;
  heapUsed: number;
}

interface Result {
  mode: Mode;
  n: number;
  rss: number;
  external: number;
  heapUsed: number;
}

function sample(): Sample {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, external, heapUsed } = Deno.memoryUsage();
  return { rss, external, heapUsed };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens `n` idle connections in `mode`, prints the per-connection cost as JSON. */
async function child(mode: Mode, n: number): Promise<void> {
  const closers: (() => Promise<void> | void)[] = [];
  let port: number;
  let accepting: Promise<void>;
  if (mode === "streamwire") {
    const listener = listen({ port: 0 });
    port = Number(new URL(listener.addr).port);
    closers.push(() => listener.close());
    accepting = (async () => {
      let count = 0;
      for await (const conn of listener) {
        const reader = conn.readable.getReader();
        const pending = reader.read().catch(() => {});
        closers.push(async () => {
          (conn as Connection).close();
          await pending;
          await conn.closed;
        });
        if (++count === n) return;
      }
    })();
  } else {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = listener.addr.port;
    closers.push(() => listener.close());
    accepting = (async () => {
      for (let count = 0; count < n; count++) {
        const conn = await listener.accept();
        if (mode === "bare") {
          closers.push(() => conn.close());
        } else if (mode === "read4k") {
          const pending = conn.read(new Uint8Array(4096)).catch(() => null);
          closers.push(async () => {
            conn.close();
            await pending;
          });
        } else {
          const reader = conn.readable.getReader();
          const pending = reader.read().catch(() => {});
          closers.push(async () => {
            await reader.cancel();
            await pending;
          });
        }
      }
    })();
  }
  await sleep(100);
  const before = sample();
  const clients: Deno.TcpConn[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Math.min(100, n - i);
    clients.push(
      ...await Promise.all(
        Array.from({ length: batch }, () => Deno.connect({ hostname: "127.0.0.1", port })),
      ),
    );
  }
  await accepting;
  await sleep(300);
  const after = sample();
  // Clients are bare Deno.Conns in every mode; the "bare" row is their cost
  // plus the server's bare Deno.Conn, which the other rows include too.
  const result: Result = {
    mode,
    n,
    rss: (after.rss - before.rss) / n,
    external: (after.external - before.external) / n,
    heapUsed: (after.heapUsed - before.heapUsed) / n,
  };
  console.log(JSON.stringify(result));
  for (const client of clients) client.close();
  await Promise.all(closers.map((close) => close()));
}

function kb(bytes: number): string {
  return (bytes / 1000).toFixed(1).padStart(8);
}

async function main(n: number): Promise<void> {
  console.log(`${n} idle TCP connections (client and server in one process); per connection:`);
  console.log(
    `${"mode".padEnd(28)}${"RSS KB".padStart(8)}${"ext KB".padStart(8)}${"heap KB".padStart(8)}`,
  );
  const results = new Map<Mode, Result>();
  for (const [label, mode] of Object.entries(MODES)) {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", import.meta.filename!, "--child", mode, `${n}`],
      stdout: "piped",
      stderr: "inherit",
      signal: AbortSignal.timeout(120_000),
    }).output();
    if (!run.success) throw new Error(`Mode '${mode}' failed with code '${run.code}'`);
    const result: Result = JSON.parse(new TextDecoder().decode(run.stdout).trim());
    results.set(mode, result);
    console.log(
      `${label.padEnd(28)}${kb(result.rss)}${kb(result.external)}${kb(result.heapUsed)}`,
    );
  }
  const bare = results.get("bare")!;
  const ours = results.get("streamwire")!;
  const raw = results.get("readable")!;
  console.log(
    `pending read beyond a bare connection: streamwire ${kb(ours.rss - bare.rss).trim()} KB RSS, ` +
      `raw conn.readable ${kb(raw.rss - bare.rss).trim()} KB RSS`,
  );
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--child") {
    await child(args[1] as Mode, Number(args[2]));
  } else {
    const n = Number(args[0] ?? 2000);
    if (!Number.isInteger(n) || n < 1 || n > 9000) {
      throw new RangeError(`N '${args[0]}' must be an integer in 1..9000 (two fds each)`);
    }
    await main(n);
  }
}
