// `streamwire bench <url>`: a load generator. Connections each keep a fixed
// number of unary calls in flight for a duration or a count of calls, then
// calls/s, latency percentiles (from a bounded histogram) and failures by
// status code are printed as text or one JSON object.

import type { CodecName } from "../codec/payload_codec.ts";
import {
  choiceFlag,
  type CliIo,
  type Command,
  Exit,
  type Flags,
  Interrupted,
  intFlag,
  parseJson,
  usage,
} from "./_command.ts";
import type { Output } from "./_output.ts";
import { connectAll, Load, type LoadOptions, type LoadResult, runLoad } from "./_bench_load.ts";
import { dialTarget, tokenOf } from "./_target.ts";

const CODECS = ["msgpack", "cbor", "json"] as const;

/** Largest `--payload-size`: the default largest frame (16 MiB) less room for its header. */
const MAX_PAYLOAD = 16 * 1024 * 1024 - 1024;
/** Longest `--duration`, `--warmup` or `--timeout`: a week, so a typo cannot overflow a timer. */
const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;
/** How often the progress bar is redrawn, in ms. */
const PROGRESS_EVERY_MS = 100;

const HELP = `Keeps --in-flight unary calls outstanding on each of --connections connections,
for --duration or until --count calls completed, then prints calls/s, latency percentiles
and failures by status code. Latencies are kept in a histogram of fixed size (log-linear
buckets, within 0.8%), so a long run uses no more memory than a short one.

Options:
  -c, --connections <n>   connections to open (default 1)
      --in-flight <n>     calls outstanding per connection (default 128)
  -d, --duration <time>   length of the measured run: 500ms, 10s, 2m; a bare number is
                          seconds (default 10s unless --count is given)
  -n, --count <n>         measure this many calls instead of a duration
      --method <name>     unary method to call (default echo)
      --payload-size <n>  params of that many bytes: a byte array, or a string of that
                          length with --codec json (default 64)
      --params <json>     these params instead of a payload
      --codec <name>      msgpack, cbor or json (default msgpack)
      --token <secret>    handshake token (or STREAMWIRE_TOKEN)
      --timeout <time>    per-call timeout: 500ms, 5s; a bare number is ms (default 30s)
      --warmup <time>     calls made but not measured before the run (default 0)
      --json              print one JSON object instead of text

Output: text, one "name  value" line each: target, load, calls, calls/s, latency in ms
(p50, p90, p99, max, mean), one errors line per status code. With --json: {url, method,
codec, payloadSize, params, connections, inFlight, warmupSeconds, calls, errorCount,
errors: {<code_name>: {count, message}}, seconds, callsPerSecond, latencyMs: {min, mean,
p50, p90, p99, p999, max}, lostConnections, interrupted}.
Every completed call is measured, failed ones too. A progress bar is drawn on stderr when it
is a terminal. Ctrl-C stops the run and prints what ran.

Exit: 0 once the run took place (call failures are reported, not fatal); 64 + status when it
could not connect (78 unavailable for a refused connection, 80 for a bad token); 2 for bad
flags; 130 when interrupted (the summary is printed first).

Examples:
  streamwire bench tcp://127.0.0.1:9000 --duration 10s
  streamwire bench tcp://127.0.0.1:9000 -c 2 --in-flight 64 --count 100000 --json
  streamwire bench tcp://127.0.0.1:9000 --method add --params '[2,40]' --codec json`;

/** Milliseconds of a duration flag: `500ms`, `10s`, `2m`, or a bare number in `bareUnit`. */
function durationFlag(
  flags: Flags,
  name: string,
  bareUnit: "ms" | "s",
  fallback: number | undefined,
): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(raw).trim());
  const unit = match?.[2] ?? bareUnit;
  const ms = match ? Number(match[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000) : NaN;
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) {
    throw usage(`--${name} must be a duration such as 500ms, 10s or 2m, got '${String(raw)}'`);
  }
  return ms;
}

