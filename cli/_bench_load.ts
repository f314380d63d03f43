// The load of `streamwire bench`: connections, each with a fixed number of
// lanes, a lane making one call at a time and starting the next from the
// previous one's completion. A lane is an object made once with its two
// callbacks bound, so a call costs the client's own work, one promise
// reaction and one clock read (a completion's time is the next start).

import { StreamwireError } from "../codec/error.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import { connect, type RpcClient } from "../rpc/client.ts";
import type { CallOptions } from "../rpc/peer.ts";
import { Histogram } from "./_bench_histogram.ts";

/** What to load and for how long. */
export interface LoadOptions {
  /** Server address, as `connect` takes it. */
  url: string;
  /** Connections opened. */
  connections: number;
  /** Calls outstanding on each connection. */
  inFlight: number;
  /** Method called. */
  method: string;
  /** Params of every call. */
  params: unknown;
  /** Payload codec offered. */
  codec: CodecName;
  /** Handshake token. */
  token: string | undefined;
  /** Timeout of each call, in ms. */
  timeoutMs: number;
  /** Calls to measure; the run ends once they completed. */
  count: number | undefined;
  /** Length of the measured run in ms, when there is no count. */
  durationMs: number | undefined;
  /** Calls made but not measured before the run, in ms. */
  warmupMs: number;
  /** Stops the run early; what ran is reported. */
  signal: AbortSignal;
}

/** One status code's failures. */
export interface ErrorCount {
  /** Calls that failed with it. */
  count: number;
  /** The first of their messages. */
  message: string;
}

/** What a run measured. */
export interface LoadResult {
  /** Measured calls completed, failures included. */
  calls: number;
  /** Of them, the ones that failed, by status code name. */
  errors: Map<string, ErrorCount>;
  /** Length of the measured run in seconds. */
  seconds: number;
  /** Latency of every measured call, in ns. */
  latency: Histogram;
  /** Connections lost during the run. */
  lostConnections: number;
  /** Whether the signal stopped the run. */
  interrupted: boolean;
}

