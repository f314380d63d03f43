// Server processes for the benchmarks: each child script prints its port on
// the first line of stdout and exits when its stdin closes, so that none
// outlives the bench process even if the bench is interrupted.

/** A server running in a child process. */
export interface ServerProcess {
  /** The TCP port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Its process id, to read its CPU time from `/proc`. */
  readonly pid: number;
  /** Kills the process and waits for it to end. */
  stop(): Promise<void>;
}

const running = new Set<Deno.ChildProcess>();

// Kill any child still running when the bench module unloads.
globalThis.addEventListener("unload", () => {
  for (const child of running) {
    try {
      child.kill();
    } catch {
      // Already ended.
    }
  }
});

/**
 * Runs `deno run -A <script> ...args` from tests/bench/ and reads its port.
 *
 * @param script File name next to this one, such as `_rpc_server.ts`.
 * @param args Arguments after the script.
 * @returns The running server.
 */
export async function spawnServer(script: string, args: string[] = []): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, import.meta.url).pathname, ...args],
    // The repository root, whose deno.json maps the npm imports.
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  running.add(child);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) {
      running.delete(child);
      throw new Error(`Server '${script}' exited before printing its port`);
    }
    text += value;
  }
  // Nothing more is read: the children print only their port.
  lines.cancel().catch(() => {});
  const port = Number(text.slice(0, text.indexOf("\n")));
  if (!Number.isInteger(port) || port <= 0) {
    throw new Error(`Server '${script}' printed '${text.trim()}' instead of a port`);
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    pid: child.pid,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill();
        } catch {
          // Already ended.
        }
        await child.status;
        await child.stdin.close().catch(() => {});
        running.delete(child);
      })();
      return stopped;
    },
  };
}

/**
 * Child side: prints the port, then exits once stdin reaches its end (the
 * parent closed it or ended).
 *
 * @param port The port to announce.
 */
export function announce(port: number): void {
  console.log(port);
  (async () => {
    for await (const _ of Deno.stdin.readable) {
      // Nothing is sent on stdin; it only tells when the parent is gone.
    }
    Deno.exit(0);
  })();
}
