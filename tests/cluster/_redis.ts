// Starts Debian's redis-server on a free loopback port, without persistence
// (`--save "" --appendonly no`), and stops it by its process id. `restart`
// stops it and starts a fresh one on the same port: its data is gone, as
// after a crash.

import { guard } from "../transport/_helpers.ts";

/** A redis-server child process. */
export class RedisProcess {
  readonly port: number;
  #child: Deno.ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  /** The URL clients connect to. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The running process id, if any. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts a server on a free port. */
  static async start(): Promise<RedisProcess> {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const redis = new RedisProcess(port);
    await redis.resume();
    return redis;
  }

  /** Starts the server again on its port (after `stop`). */
  async resume(): Promise<void> {
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    // Ready once it says so; the rest of its output is read and dropped.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    await guard(
      (async () => {
        while (!seen.includes("Ready to accept connections")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`redis-server exited before it was ready:\n${seen}`);
          seen += value;
        }
      })(),
      `redis-server ready on port ${this.port}`,
    );
    (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })().catch(() => {});
  }

  /** Stops the server by its process id and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    Deno.kill(child.pid, "SIGTERM");
    await child.status;
  }
}
