// What every `streamwire` command shares: its description, parsed flags,
// the process around it (stdin, buffered stdout, a signal for interrupts and
// a closed stdout), and how failures map to exit codes and one-line errors.

import { parseArgs } from "node:util";
import { Status } from "../codec/constants.ts";
import { statusName, StreamwireError } from "../codec/error.ts";
import type { Output } from "./_output.ts";

import { nearest } from "./_nearest.ts";

export { nearest };

/** Exit codes: 0 success, 1 anything else, 2 usage or input, 64 + status for a remote status. */
export const Exit = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  /** Added to a PROTOCOL.md status code the remote side answered with (grpcurl's convention). */
  STATUS_BASE: 64,
  INTERRUPTED: 130,
} as const;

/** A flag of a command, as `node:util` `parseArgs` takes it, plus its help. */
export interface Flag {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** Values of the parsed flags. */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** The process a command runs in. */
export interface CliIo {
  /** Standard input. */
  readonly stdin: ReadableStream<Uint8Array>;
  /** Standard output, batched; a closed reader aborts {@linkcode CliIo.signal}. */
  readonly stdout: Output;
  /** Standard error. */
  readonly stderr: Output;
  /** Environment variables. */
  readonly env: Readonly<Record<string, string>>;
  /** Whether stdout and stderr are terminals. */
  readonly terminal: { readonly stdout: boolean; readonly stderr: boolean };
  /**
   * Aborted by SIGINT or SIGTERM (reason {@linkcode Interrupted}) or when
   * stdout's reader goes away (reason {@linkcode StdoutClosed}).
   */
  readonly signal: AbortSignal;
}

/** Reason of {@linkcode CliIo.signal} after SIGINT or SIGTERM. */
export class Interrupted extends Error {
  constructor(signal: string) {
    super(`Interrupted by ${signal}`);
    this.name = "Interrupted";
  }
}

/** Reason of {@linkcode CliIo.signal} once stdout's reader went away (`| head`). */
export class StdoutClosed extends Error {
  constructor() {
    super("stdout closed");
    this.name = "StdoutClosed";
  }
}

/** One command of `streamwire`. */
export interface Command {
  /** Name typed after `streamwire`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** First line of its help: `streamwire call <url> <method> [params] [options]`. */
  usage: string;
  /** The rest of its help: flags, then at least one example. */
  help: string;
  /** Its flags (`--help` and `--json` are added to every command). */
  flags: Record<string, Flag>;
  /** Least and most positional arguments. */
  positionals: readonly [min: number, max: number];
  /**
   * The command parses its own flags (it gets them as positionals, without
   * `--json`): for `serve`, whose flags are its configuration's.
   */
  ownFlags?: boolean;
  /**
   * Runs it.
   *
   * @returns The exit code (0 if nothing is returned).
   */
  run(args: { flags: Flags; positionals: string[] }, io: CliIo): Promise<number | void>;
}

/**
 * A failure of the command line itself: a usage error, bad input, a listen
 * failure. It exits with {@linkcode CliError.exitCode} (2 unless said).
 */
export class CliError extends Error {
  /** Status name printed before the message. */
  readonly codeName: string;
  /** Exit code. */
  readonly exitCode: number;

  constructor(codeName: string, message: string, exitCode: number = Exit.USAGE) {
    super(message);
    this.name = "CliError";
    this.codeName = codeName;
    this.exitCode = exitCode;
  }
}

/** A usage error: unknown flag, missing or extra argument, bad flag value. */
export function usage(message: string): CliError {
  return new CliError(statusName(Status.INVALID_ARGUMENT), message);
}

/** Bad input at `where` (a line or an offset): exit 2, with the codec's status name. */
export function badInput(where: string, error: unknown): CliError {
  const e = StreamwireError.from(error);
  return new CliError(e.codeName, `${where}: ${e.message}`);
}

/** The exit code of a failure. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof StreamwireError) return Exit.STATUS_BASE + error.code;
  return Exit.FAILURE;
}

/** The one line printed for a failure: `streamwire: <code_name>: <message>`, or JSON. */
export function formatError(error: unknown, json: boolean): string {
  const codeName = error instanceof CliError || error instanceof StreamwireError
    ? error.codeName
    : "error";
  const message = oneLine(error instanceof Error ? error.message : String(error));
  if (!json) return `streamwire: ${codeName}: ${message}`;
  const status = error instanceof StreamwireError ? error.code : undefined;
  return JSON.stringify({ error: { code: codeName, status, exit: exitCodeOf(error), message } });
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ");
}

/**
 * Parses a command's arguments strictly: unknown flags, missing values and
 * extra arguments are usage errors.
 */
export function parseCommand(
  command: Command,
  args: string[],
): { flags: Flags; positionals: string[] } {
  if (command.ownFlags) {
    return {
      flags: {
        help: args.includes("--help") || args.includes("-h"),
        json: args.includes("--json"),
      },
      positionals: args.filter((arg) => arg !== "--json"),
    };
  }
  const options: Record<string, Flag> = {
    ...command.flags,
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
  };
  let parsed;
  try {
    parsed = parseArgs(
      {
        args,
        options,
        allowPositionals: true,
        allowNegative: true,
        strict: true,
      } as Parameters<typeof parseArgs>[0],
    );
  } catch (error) {
    // Node's message goes on about positionals; the first sentence is the point.
    let message = (error as Error).message.replace(/\. To specify a positional.*$/s, "");
    const flag = /^Unknown option '--([^']+)'/.exec(message)?.[1];
    const guess = flag === undefined ? undefined : nearest(flag, Object.keys(options));
    if (guess !== undefined) message += `; did you mean '--${guess}'?`;
    throw usage(`${message} (see 'streamwire ${command.name} --help')`);
  }
  const flags = parsed.values as Flags;
  const positionals = parsed.positionals;
  if (flags.help) return { flags, positionals };
  const [min, max] = command.positionals;
  if (positionals.length < min) {
    throw usage(`Missing arguments: ${command.usage}`);
  }
  if (positionals.length > max) {
    throw usage(
      `Unexpected argument '${positionals[max]}' (see 'streamwire ${command.name} --help')`,
    );
  }
  return { flags, positionals };
}

/** An integer flag within bounds, or its default. */
export function intFlag(
  flags: Flags,
  name: string,
  bounds: { min: number; max?: number; default: number },
): number;
export function intFlag(
  flags: Flags,
  name: string,
  bounds: { min: number; max?: number; default?: undefined },
): number | undefined;
export function intFlag(
  flags: Flags,
  name: string,
  bounds: { min: number; max?: number; default?: number },
): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return bounds.default;
  const text = String(raw).trim();
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < bounds.min || value > max) {
    throw usage(
      `--${name} must be an integer within ${bounds.min}..${max}, got '${String(raw)}'`,
    );
  }
  return value;
}

/** A string flag limited to `choices`, or its default. */
export function choiceFlag<T extends string>(
  flags: Flags,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (!choices.includes(raw as T)) {
    throw usage(`--${name} must be one of ${choices.join(", ")}, got '${String(raw)}'`);
  }
  return raw as T;
}

/** Parses JSON given on the command line or stdin, or fails with a usage error naming `what`. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usage(`${what} is not JSON: ${(error as Error).message}`);
  }
}

/** Reads all of stdin as text, up to `limit` bytes. */
export async function readAllText(
  stdin: ReadableStream<Uint8Array>,
  limit: number,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    size += chunk.length;
    if (size > limit) throw usage(`stdin holds more than ${limit} bytes`);
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
}
