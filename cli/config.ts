/**
 * Server configuration from a file (JSON or TOML), environment variables and
 * command-line flags, in rising precedence, over embedded defaults. Each
 * setting is spelled the same everywhere: `max-connections` in a file and as
 * `--max-connections`, `STREAMWIRE_MAX_CONNECTIONS` in the environment.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { DEFAULT_WINDOW, MIN_HEARTBEAT_MS } from "../transport/handshake.ts";
import { LOG_LEVELS, type LogLevel } from "../rpc/logger.ts";
import { nearest } from "./_nearest.ts";

/** Settings of the server entry. */
export interface ServeConfig {
  /** Interface to bind. Binding all interfaces (`0.0.0.0`) is an explicit choice. */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Shared secret clients must send in HELLO, if set. */
  token: string | undefined;
  /** Sessions held at once. */
  maxConnections: number;
  /** Heartbeat interval in ms; a peer silent for 3 x this (the session timeout) is closed. */
  heartbeatMs: number;
  /** Time allowed for the handshake, in ms. */
  handshakeTimeoutMs: number;
  /** Graceful-shutdown drain deadline, in ms. */
  drainTimeoutMs: number;
  /** Largest frame body, in bytes. */
  maxFrame: number;
  /** Streaming window (DATA frames before CREDIT). */
  window: number;
  /** Calls served at once per connection. */
  maxConcurrentCalls: number;
  /** TLS certificate file (PEM); with `keyFile`, the server speaks TLS. */
  certFile: string | undefined;
  /** TLS private key file (PEM). */
  keyFile: string | undefined;
  /** Whether the admin HTTP API runs. */
  admin: boolean;
  /**
   * Port of the admin HTTP API; 0 picks a free one. Unset: the RPC port
   * plus one (9001 by default), or a free port when the RPC port is 0, so a
   * second instance on another `--port` does not collide.
   */
  adminPort: number | undefined;
  /** Interface of the admin HTTP API. */
  adminHost: string;
  /** Bearer token the admin API requires, if set. */
  adminToken: string | undefined;
  /** Port of the WebSocket listener (`ws://`, `wss://` with the TLS files); unset: none. */
  wsPort: number | undefined;
  /** URL path the WebSocket listener serves. */
  wsPath: string;
  /** Backplane of a cluster of servers (`redis://` or `nats://host:port`); unset: a single server. */
  cluster: string | undefined;
  /** This node's id in the cluster; unset: a random one. */
  nodeId: string | undefined;
  /**
   * Least severe log line written on stderr (JSON lines: start-up, sessions,
   * failures, admin actions); also `STREAMWIRE_LOG` in the environment.
   */
  logLevel: LogLevel;
}

/**
 * Embedded defaults: the reference design's numbers (port 9000, 10,000
 * connections, 30 s heartbeat, so a 90 s session timeout), bound to
 * loopback only.
 */
export const DEFAULT_CONFIG: Readonly<ServeConfig> = Object.freeze({
  host: "127.0.0.1",
  port: 9000,
  token: undefined,
  maxConnections: 10_000,
  heartbeatMs: 30_000,
  handshakeTimeoutMs: 5_000,
  drainTimeoutMs: 10_000,
  maxFrame: 16 * 1024 * 1024,
  window: DEFAULT_WINDOW,
  maxConcurrentCalls: 100,
  certFile: undefined,
  keyFile: undefined,
  admin: true,
  adminPort: undefined,
  adminHost: "127.0.0.1",
  adminToken: undefined,
  wsPort: undefined,
  wsPath: "/",
  cluster: undefined,
  nodeId: undefined,
  logLevel: "info",
});

/**
 * Smallest `maxFrame` the server accepts: below it a HELLO_ACK with a
 * token and a few metadata entries no longer fits, and every client fails.
 */
export const MIN_MAX_FRAME = 4096;
/** Largest `maxFrame`: the frame header's length field is a u32, and memory is finite. */
export const MAX_MAX_FRAME = 1024 * 1024 * 1024;

interface Setting {
  key: keyof ServeConfig;
  kind: "int" | "string" | "bool";
  /** Bounds of an integer; values outside make every client fail or cannot work. */
  min?: number;
  max?: number;
  arg?: string;
  /** The values a string may take. */
  values?: readonly string[];
  /** Environment variables read as this setting too; its own name wins over them. */
  aliases?: readonly string[];
  /** A secret: never logged. */
  secret?: boolean;
  help: string;
}

