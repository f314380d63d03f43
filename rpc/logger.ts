/**
 * Structured logs: a {@linkcode Logger} interface that {@linkcode RpcServer}
 * and the admin API write through, and {@linkcode jsonLogger}, which writes
 * one bounded JSON line per entry.
 *
 * @module
 */

/** Severity of a log entry, least first; `off` writes nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "off";

/** The levels an entry can have (every {@linkcode LogLevel} but `off`). */
export type EntryLevel = Exclude<LogLevel, "off">;

/** Every level, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze([
  "debug",
  "info",
  "warn",
  "error",
  "off",
]);

/** The fields of a log entry, beside its message. */
export type LogFields = Record<string, unknown>;

/** Receives log entries; each method takes a short message and its fields. */
export interface Logger {
  /** Detail for debugging. */
  debug(message: string, fields?: LogFields): void;
  /** What an operator wants in the log: start-up, sessions, admin actions. */
  info(message: string, fields?: LogFields): void;
  /** Something went wrong for one peer or one request, not for the server. */
  warn(message: string, fields?: LogFields): void;
  /** A failure: a handler that threw, a bug. */
  error(message: string, fields?: LogFields): void;
}

/** A logger as one function, the level passed first. */
export type LogFunction = (level: EntryLevel, message: string, fields: LogFields) => void;

/** Options of {@linkcode jsonLogger}. */
export interface JsonLoggerOptions {
  /**
   * Least severe level written; `off` writes nothing.
   *
   * @default {"info"}
   */
  level?: LogLevel;
  /**
   * Receives each line, without its newline.
   *
   * @default {console.error: one line on standard error}
   */
  write?: (line: string) => void;
  /**
   * Longest string field (a message, an error's stack, a reason sent by a
   * peer), in UTF-16 units; longer ones are cut and marked, so a peer's
   * 64 KiB reason cannot make every line that quotes it 64 KiB.
   *
   * @default {2048}
   */
  maxFieldLength?: number;
  /**
   * Longest line, in UTF-16 units. Fields that would go past it are left
   * out, and `"truncated"` counts them.
   *
   * @default {16384}
   */
  maxLineLength?: number;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, off: 4 };
/** Keys a line starts with; a field of the same name gets a leading `_`. */
const RESERVED = new Set(["time", "level", "msg", "truncated"]);
const MAX_KEY = 64;

/**
 * Whether `value` names a {@linkcode LogLevel}.
 *
 * @param value Anything.
 * @returns True for `debug`, `info`, `warn`, `error` and `off`.
 *
 * @example Usage
 * ```ts
 * import { isLogLevel } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isLogLevel("warn"));
 * assert.ok(!isLogLevel("verbose"));
 * ```
 */
export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && Object.hasOwn(RANK, value);
}

/**
 * A logger writing one JSON object per line:
 * `{"time":"<ISO 8601>","level":"info","msg":"<message>",...fields}`.
 * Entries below `level` are dropped before anything is formatted. Every
 * line is bounded: long strings are cut to `maxFieldLength` (with
 * `…(+N)` naming what was cut), objects whose JSON is longer become that
 * JSON cut the same way, and fields past `maxLineLength` are left out.
 * A sink that throws loses the line, never the caller's work.
 *
 * @param options Level, sink and bounds.
 * @returns The logger.
 *
 * @example Usage
 * ```ts
 * import { jsonLogger } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const log = jsonLogger({ level: "info", write: (line) => lines.push(line) });
 * log.debug("not written");
 * log.info("session opened", { session: "s1", token: undefined });
 * assert.equal(lines.length, 1);
 * const entry = JSON.parse(lines[0]);
 * assert.equal(entry.level, "info");
 * assert.equal(entry.msg, "session opened");
 * assert.equal(entry.session, "s1");
 * ```
 */
