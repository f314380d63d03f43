/**
 * The `streamwire` command: `deno task cli <command>` in the repository,
 * `deno run -A jsr:@streamwire/streamwire/cli <command>` anywhere.
 *
 * | command | does |
 * | --- | --- |
 * | `serve` | the demo server with its admin API |
 * | `call` | one call: unary, streaming in either direction, `--follow` pushes, `--list` |
 * | `batch` | NDJSON calls on stdin sent as BATCH frames |
 * | `encode`, `decode` | NDJSON messages to frames and back |
 * | `inspect` | frames as a readable listing |
 * | `capture` | a recording TCP proxy |
 * | `bench` | a load generator with latency percentiles |
 * | `admin` | the admin API from the shell |
 *
 * Exit codes: 0 success, 2 usage or input error, 64 + status code when the
 * remote side answers with a PROTOCOL.md status (a lost or refused
 * connection is `unavailable`, 78), 130 when interrupted, 1 anything else.
 * A closed stdout (`| head`) ends a command quietly with 0.
 *
 * @module
 */

import {
  CliError,
  type CliIo,
  type Command,
  Exit,
  exitCodeOf,
  formatError,
  Interrupted,
  nearest,
  parseCommand,
  StdoutClosed,
  usage,
} from "./_command.ts";
import { Output, writerSink } from "./_output.ts";

interface Entry {
  summary: string;
  load(): Promise<Command>;
}

const COMMANDS: Record<string, Entry> = {
  serve: {
    summary: "run the demo server and its admin API",
    load: async () => (await import("./_cmd_serve.ts")).serveCommand,
  },
  call: {
    summary: "call a method: unary, streams, --follow pushes, --list methods",
    load: async () => (await import("./_cmd_call.ts")).callCommand,
  },
  batch: {
    summary: "send NDJSON calls from stdin as BATCH frames",
    load: async () => (await import("./_cmd_batch.ts")).batchCommand,
  },
  encode: {
    summary: "NDJSON messages on stdin to frames on stdout",
    load: async () => (await import("./_cmd_frames.ts")).encodeCommand,
  },
  decode: {
    summary: "frames on stdin to NDJSON messages on stdout",
    load: async () => (await import("./_cmd_frames.ts")).decodeCommand,
  },
  inspect: {
    summary: "frames on stdin as a readable listing",
    load: async () => (await import("./_cmd_inspect.ts")).inspectCommand,
  },
  capture: {
    summary: "a TCP proxy that records both directions as frames",
    load: async () => (await import("./_cmd_capture.ts")).captureCommand,
  },
  bench: {
    summary: "load a server and print calls/s and latency percentiles",
    load: async () => (await import("./_cmd_bench.ts")).benchCommand,
  },
  admin: {
    summary: "sessions, kick, notify, broadcast, topics, metrics over the admin API",
    load: async () => (await import("./_cmd_admin.ts")).adminCommand,
  },
};

/** The top-level help. */
export const MAIN_HELP: string = [
  "Usage: streamwire <command> [arguments] [options]",
  "",
  "Commands:",
  ...Object.entries(COMMANDS).map(([name, entry]) => `  ${name.padEnd(9)} ${entry.summary}`),
  "",
  "Every command takes --help (with an example) and --json (errors, and output where it",
  "applies, as JSON).",
  "",
  "Exit codes: 0 ok; 2 usage or input error; 64 + status code when the server answers with",
  "a status (76 unimplemented, 78 unavailable, also for a refused or lost connection);",
  "130 interrupted; 1 anything else.",
  "",
  "Example:",
  "  deno task cli call tcp://127.0.0.1:9000 add '[2,40]'",
].join("\n");

/** The help of one command. */
export function commandHelp(command: Command): string {
  return `Usage: ${command.usage}\n\n${command.help}`;
}

/**
 * Runs `streamwire` with `args`.
 *
 * @param args The arguments after `streamwire`.
 * @param io The process around it; the real one by default.
 * @returns The exit code.
 */
export async function main(args: string[], io: CliIo = processIo()): Promise<number> {
  const json = args.includes("--json");
  const [name, ...rest] = args;
  let command: Command | undefined;
  try {
    if (name === undefined) {
      io.stderr.line(MAIN_HELP);
      await io.stderr.flush();
      return Exit.USAGE;
    }
    if (name === "--help" || name === "-h" || name === "help") {
      io.stdout.line(MAIN_HELP);
      await io.stdout.flush();
      return Exit.OK;
    }
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (entry === undefined) {
      const guess = nearest(name, Object.keys(COMMANDS));
      throw usage(
        `Unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ""} ` +
          `(see 'streamwire --help')`,
      );
    }
    command = await entry.load();
    const parsed = parseCommand(command, rest);
    if (parsed.flags.help) {
      io.stdout.line(commandHelp(command));
      await io.stdout.flush();
      return Exit.OK;
    }
    const code = (await command.run(parsed, io)) ?? Exit.OK;
    await io.stdout.flush();
    return io.stdout.closed ? Exit.OK : code;
  } catch (error) {
    await io.stdout.flush().catch(() => {});
    const reason = io.signal.reason;
    if (io.stdout.closed || reason instanceof StdoutClosed) return Exit.OK;
    if (io.signal.aborted && reason instanceof Interrupted && !(error instanceof CliError)) {
      return Exit.INTERRUPTED;
    }
    io.stderr.line(formatError(error, json));
    await io.stderr.flush().catch(() => {});
    return exitCodeOf(error);
  }
}

/** The real process: Deno's stdin, stdout and stderr, SIGINT and SIGTERM. */
export function processIo(): CliIo & { dispose(): void } {
  const controller = new AbortController();
  const stdout = new Output(
    writerSink(Deno.stdout),
    () => controller.abort(new StdoutClosed()),
  );
  const stderr = new Output(writerSink(Deno.stderr));
  const listeners: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => {
      // A second signal stops at once.
      if (controller.signal.aborted) Deno.exit(Exit.INTERRUPTED);
      controller.abort(new Interrupted(signal));
    };
    try {
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    } catch {
      // Signals not supported here (Windows has no SIGTERM listener).
    }
  }
  let stdin: ReadableStream<Uint8Array> | undefined;
  return {
    get stdin() {
      return stdin ??= Deno.stdin.readable;
    },
    stdout,
    stderr,
    env: Deno.env.toObject(),
    terminal: { stdout: Deno.stdout.isTerminal(), stderr: Deno.stderr.isTerminal() },
    signal: controller.signal,
    dispose() {
      for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    },
  };
}

if (import.meta.main) {
  const io = processIo();
  const code = await main(Deno.args, io);
  io.dispose();
  Deno.exit(code);
}