const SETTINGS: readonly Setting[] = [
  { key: "host", kind: "string", arg: "<host>", help: "interface to bind (default 127.0.0.1)" },
  { key: "port", kind: "int", min: 0, max: 65535, help: "TCP port, 0 = any free (default 9000)" },
  {
    key: "token",
    kind: "string",
    arg: "<secret>",
    secret: true,
    help: "require this token in HELLO",
  },
  {
    key: "maxConnections",
    kind: "int",
    min: 1,
    max: 10_000_000,
    help: "sessions held at once (default 10000)",
  },
  {
    key: "heartbeatMs",
    kind: "int",
    min: MIN_HEARTBEAT_MS,
    max: 24 * 3600_000,
    help: "heartbeat interval; silent peers close after 3x (default 30000)",
  },
  {
    key: "handshakeTimeoutMs",
    kind: "int",
    min: 1,
    max: 3600_000,
    help: "handshake deadline (default 5000)",
  },
  {
    key: "drainTimeoutMs",
    kind: "int",
    min: 0,
    max: 24 * 3600_000,
    help: "graceful shutdown deadline (default 10000)",
  },
  {
    key: "maxFrame",
    kind: "int",
    min: MIN_MAX_FRAME,
    max: MAX_MAX_FRAME,
    help: "largest frame body, at least 4096 (default 16777216)",
  },
  {
    key: "window",
    kind: "int",
    min: 1,
    max: 1_000_000,
    help: `streaming window (default ${DEFAULT_WINDOW})`,
  },
  {
    key: "maxConcurrentCalls",
    kind: "int",
    min: 1,
    max: 1_000_000,
    help: "calls served at once per connection (default 100)",
  },
  { key: "certFile", kind: "string", arg: "<pem>", help: "TLS certificate (with --key-file)" },
  { key: "keyFile", kind: "string", arg: "<pem>", help: "TLS private key" },
  { key: "admin", kind: "bool", help: "run the admin HTTP API; --no-admin turns it off" },
  {
    key: "adminPort",
    kind: "int",
    min: 0,
    max: 65535,
    help: "admin API port, 0 = any free (default: --port + 1)",
  },
  {
    key: "adminHost",
    kind: "string",
    arg: "<host>",
    help: "admin API interface (default 127.0.0.1)",
  },
  {
    key: "adminToken",
    kind: "string",
    arg: "<secret>",
    secret: true,
    help: "bearer token for the admin API",
  },
  {
    key: "wsPort",
    kind: "int",
    min: 0,
    max: 65535,
    help: "also serve sessions over WebSocket on this port, 0 = any free (default: off)",
  },
  { key: "wsPath", kind: "string", arg: "<path>", help: "URL path of the WebSocket (default /)" },
  {
    key: "cluster",
    kind: "string",
    arg: "<url>",
    secret: true,
    help: "join a cluster over this backplane, redis:// or nats://host:port (default: none)",
  },
  { key: "nodeId", kind: "string", arg: "<id>", help: "node id in the cluster (default: random)" },
  {
    key: "logLevel",
    kind: "string",
    arg: "<level>",
    values: LOG_LEVELS,
    aliases: ["STREAMWIRE_LOG"],
    help: "log lines on stderr: debug, info, warn, error or off (default info; env STREAMWIRE_LOG)",
  },
];

const BY_NAME = new Map(SETTINGS.map((s) => [settingName(s.key), s]));
const BY_ENV = new Map(
  SETTINGS.flatMap((s) => [envName(s.key), ...s.aliases ?? []].map((name) => [name, s] as const)),
);
/** `STREAMWIRE_*` variables that are not settings but are known. */
const OTHER_ENV = new Set(["STREAMWIRE_CONFIG", "STREAMWIRE_VECTORS"]);

/** Name of a setting in files and flags: kebab case (`max-connections`). */
export function settingName(key: keyof ServeConfig): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Environment variable of a setting: `STREAMWIRE_` and upper snake case. */
export function envName(key: keyof ServeConfig): string {
  return "STREAMWIRE_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

function coerce(setting: Setting, value: unknown, source: string): unknown {
  const name = settingName(setting.key);
  if (setting.kind === "int") {
    const n = typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
    const min = setting.min ?? 0;
    const max = setting.max ?? Number.MAX_SAFE_INTEGER;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw invalid(
        `${source}: '${name}' must be an integer within ${min}..${max}, got '${
          typeof value === "string" ? value : JSON.stringify(value)
        }'`,
      );
    }
    return n;
  }
  if (setting.kind === "bool") {
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw invalid(`${source}: '${name}' must be true or false, got '${String(value)}'`);
  }
  if (typeof value !== "string" || value === "") {
    throw invalid(
      `${source}: '${name}' must be a non-empty string, got '${JSON.stringify(value)}'`,
    );
  }
  if (setting.values !== undefined && !setting.values.includes(value)) {
    throw invalid(
      `${source}: '${name}' must be one of ${setting.values.join(", ")}, got '${value}'`,
    );
  }
  return value;
}