export function jsonLogger(options: JsonLoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  if (!isLogLevel(level)) {
    throw new TypeError(`Log level must be one of ${LOG_LEVELS.join(", ")}, got '${level}'`);
  }
  const least = RANK[level];
  const write = options.write ?? ((line: string) => console.error(line));
  const maxField = Math.max(16, options.maxFieldLength ?? 2048);
  const maxLine = Math.max(maxField + 256, options.maxLineLength ?? 16384);
  const entry = (at: EntryLevel) => (message: string, fields?: LogFields) => {
    if (RANK[at] < least) return;
    try {
      write(formatLine(at, message, fields, maxField, maxLine));
    } catch { /* the log is lost, not the work that logged it */ }
  };
  return { debug: entry("debug"), info: entry("info"), warn: entry("warn"), error: entry("error") };
}

/**
 * A {@linkcode Logger} from a logger object or a {@linkcode LogFunction};
 * its methods never throw, whatever the one given does, so a failing log
 * sink cannot take a connection with it.
 *
 * @param logger An object with `debug`, `info`, `warn` and `error`, or a function.
 * @returns A logger that calls it.
 *
 * @example Usage
 * ```ts
 * import { asLogger } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * const log = asLogger((level, message) => seen.push(`${level} ${message}`));
 * log.warn("slow consumer", { session: "s1" });
 * asLogger({ ...log, error: () => { throw new Error("full disk"); } }).error("lost");
 * assert.deepEqual(seen, ["warn slow consumer"]);
 * ```
 */
export function asLogger(logger: Logger | LogFunction): Logger {
  const call = typeof logger === "function"
    ? (level: EntryLevel, message: string, fields: LogFields | undefined) =>
      logger(level, message, fields ?? {})
    : (level: EntryLevel, message: string, fields: LogFields | undefined) =>
      logger[level](message, fields);
  const entry = (level: EntryLevel) => (message: string, fields?: LogFields) => {
    try {
      call(level, message, fields);
    } catch { /* see above */ }
  };
  return { debug: entry("debug"), info: entry("info"), warn: entry("warn"), error: entry("error") };
}

/** One JSON line of at most `maxLine` units. */
function formatLine(
  level: EntryLevel,
  message: string,
  fields: LogFields | undefined,
  maxField: number,
  maxLine: number,
): string {
  let line = `{"time":"${new Date().toISOString()}","level":"${level}","msg":${
    JSON.stringify(cut(String(message), maxField))
  }`;
  let dropped = 0;
  // Room kept for `,"truncated":N}`.
  const limit = maxLine - 32;
  if (fields !== undefined) {
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (value === undefined || typeof value === "function" || typeof value === "symbol") continue;
      const name = RESERVED.has(key) ? `_${key}` : key;
      const part = `,${JSON.stringify(cut(name, MAX_KEY))}:${encode(value, maxField)}`;
      if (line.length + part.length > limit) {
        dropped++;
        continue;
      }
      line += part;
    }
  }
  return line + (dropped > 0 ? `,"truncated":${dropped}}` : "}");
}

/** `text` cut to `max` units, the cut marked with how much was left out. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const mark = `…(+${text.length - max})`;
  return text.slice(0, Math.max(0, max - mark.length)) + mark;
}

/** The JSON of a field value, at most about `max` units. */
function encode(value: unknown, max: number): string {
  if (typeof value === "string") return JSON.stringify(cut(value, max));
  if (typeof value === "bigint") return JSON.stringify(String(value));
  if (value instanceof Error) {
    return encode({ name: value.name, message: value.message }, max);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value, (_key, v) => {
      if (typeof v === "bigint") return String(v);
      if (typeof v === "string") return cut(v, max);
      if (v instanceof Uint8Array) return `<${v.length} bytes>`;
      return v;
    });
  } catch (error) {
    return JSON.stringify(cut(`[unserializable: ${(error as Error).message}]`, max));
  }
  if (json === undefined) return "null";
  return json.length <= max ? json : JSON.stringify(cut(json, max));
}