function paramsOf(flags: Flags, codec: CodecName): { params: unknown; payloadSize?: number } {
  if (flags.params !== undefined) {
    if (flags["payload-size"] !== undefined) {
      throw usage("--params and --payload-size cannot be used together");
    }
    return { params: parseJson(String(flags.params), "--params") };
  }
  const size = intFlag(flags, "payload-size", { min: 0, max: MAX_PAYLOAD, default: 64 });
  // JSON has no bytes type: a string of as many bytes, as the JSON-RPC baselines send.
  const params = codec === "json"
    ? "x".repeat(size)
    : Uint8Array.from({ length: size }, (_, i) => i & 0xff);
  return { params, payloadSize: size };
}

function options(flags: Flags, positionals: string[], io: CliIo) {
  const url = positionals[0];
  // A bad URL is a usage error here, not a failure of every connection.
  dialTarget(url, flags);
  const codec = choiceFlag(flags, "codec", CODECS, "msgpack");
  const count = intFlag(flags, "count", { min: 1 });
  if (count !== undefined && flags.duration !== undefined) {
    throw usage("--count and --duration cannot be used together");
  }
  const method = String(flags.method ?? "echo");
  if (method.length === 0) throw usage("--method must not be empty");
  const { params, payloadSize } = paramsOf(flags, codec);
  const timeoutMs = durationFlag(flags, "timeout", "ms", 30_000)!;
  if (timeoutMs < 1) throw usage(`--timeout must be at least 1ms, got '${flags.timeout}'`);
  const durationMs = count === undefined ? durationFlag(flags, "duration", "s", 10_000) : undefined;
  if (durationMs !== undefined && durationMs < 1) {
    throw usage(`--duration must be at least 1ms, got '${flags.duration}'`);
  }
  const load: LoadOptions = {
    url,
    connections: intFlag(flags, "connections", { min: 1, max: 10_000, default: 1 }),
    inFlight: intFlag(flags, "in-flight", { min: 1, max: 65_536, default: 128 }),
    method,
    params,
    codec,
    token: tokenOf(flags, io),
    timeoutMs,
    count,
    durationMs,
    warmupMs: durationFlag(flags, "warmup", "s", 0)!,
    signal: io.signal,
  };
  return { load, payloadSize };
}

/** Redraws one line on stderr while the run goes. */
class Progress {
  #out: Output;
  #load: Load;
  #timer: ReturnType<typeof setInterval>;
  #last = { at: performance.now(), completed: 0 };
  #rate = 0;

  constructor(out: Output, load: Load) {
    this.#out = out;
    this.#load = load;
    this.#timer = setInterval(() => this.#draw(), PROGRESS_EVERY_MS);
  }