/** Where {@linkcode loadConfig} reads from; each part defaults to the real process. */
export interface ConfigSources {
  /** Command-line arguments. @default {Deno.args} */
  args?: string[];
  /** Environment variables. @default {Deno.env.toObject()} */
  env?: Record<string, string>;
  /** Reads a config file. @default {Deno.readTextFile} */
  readFile?: (path: string) => Promise<string>;
  /** Receives warnings (a misspelled setting, with the nearest name). @default {console.warn} */
  warn?: (message: string) => void;
}

/** Help text of the server flags. */
export const SERVE_USAGE: string = [
  "Usage: streamwire serve [options]",
  "",
  "Each setting is also STREAMWIRE_<NAME> in the environment and a key of the --config file,",
  "spelled as the flag: --max-connections, STREAMWIRE_MAX_CONNECTIONS, max-connections = 100.",
  "Precedence: flags, then environment, then file, then the defaults.",
  "",
  "Options:",
  `  ${"--config <file>".padEnd(29)} JSON or TOML (.toml) file with any of the settings below`,
  ...SETTINGS.map((s) => {
    const flag = `--${settingName(s.key)}${
      s.kind === "bool" ? "" : ` ${s.arg ?? (s.key.endsWith("Ms") ? "<ms>" : "<n>")}`
    }`;
    return `  ${flag.padEnd(29)} ${s.help}`;
  }),
  `  ${"-h, --help".padEnd(29)} show this help`,
  "",
  "Example:",
  "  streamwire serve --port 9100 --admin-port 0 --token s3cret",
].join("\n");

/**
 * Builds the configuration: defaults, then the `--config` file (JSON, or
 * TOML for `.toml`), then `STREAMWIRE_*` environment variables, then flags.
 * An unknown key in the file or an unknown `STREAMWIRE_*` variable is
 * ignored with a warning naming the nearest setting; an unknown flag is an
 * error.
 *
 * @param sources Arguments, environment, file reader and warning sink.
 * @returns The configuration, or `undefined` when `--help` was asked for.
 * @throws {StreamwireError} `invalid_argument` for unknown flags, bad
 *   values, or values that would make every client fail (`window` 0,
 *   `max-frame` below 4096, `max-connections` 0...).
 *
 * @example Usage
 * ```ts
 * import { loadConfig } from "@streamwire/streamwire/cli";
 * import assert from "node:assert/strict";
 *
 * const config = await loadConfig({
 *   args: ["--port", "9123"],
 *   env: { STREAMWIRE_TOKEN: "s3cret" },
 * });
 * assert.equal(config?.port, 9123);
 * assert.equal(config?.token, "s3cret");
 * assert.equal(config?.host, "127.0.0.1");
 * ```
 */
