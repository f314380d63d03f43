// A script run as a child process that answers one JSON line per command
// line, for measurements that must not count the driver's own memory
// (tests/transport/soak_10k.ts, tests/bench/idle_session_memory.ts).

/** The lines of a byte stream, without their newlines. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
}

/** In the child: answers the driver with one JSON line. */
export function reply(value: unknown): void {
  console.log(JSON.stringify(value));
}

/** In the driver: `deno run -A <flags> <script> <args>`, asked with command lines. */
export class JsonChild {
  readonly process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #replies: AsyncGenerator<string>;

  /**
   * @param script The script's path (usually `import.meta.filename`).
   * @param args Its arguments.
   * @param flags `deno run` flags before the script, such as `--v8-flags=--expose-gc`.
   */
  constructor(script: string, args: string[], flags: string[] = []) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...flags, script, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.process.stdin.getWriter();
    this.#replies = lines(this.process.stdout);
  }

  /** Sends a command (none: just reads the next reply) and reads the reply. */
  async ask(command?: string): Promise<Record<string, unknown>> {
    if (command) await this.#writer.write(new TextEncoder().encode(command + "\n"));
    const { value, done } = await this.#replies.next();
    if (done) throw new Error(`Child process ended before answering '${command ?? "ready"}'`);
    return JSON.parse(value);
  }

  /** Closes the child's stdin (its signal to stop) and waits for it to end. */
  async end(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.process.status;
    await this.#replies.return(undefined);
  }
}