  #draw(): void {
    const load = this.#load;
    const now = performance.now();
    if (!load.measuring) {
      this.#out.write(`\r\x1b[2Kwarming up ...`);
      return;
    }
    // The rate starts over with the measured run.
    if (this.#last.at < load.measureStart) this.#last = { at: load.measureStart, completed: 0 };
    const since = now - this.#last.at;
    if (since > 0) this.#rate = (load.completed - this.#last.completed) * 1000 / since;
    this.#last = { at: now, completed: load.completed };
    const { count, durationMs } = load.options;
    const done = count !== undefined
      ? load.completed / count
      : Math.min(1, (now - load.measureStart) / durationMs!);
    const width = 30;
    const filled = Math.round(done * width);
    const bar = "=".repeat(filled) + " ".repeat(width - filled);
    this.#out.write(
      `\r\x1b[2K[${bar}] ${(done * 100).toFixed(0).padStart(3)}%  ${load.completed} calls  ` +
        `${Math.round(this.#rate)} calls/s  ${load.failed} errors`,
    );
  }

  /** Stops drawing and clears the line. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#out.write("\r\x1b[2K");
    await this.#out.flush();
  }
}

const ms = (ns: number) => Math.round(ns / 1000) / 1000;

function summary(load: LoadOptions, payloadSize: number | undefined, r: LoadResult) {
  const h = r.latency;
  const errorCount = [...r.errors.values()].reduce((sum, e) => sum + e.count, 0);
  return {
    url: load.url,
    method: load.method,
    codec: load.codec,
    payloadSize: payloadSize ?? null,
    params: payloadSize === undefined ? load.params : null,
    connections: load.connections,
    inFlight: load.inFlight,
    warmupSeconds: load.warmupMs / 1000,
    calls: r.calls,
    errorCount,
    errors: Object.fromEntries(r.errors),
    seconds: Math.round(r.seconds * 1e6) / 1e6,
    callsPerSecond: r.seconds > 0 ? Math.round(r.calls / r.seconds) : 0,
    latencyMs: {
      min: ms(h.min),
      mean: ms(h.mean),
      p50: ms(h.quantile(0.5)),
      p90: ms(h.quantile(0.9)),
      p99: ms(h.quantile(0.99)),
      p999: ms(h.quantile(0.999)),
      max: ms(h.max),
    },
    lostConnections: r.lostConnections,
    interrupted: r.interrupted,
  };
}

function printText(out: Output, s: ReturnType<typeof summary>): void {
  const row = (name: string, value: string) => out.line(`${name.padEnd(12)} ${value}`);
  const what = s.payloadSize === null
    ? `params ${JSON.stringify(s.params)}`
    : `${s.payloadSize}-byte params`;
  row("target", `${s.url} ${s.method} (${s.codec}, ${what})`);
  row(
    "load",
    `${s.connections} connection${s.connections === 1 ? "" : "s"} x ${s.inFlight} in flight` +
      (s.warmupSeconds > 0 ? `, ${s.warmupSeconds} s warm-up` : ""),
  );
  row("calls", `${s.calls} in ${s.seconds.toFixed(3)} s, ${s.errorCount} failed`);
  row("calls/s", String(s.callsPerSecond));
  const l = s.latencyMs;
  const f = (v: number) => v.toFixed(3);
  row(
    "latency ms",
    `p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  max ${f(l.max)}  mean ${f(l.mean)}`,
  );
  if (s.errorCount === 0) row("errors", "none");
  for (const [name, e] of Object.entries(s.errors)) {
    row("errors", `${e.count} ${name}: ${e.message}`);
  }
  if (s.lostConnections > 0) row("lost", `${s.lostConnections} connection(s) lost during the run`);
  if (s.interrupted) row("stopped", "interrupted before the end");
}

/** `streamwire bench`. */
export const benchCommand: Command = {
  name: "bench",
  summary: "load a server and print calls/s and latency percentiles",
  usage: "streamwire bench <url> [options]",
  help: HELP,
  flags: {
    connections: { type: "string", short: "c" },
    "in-flight": { type: "string" },
    duration: { type: "string", short: "d" },
    count: { type: "string", short: "n" },
    method: { type: "string" },
    "payload-size": { type: "string" },
    params: { type: "string" },
    codec: { type: "string" },
    token: { type: "string" },
    timeout: { type: "string" },
    warmup: { type: "string" },
  },
  positionals: [1, 1],
  async run({ flags, positionals }, io) {
    const { load: plan, payloadSize } = options(flags, positionals, io);
    const clients = await connectAll(plan);
    const load = new Load(plan);
    const progress = io.terminal.stderr ? new Progress(io.stderr, load) : undefined;
    let result: LoadResult;
    try {
      result = await runLoad(load, clients);
    } finally {
      await progress?.stop();
    }
    const s = summary(plan, payloadSize, result);
    if (flags.json) io.stdout.line(JSON.stringify(s));
    else printText(io.stdout, s);
    return result.interrupted && io.signal.reason instanceof Interrupted
      ? Exit.INTERRUPTED
      : Exit.OK;
  },
};