export async function loadConfig(sources: ConfigSources = {}): Promise<ServeConfig | undefined> {
  const args = sources.args ?? Deno.args;
  const env = sources.env ?? Deno.env.toObject();
  const readFile = sources.readFile ?? Deno.readTextFile;
  const warn = sources.warn ?? ((message: string) => console.warn(message));
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  for (const s of SETTINGS) {
    options[settingName(s.key)] = { type: s.kind === "bool" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs(
      {
        args,
        options,
        allowPositionals: false,
        allowNegative: true,
        strict: true,
      } as Parameters<typeof parseArgs>[0],
    );
  } catch (error) {
    const flag = /'(--?[^' ]+)/.exec((error as Error).message)?.[1];
    const guess = flag?.startsWith("--")
      ? nearest(flag.slice(2), ["config", ...BY_NAME.keys()])
      : undefined;
    throw invalid(
      `${(error as Error).message}${guess ? `; did you mean '--${guess}'?` : ""} ` +
        `(see 'streamwire serve --help')`,
    );
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help) return undefined;

  const config: ServeConfig = { ...DEFAULT_CONFIG };
  const set = (setting: Setting, value: unknown, source: string) => {
    (config as unknown as Record<string, unknown>)[setting.key] = coerce(setting, value, source);
  };
  const file = (flags.config as string | undefined) ?? env.STREAMWIRE_CONFIG;
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file);
    } catch (error) {
      throw invalid(`Config file '${file}' cannot be read: ${(error as Error).message}`);
    }
    let values: unknown;
    try {
      values = file.endsWith(".toml") ? parseToml(text) : JSON.parse(text);
    } catch (error) {
      throw invalid(`Config file '${file}' does not parse: ${(error as Error).message}`);
    }
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      throw invalid(`Config file '${file}' must hold an object of settings`);
    }
    for (const [name, value] of Object.entries(values)) {
      const setting = BY_NAME.get(name);
      if (setting === undefined) {
        const guess = nearest(name, BY_NAME.keys());
        warn(
          `streamwire: warning: config file '${file}': unknown setting '${name}' ignored` +
            (guess ? `; did you mean '${guess}'?` : ""),
        );
        continue;
      }
      set(setting, value, `config file '${file}'`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("STREAMWIRE_")) continue;
    const setting = BY_ENV.get(name);
    if (setting === undefined) {
      if (OTHER_ENV.has(name)) continue;
      const guess = nearest(name, [...BY_ENV.keys(), ...OTHER_ENV]);
      warn(
        `streamwire: warning: unknown environment variable '${name}' ignored` +
          (guess ? `; did you mean '${guess}'?` : ""),
      );
      continue;
    }
    // An alias gives way to the setting's own variable, whatever the order.
    if (name !== envName(setting.key) && env[envName(setting.key)] !== undefined) continue;
    set(setting, value, `environment ${name}`);
  }
  for (const setting of SETTINGS) {
    const value = flags[settingName(setting.key)];
    if (value !== undefined) set(setting, value, `--${settingName(setting.key)}`);
  }
  if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
    throw invalid("TLS needs both cert-file and key-file");
  }
  if (config.admin && config.adminToken === undefined && !isLoopback(config.adminHost)) {
    // The admin API kicks sessions and broadcasts: open to the network, it is anyone's.
    throw invalid(
      `The admin API on non-loopback host '${config.adminHost}' needs admin-token ` +
        "(or --no-admin)",
    );
  }
  if (!config.wsPath.startsWith("/")) {
    throw invalid(`'ws-path' must start with '/', got '${config.wsPath}'`);
  }
  return config;
}

/**
 * The settings of `config` for a log line, by their file and flag names,
 * secrets (`token`, `admin-token`) replaced by `"[redacted]"` when set.
 *
 * @param config The configuration.
 * @returns Each setting that has a value.
 *
 * @example Usage
 * ```ts
 * import { DEFAULT_CONFIG, effectiveSettings } from "@streamwire/streamwire/cli";
 * import assert from "node:assert/strict";
 *
 * const shown = effectiveSettings({ ...DEFAULT_CONFIG, token: "s3cret" });
 * assert.equal(shown["token"], "[redacted]");
 * assert.equal(shown["max-connections"], 10_000);
 * assert.ok(!("admin-token" in shown));
 * ```
 */
export function effectiveSettings(config: ServeConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = config[setting.key];
    if (value === undefined) continue;
    shown[settingName(setting.key)] = setting.secret ? "[redacted]" : value;
  }
  return shown;
}

/** Whether `host` names the loopback interface only. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The admin API's port under `config`: `admin-port` if set, else the RPC
 * port plus one, or 0 (any free port) when the RPC port is 0 or 65535.
 *
 * @param config The configuration.
 * @returns The port to bind, or undefined when the admin API is off.
 *
 * @example Usage
 * ```ts
 * import { adminPortOf, DEFAULT_CONFIG } from "@streamwire/streamwire/cli";
 * import assert from "node:assert/strict";
 *
 * assert.equal(adminPortOf(DEFAULT_CONFIG), 9001);
 * assert.equal(adminPortOf({ ...DEFAULT_CONFIG, port: 9100 }), 9101);
 * assert.equal(adminPortOf({ ...DEFAULT_CONFIG, admin: false }), undefined);
 * ```
 */
export function adminPortOf(config: ServeConfig): number | undefined {
  if (!config.admin) return undefined;
  if (config.adminPort !== undefined) return config.adminPort;
  return config.port === 0 || config.port === 65535 ? 0 : config.port + 1;
}