/** A run's state, read by the progress display while it goes. */
export class Load {
  readonly latency: Histogram = new Histogram();
  readonly errors: Map<string, ErrorCount> = new Map();
  /** Measured calls completed. */
  completed = 0;
  /** Measured calls that failed. */
  failed = 0;
  /** Measured calls started. */
  started = 0;
  /** When measuring began (performance.now()); Infinity while warming up. */
  measureStart = Infinity;
  /** When measuring ended. */
  measureEnd = 0;
  stopped = false;
  interrupted = false;
  lostConnections = 0;
  readonly options: LoadOptions;
  readonly callOptions: CallOptions;
  #lanes = 0;
  #done = Promise.withResolvers<void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Failures since the last timer turn, and how many lanes wait for the next. */
  #failuresThisTurn = 0;
  #spinLimit: number;
  #waiting: Lane[] = [];
  #turnTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: LoadOptions) {
    this.options = options;
    this.callOptions = { timeout: options.timeoutMs };
    this.#spinLimit = 4 * options.connections * options.inFlight;
  }

  /** Whether the warm-up is over. */
  get measuring(): boolean {
    return this.measureStart !== Infinity;
  }

  /** Resolves once the run ended. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** Starts every lane of `clients`, the warm-up, then the measured run. */
  begin(clients: RpcClient[]): void {
    const now = performance.now();
    if (this.options.warmupMs > 0) {
      this.#timer = setTimeout(() => this.#measure(performance.now()), this.options.warmupMs);
    } else {
      this.#measure(now);
    }
    for (const client of clients) {
      const connection = new Connection(client);
      client.addEventListener("statechange", (event) => {
        const to = (event as CustomEvent<{ to: string }>).detail.to;
        if (to !== "ready" && !this.stopped && !connection.lost) {
          connection.lost = true;
          this.lostConnections++;
        }
      });
      for (let i = 0; i < this.options.inFlight; i++) {
        this.#lanes++;
        new Lane(this, connection).launch(now);
      }
    }
  }

  #measure(now: number): void {
    if (this.stopped) return;
    this.latency.reset();
    this.errors.clear();
    this.completed = this.failed = this.started = 0;
    this.measureStart = now;
    const duration = this.options.durationMs;
    if (duration !== undefined) this.#timer = setTimeout(() => this.stop(), duration);
  }

  /** Counts a measured failure. */
  fail(error: unknown): void {
    this.failed++;
    const e = StreamwireError.from(error);
    const seen = this.errors.get(e.codeName);
    if (seen === undefined) this.errors.set(e.codeName, { count: 1, message: e.message });
    else seen.count++;
  }

  /**
   * Starts `lane` again after a failure. A call the client refuses without
   * sending it (params it cannot encode) fails in a microtask: were the
   * next one always started from there, the lanes would spin without
   * letting timers or signals run. Failures are counted until a timer turn
   * passes; past a few per lane, lanes wait for that turn (timers started
   * from timers are clamped, so such a loop slows down instead of spinning),
   * while failures answered by the server go on at once.
   */
  retry(lane: Lane, now: number): void {
    if (++this.#failuresThisTurn <= this.#spinLimit) {
      this.#turnTimer ??= setTimeout(() => this.#nextTurn(), 0);
      lane.launch(now);
      return;
    }
    this.#waiting.push(lane);
  }

  #nextTurn(): void {
    this.#turnTimer = undefined;
    this.#failuresThisTurn = 0;
    const lanes = this.#waiting;
    if (lanes.length === 0) return;
    this.#waiting = [];
    this.#turnTimer = setTimeout(() => this.#nextTurn(), 0);
    const now = performance.now();
    for (const lane of lanes) lane.launch(now);
  }

  /** A lane stopped for good (its connection is gone, or the count is reached). */
  laneEnded(now: number): void {
    if (--this.#lanes === 0) this.stop(now);
  }

  /**
   * Ends the run: completions from now on are not counted.
   *
   * @param now When it ended; the last completion for a counted run.
   * @param interrupted Whether the signal stopped it.
   */
  stop(now: number = performance.now(), interrupted = false): void {
    if (this.stopped) return;
    this.stopped = true;
    this.interrupted = interrupted;
    clearTimeout(this.#timer);
    clearTimeout(this.#turnTimer);
    if (!this.measuring) this.measureStart = now;
    this.measureEnd = now;
    this.#done.resolve();
  }

  /** The result; valid once {@linkcode Load.done} resolved. */
  result(): LoadResult {
    return {
      calls: this.completed,
      errors: this.errors,
      seconds: Math.max(0, this.measureEnd - this.measureStart) / 1000,
      latency: this.latency,
      lostConnections: this.lostConnections,
      interrupted: this.interrupted,
    };
  }
}

/** A client and whether it was lost. */
class Connection {
  lost = false;
  constructor(readonly client: RpcClient) {}
}

/** One call at a time on one connection. */
class Lane {
  #load: Load;
  #connection: Connection;
  #start = 0;
  #ok = (_value: unknown) => this.#finish(performance.now(), undefined, false);
  #fail = (error: unknown) => this.#finish(performance.now(), error, true);

  constructor(load: Load, connection: Connection) {
    this.#load = load;
    this.#connection = connection;
  }

  /** Starts a call at `now`, or ends the lane if the count is reached. */
  launch(now: number): void {
    const load = this.#load;
    if (load.stopped) return;
    if (now >= load.measureStart) {
      const count = load.options.count;
      if (count !== undefined && load.started >= count) return load.laneEnded(now);
      load.started++;
    }
    this.#start = now;
    const { method, params } = load.options;
    this.#connection.client.call(method, params, load.callOptions).then(this.#ok, this.#fail);
  }

  #finish(now: number, error: unknown, failed: boolean): void {
    const load = this.#load;
    if (load.stopped) return;
    if (this.#start >= load.measureStart) {
      load.latency.record((now - this.#start) * 1e6);
      load.completed++;
      if (failed) load.fail(error);
      const count = load.options.count;
      if (count !== undefined && load.completed >= count) return load.stop(now);
    }
    if (!failed) return this.launch(now);
    // A lost connection fails every call at once from then on: the lane stops.
    if (this.#connection.client.state !== "ready") return load.laneEnded(now);
    load.retry(this, now);
  }
}

/**
 * Connects `options.connections` clients.
 *
 * @returns The ready clients.
 * @throws {StreamwireError} The first connection failure, once every other attempt settled
 *   and the connected clients are closed.
 */
export async function connectAll(options: LoadOptions): Promise<RpcClient[]> {
  const attempts = await Promise.allSettled(
    Array.from({ length: options.connections }, () =>
      connect(options.url, {
        token: options.token,
        codecs: [options.codec],
        reconnect: false,
        // A load generator sends no trace context: no interceptor per call.
        interceptors: [],
        maxPendingCalls: Math.max(options.inFlight, 10_000),
      })),
  );
  const clients: RpcClient[] = [];
  let failure: unknown;
  for (const attempt of attempts) {
    if (attempt.status === "fulfilled") clients.push(attempt.value);
    else failure ??= attempt.reason;
  }
  if (failure !== undefined) {
    await Promise.allSettled(clients.map((client) => client.close()));
    throw StreamwireError.from(failure);
  }
  return clients;
}

/**
 * Runs the load on connected clients until the count, the duration or the
 * signal ends it.
 *
 * @param load The run's state.
 * @param clients Connected clients; closed before this resolves.
 * @returns What was measured.
 */
export async function runLoad(load: Load, clients: RpcClient[]): Promise<LoadResult> {
  const signal = load.options.signal;
  const onAbort = () => load.stop(performance.now(), true);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (!load.stopped) load.begin(clients);
    await load.done;
  } finally {
    signal.removeEventListener("abort", onAbort);
    // Calls still in flight are cancelled; they were past the end and are not counted.
    await Promise.allSettled(clients.map((client) => client.close()));
  }
  return load.result();
}
