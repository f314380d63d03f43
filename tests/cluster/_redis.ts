// Starts Debian's redis-server on a free loopback port, without persistence
// (`--save "" --appendonly no`), and stops it by its process id. `resume`
// after `stop` starts a fresh one on the same port: its data is gone, as
// after a crash.

import { freePort, spawnReady, stopChild } from "./_child.ts";

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
    const redis = new RedisProcess(freePort());
    await redis.resume();
    return redis;
  }

  /** Starts the server again on its port (after `stop`). */
  async resume(): Promise<void> {
    ({ child: this.#child } = await spawnReady(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { log: "stdout", ready: /Ready to accept connections/ },
    ));
  }

  /** Stops the server by its process id and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    await stopChild(child);
  }
}
