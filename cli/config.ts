/**
 * Server configuration from a file (JSON or TOML), environment variables and
 * command-line flags, in rising precedence, over embedded defaults.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { DEFAULT_WINDOW } from "../transport/handshake.ts";

/** Settings of the server entry. */
export interface ServeConfig {
  /** Interface to bind. Binding all interfaces (`0.0.0.0`) is an explicit choice. */
  host: string;
  /** TCP port. */
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
  /** Port of the admin HTTP API; 0 turns it off. */
  adminPort: number;
  /** Interface of the admin HTTP API. */
  adminHost: string;
  /** Bearer token the admin API requires, if set. */
  adminToken: string | undefined;
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
  adminPort: 9001,
  adminHost: "127.0.0.1",
  adminToken: undefined,
});

const NUMERIC = new Set<keyof ServeConfig>([
  "port",
  "maxConnections",
  "heartbeatMs",
  "handshakeTimeoutMs",
  "drainTimeoutMs",
  "maxFrame",
  "window",
  "maxConcurrentCalls",
  "adminPort",
]);

const KEYS = Object.keys(DEFAULT_CONFIG) as (keyof ServeConfig)[];

/** Environment variable of each setting: `STREAMWIRE_` and the name in upper snake case. */
function envName(key: string): string {
  return "STREAMWIRE_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/** Flag of each setting: the name in kebab case. */
function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

function coerce(key: keyof ServeConfig, value: unknown, source: string): unknown {
  if (NUMERIC.has(key)) {
    const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw invalid(`${source}: '${key}' must be a non-negative integer, got '${String(value)}'`);
    }
    if (key === "port" && n > 65535) throw invalid(`${source}: port '${n}' is above 65535`);
    return n;
  }
  if (typeof value !== "string") {
    throw invalid(`${source}: '${key}' must be a string, got '${JSON.stringify(value)}'`);
  }
  return value;
}

function apply(target: ServeConfig, values: Record<string, unknown>, source: string): void {
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!KEYS.includes(key as keyof ServeConfig)) {
      throw invalid(`${source}: unknown setting '${key}'`);
    }
    (target as unknown as Record<string, unknown>)[key] = coerce(
      key as keyof ServeConfig,
      value,
      source,
    );
  }
}

/** Where {@linkcode loadConfig} reads from; each part defaults to the real process. */
export interface ConfigSources {
  /** Command-line arguments. @default {Deno.args} */
  args?: string[];
  /** Environment variables. @default {Deno.env.toObject()} */
  env?: Record<string, string>;
  /** Reads a config file. @default {Deno.readTextFile} */
  readFile?: (path: string) => Promise<string>;
}

/** Help text of the server flags. */
export const SERVE_USAGE: string = `Usage: deno task serve [options]

Options (each also STREAMWIRE_<NAME> in the environment, or a key of --config):
  --config <file>              JSON or TOML file with any of the settings below
  --host <host>                interface to bind (default 127.0.0.1)
  --port <port>                TCP port (default 9000)
  --token <secret>             require this token in HELLO
  --max-connections <n>        sessions held at once (default 10000)
  --heartbeat-ms <ms>          heartbeat interval; silent peers close after 3x (default 30000)
  --handshake-timeout-ms <ms>  handshake deadline (default 5000)
  --drain-timeout-ms <ms>      graceful shutdown deadline (default 10000)
  --max-frame <bytes>          largest frame (default 16777216)
  --window <n>                 streaming window (default 512)
  --max-concurrent-calls <n>   calls per connection (default 100)
  --cert-file <pem>            TLS certificate (with --key-file)
  --key-file <pem>             TLS private key
  --admin-port <port>          admin HTTP API port, 0 = off (default 9001)
  --admin-host <host>          admin HTTP API interface (default 127.0.0.1)
  --admin-token <secret>       bearer token for the admin API
  -h, --help                   show this help`;

/**
 * Builds the configuration: defaults, then the `--config` file (JSON, or
 * TOML for `.toml`), then `STREAMWIRE_*` environment variables, then flags.
 *
 * @param sources Arguments, environment and file reader.
 * @returns The configuration, or `undefined` when `--help` was asked for.
 * @throws {StreamwireError} `invalid_argument` for unknown flags or bad values.
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
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  for (const key of KEYS) options[flagName(key)] = { type: "string" };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw invalid(`${(error as Error).message}\n\n${SERVE_USAGE}`);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help) return undefined;

  const config: ServeConfig = { ...DEFAULT_CONFIG };
  const file = (flags.config as string | undefined) ?? env.STREAMWIRE_CONFIG;
  if (file !== undefined) {
    const text = await readFile(file);
    let values: unknown;
    try {
      values = file.endsWith(".toml") ? parseToml(text) : JSON.parse(text);
    } catch (error) {
      throw invalid(`Config file '${file}' does not parse: ${(error as Error).message}`);
    }
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      throw invalid(`Config file '${file}' must hold an object of settings`);
    }
    apply(config, values as Record<string, unknown>, `config file '${file}'`);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const key of KEYS) fromEnv[key] = env[envName(key)];
  apply(config, fromEnv, "environment");
  const fromFlags: Record<string, unknown> = {};
  for (const key of KEYS) fromFlags[key] = flags[flagName(key)];
  apply(config, fromFlags, "flags");
  if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
    throw invalid("TLS needs both certFile and keyFile");
  }
  return config;
}
