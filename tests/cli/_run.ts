// Runs the `streamwire` command as a subprocess, as a user would.

/** The entry point. */
export const MAIN: string = new URL("../../cli/main.ts", import.meta.url).pathname;

/** What a finished run printed and returned. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes, for commands that write frames. */
  bytes: Uint8Array;
}

/**
 * `deno run -A cli/main.ts ...args`, with `stdin` fed whole (text or bytes)
 * or closed at once, and environment variables added to the test's own.
 */
export async function run(
  args: string[],
  options: { stdin?: string | Uint8Array; env?: Record<string, string> } = {},
): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const writer = child.stdin.getWriter();
  const feeding = (async () => {
    try {
      if (options.stdin !== undefined) {
        await writer.write(
          typeof options.stdin === "string"
            ? new TextEncoder().encode(options.stdin)
            : options.stdin,
        );
      }
      await writer.close();
    } catch {
      // The command stopped reading early (it failed, or had what it needed).
    }
  })();
  const [out] = await Promise.all([child.output(), feeding]);
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    bytes: out.stdout,
  };
}

/**
 * Starts `deno run -A cli/main.ts ...args` with piped stdio, for commands
 * that run until stopped (`serve`, `call --follow`, `capture`).
 */
export function spawn(args: string[], env?: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
}

/** The lines of a child's output, read one by one. */
export class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #pending: string[] = [];
  #rest = "";
  /** Every line read so far. */
  readonly seen: string[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line, or undefined at the end of the stream. */
  async next(): Promise<string | undefined> {
    while (this.#pending.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) {
        if (this.#rest === "") return undefined;
        this.#pending.push(this.#rest);
        this.#rest = "";
        break;
      }
      const parts = (this.#rest + value).split("\n");
      this.#rest = parts.pop()!;
      this.#pending.push(...parts);
    }
    const line = this.#pending.shift()!;
    this.seen.push(line);
    return line;
  }

  /** Reads until a line matches; throws if the stream ends first. */
  async until(match: (line: string) => boolean): Promise<string> {
    for (;;) {
      const line = await this.next();
      if (line === undefined) {
        throw new Error(`Output ended before the line awaited; lines: ${this.seen.join(" | ")}`);
      }
      if (match(line)) return line;
    }
  }

  /** Stops reading (the child's next write gets a broken pipe). */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}
