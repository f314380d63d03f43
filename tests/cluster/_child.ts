// Server processes of the cluster tests (redis-server, nats-server,
// `streamwire serve --cluster`): a free loopback port, a child awaited until
// it says it is ready, and its stop by process id.

import { guard } from "../transport/_helpers.ts";

/** A loopback port that was free when asked. */
export function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

/** How {@linkcode spawnReady} runs a server. */
export interface SpawnOptions {
  /** The stream the server says it is ready on; its rest is read and dropped. */
  log: "stdout" | "stderr";
  /** What it says once ready. */
  ready: RegExp;
  /** The other stream: inherited, or dropped. @default {"inherit"} */
  other?: "inherit" | "null";
  /** Environment variables added to this process's. */
  env?: Record<string, string>;
}

/**
 * Spawns a server and resolves once its `log` stream matches `ready`, with
 * what it wrote up to then; a server not ready within the safety net is
 * stopped.
 */
export async function spawnReady(
  command: string,
  args: string[],
  options: SpawnOptions,
): Promise<{ child: Deno.ChildProcess; seen: string }> {
  const { log, ready, other = "inherit" } = options;
  const child = new Deno.Command(command, {
    args,
    env: options.env,
    stdout: log === "stdout" ? "piped" : other,
    stderr: log === "stderr" ? "piped" : other,
  }).spawn();
  const reader = child[log].pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  try {
    await guard(
      (async () => {
        while (!ready.test(seen)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`${command} exited before it was ready:\n${seen}`);
          seen += value;
        }
      })(),
      `${command} ready (${args.join(" ")})`,
    );
  } catch (error) {
    try {
      child.kill("SIGTERM"); // not ready in time: no server left behind
    } catch {
      // It exited already.
    }
    await child.status;
    throw error;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return { child, seen };
}

/** Stops a child by its process id and waits for it to exit. */
export async function stopChild(child: Deno.ChildProcess): Promise<void> {
  Deno.kill(child.pid, "SIGTERM");
  await child.status;
}
