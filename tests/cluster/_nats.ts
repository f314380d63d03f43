// Starts Debian's nats-server with JetStream (`-js`) on a free loopback port
// with its store in a fresh temporary directory, and stops it by its process
// id. `stop` removes the directory, so `resume` starts a server on the same
// port that has lost its data, as after a crash that took the disk.

import { freePort, spawnReady, stopChild } from "./_child.ts";

/** Debian installs it in /usr/sbin, which a user's PATH may leave out. */
const BIN = (() => {
  try {
    Deno.statSync("/usr/sbin/nats-server");
    return "/usr/sbin/nats-server";
  } catch {
    return "nats-server";
  }
})();

/** A nats-server child process. */
export class NatsProcess {
  readonly port: number;
  #child: Deno.ChildProcess | undefined;
  #dir: string | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  /** The URL clients connect to. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The running process id, if any. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts a server on a free port. */
  static async start(): Promise<NatsProcess> {
    const nats = new NatsProcess(freePort());
    await nats.resume();
    return nats;
  }

  /** Starts the server again on its port (after `stop`), with an empty store. */
  async resume(): Promise<void> {
    this.#dir = await Deno.makeTempDir({ prefix: "streamwire-nats-" });
    ({ child: this.#child } = await spawnReady(
      BIN,
      ["-js", "-sd", this.#dir, "-a", "127.0.0.1", "-p", String(this.port)],
      { log: "stderr", ready: /Server is ready/, other: "null" }, // it logs to standard error
    ));
  }

  /** Stops the server by its process id, waits for it to exit and removes its store. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child !== undefined) {
      this.#child = undefined;
      await stopChild(child);
    }
    if (this.#dir !== undefined) {
      await Deno.remove(this.#dir, { recursive: true });
      this.#dir = undefined;
    }
  }
}
