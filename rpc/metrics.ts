/**
 * Call counters of an {@linkcode RpcServer}: calls by method and status,
 * call durations, calls in flight, sessions closed on an error and the
 * traffic of closed sessions. Plain numbers updated on the call path and
 * read when scraped: the admin API's `/metrics` turns them into Prometheus
 * families.
 *
 * @module
 */

import { REFUSED } from "./_dispatcher.ts";
import { isThenable } from "./_served_errors.ts";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import { type CallContext, type MethodEntry, Methods } from "./methods.ts";

/** Method label of calls to a method the server does not have. */
export const UNKNOWN_METHOD = "_unknown";
/** Method label of registered methods past {@linkcode RpcMetricsOptions.maxMethods}. */
export const OTHER_METHODS = "_other";

/**
 * Upper bounds of the duration buckets, in seconds: from half a millisecond
 * (a call answered from memory on loopback) to ten seconds.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Status codes 0 to 16 (PROTOCOL.md 6); anything else counts as `unknown`. */
const CODES = 17;

/** Options of {@linkcode RpcMetrics}. */
export interface RpcMetricsOptions {
  /**
   * Method labels kept apart besides `_unknown`; methods past this many
   * are counted together as `_other`, so that a server registering methods at run time cannot
   * grow a scrape without bound.
   *
   * @default {256}
   */
  maxMethods?: number;
}

/** The counters of one method label. */
export interface MethodMetrics {
  /** Finished calls by status code: index 0 is `ok`. */
  readonly codes: number[];
  /** Calls finished within each of {@linkcode DURATION_BUCKETS}, not cumulative; one more slot for the rest. */
  readonly buckets: number[];
  /** Sum of durations, in seconds. */
  sum: number;
  /** Calls started and not yet finished. */
  inFlight: number;
}

/** Traffic counters summed over sessions. */
export interface TrafficTotals {
  /** Frames received. */
  framesIn: number;
  /** Frames sent. */
  framesOut: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes sent. */
  bytesOut: number;
}

/**
 * Counts what an {@linkcode RpcServer} serves. The server makes one unless
 * its `metrics` option is false, and serves its methods through
 * {@linkcode RpcMetrics.wrap}: each handler is counted where it runs, so a
 * handler that answers at once still does (an interceptor would make every
 * call asynchronous, and count it against `maxConcurrentCalls`).
 *
 * A served call counts once, when its handler finishes: a unary call, a
 * batch entry or a NOTIFY when its handler returns or settles, a client
 * stream when its result is ready, a server or bidi stream when its output
 * ends (`cancelled` if the caller stopped reading). Calls to methods the
 * server lacks, or of the wrong kind, reach no handler; the server counts
 * them from the message as `_unknown` (or the method's own label for a kind
 * mismatch) with code `unimplemented`. Calls an interceptor refuses before
 * the handler are not counted.
 *
 * A call's duration runs from its handler's start to its end, read once per
 * call where calls follow one another: a call started in the same run of
 * JavaScript as the end of the call before it (the next message of one
 * read) starts at that reading, so its duration also holds the work between
 * the two, decoding the call among it.
 *
 * @example Counting calls
 * ```ts
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const client = await connect(server.listen({ port: 0 }));
 * await client.call("echo", 1);
 * await assert.rejects(client.call("nope"));
 * await client.close();
 * await server.shutdown();
 *
 * const metrics = server.metrics!;
 * assert.equal(metrics.method("echo")?.codes[0], 1);
 * assert.equal(metrics.method("_unknown")?.codes[12], 1); // unimplemented
 * ```
 */
export class RpcMetrics {
  /** Frames and bytes of the sessions already closed. */
  readonly closedTraffic: TrafficTotals = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  /** Sessions closed on an error, by the error's status code. */
  readonly sessionErrors: number[] = new Array(CODES).fill(0);
  #methods = new Map<string, MethodMetrics>();
  #max: number;

  /**
   * Creates empty counters.
   *
   * @param options The cap on method labels.
   */
  constructor(options: RpcMetricsOptions = {}) {
    this.#max = options.maxMethods ?? 256;
  }

  /**
   * A view of `methods` whose handlers count their calls; methods
   * registered in `methods` later are counted too.
   *
   * @param methods The methods served.
   * @returns The counting view.
   */
  wrap(methods: Methods): Methods {
    return new MeteredMethods(
      methods,
      (name, entry) => this.#counted(name, entry),
      (method, known) => this.#refused(method, known),
    );
  }

  /**
   * The counters of one method label.
   *
   * @param label A method name, `_unknown` or `_other`.
   * @returns Its counters, if any call was counted under it.
   */
  method(label: string): MethodMetrics | undefined {
    return this.#methods.get(label);
  }

  /**
   * Every method label counted so far.
   *
   * @returns Pairs of label and counters.
   */
  labels(): IterableIterator<[string, MethodMetrics]> {
    return this.#methods.entries();
  }

  /**
   * Counts a closed session: its traffic, and its error if it closed on one.
   *
   * @param session The session.
   * @param reason The error it closed on, if any.
   */
  closed(session: Session, reason: StreamwireError | undefined): void {
    const { stats } = session;
    const traffic = this.closedTraffic;
    traffic.framesIn += stats.framesIn;
    traffic.framesOut += stats.framesOut;
    traffic.bytesIn += stats.bytesIn;
    traffic.bytesOut += stats.bytesOut;
    if (reason !== undefined) this.sessionErrors[code(reason.code)]++;
  }

  #counted(name: string, entry: MethodEntry): MethodEntry {
    const stats = this.#stats(name);
    const handler = entry.handler as (input: unknown, ctx: CallContext) => unknown;
    const streams = entry.kind === "server_stream" || entry.kind === "bidi";
    const counted = (input: unknown, ctx: CallContext): unknown => {
      stats.inFlight++;
      const started = reusable ? lastReading : reading();
      let result: unknown;
      try {
        result = handler(input, ctx);
      } catch (error) {
        finish(stats, started, codeOf(error));
        throw error;
      }
      // No closure here captures a local: a call that answers at once
      // allocates nothing for its counting.
      if (streams) {
        // A synchronous source stays synchronous: the producer then sends a
        // whole window in one run, where an async wrapper would cost a few
        // microtask hops per value and split the writes.
        return isSyncIterable(result)
          ? syncOutput(result, stats, started)
          : output(result as AsyncIterable<unknown>, stats, started);
      }
      if (isThenable(result)) return settled(result, stats, started);
      finish(stats, started, Status.OK);
      return result;
    };
    return { ...entry, handler: counted } as MethodEntry;
  }

  /** A call refused `unimplemented`: its method is missing, or of the other kind (`known`). */
  #refused(method: string, known: boolean): void {
    this.#stats(known ? method : UNKNOWN_METHOD).codes[Status.UNIMPLEMENTED]++;
  }

  #stats(method: string): MethodMetrics {
    let stats = this.#methods.get(method);
    if (stats === undefined) {
      const label = method === UNKNOWN_METHOD || this.#methods.size < this.#max
        ? method
        : OTHER_METHODS;
      stats = this.#methods.get(label);
      if (stats === undefined) {
        stats = {
          codes: new Array(CODES).fill(0),
          buckets: new Array(DURATION_BUCKETS.length + 1).fill(0),
          sum: 0,
          inFlight: 0,
        };
        this.#methods.set(label, stats);
      }
    }
    return stats;
  }
}

// The clock: `performance.now()` costs more than the rest of the counting
// together (85-105 ns a reading here; the rest about 10 ns in a tight
// loop), so a call reads it once where it can. The reading that ends a call
// also starts the next call begun in the same run of JavaScript (the next
// message of the same read, typically), until the microtask queued with the
// first reading of that run clears it. Such a call's duration includes the
// work done since the previous call ended, decoding the call itself among
// it: about a microsecond per call in a pipelined burst here, against
// buckets that start at half a millisecond.
let lastReading = 0;
let reusable = false;
const expire = () => {
  reusable = false;
};

function reading(): number {
  lastReading = performance.now();
  if (!reusable) {
    reusable = true;
    queueMicrotask(expire);
  }
  return lastReading;
}

function finish(stats: MethodMetrics, started: number, status: number): void {
  const seconds = (reading() - started) / 1000;
  stats.inFlight--;
  stats.codes[code(status)]++;
  stats.sum += seconds;
  let i = 0;
  while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
  stats.buckets[i]++;
}

/** A view of methods whose entries are wrapped once each, at first lookup. */
class MeteredMethods extends Methods {
  #inner: Methods;
  #wrap: (name: string, entry: MethodEntry) => MethodEntry;
  #wrapped = new WeakMap<MethodEntry, MethodEntry>();
  /** Counts a call the dispatcher refused `unimplemented`. */
  readonly [REFUSED]: (method: string, known: boolean) => void;

  constructor(
    inner: Methods,
    wrap: (name: string, entry: MethodEntry) => MethodEntry,
    refused: (method: string, known: boolean) => void,
  ) {
    super();
    this.#inner = inner;
    this.#wrap = wrap;
    this[REFUSED] = refused;
  }

  override get(name: string): MethodEntry | undefined {
    const entry = this.#inner.get(name);
    if (entry === undefined) return undefined;
    let wrapped = this.#wrapped.get(entry);
    if (wrapped === undefined) this.#wrapped.set(entry, wrapped = this.#wrap(name, entry));
    return wrapped;
  }

  override names(): IterableIterator<string> {
    return this.#inner.names();
  }
}

/** A stream handler's synchronous output, counted when it ends. */
function* syncOutput(
  source: Iterable<unknown>,
  stats: MethodMetrics,
  started: number,
): Generator<unknown> {
  // Left early (return()): the caller cancelled or went away.
  let status: number = Status.CANCELLED;
  try {
    yield* source;
    status = Status.OK;
  } catch (error) {
    status = codeOf(error);
    throw error;
  } finally {
    finish(stats, started, status);
  }
}

function isSyncIterable(value: unknown): value is Iterable<unknown> {
  return value !== null && typeof value === "object" &&
    typeof (value as Iterable<unknown>)[Symbol.iterator] === "function" &&
    !(Symbol.asyncIterator in value);
}

/** A stream handler's output, counted when it ends. */
async function* output(
  source: AsyncIterable<unknown> | Iterable<unknown>,
  stats: MethodMetrics,
  started: number,
): AsyncGenerator<unknown> {
  // Left early (return()): the caller cancelled or went away.
  let status: number = Status.CANCELLED;
  try {
    yield* source;
    status = Status.OK;
  } catch (error) {
    status = codeOf(error);
    throw error;
  } finally {
    finish(stats, started, status);
  }
}

/** A handler's promise, counted when it settles. */
function settled(
  result: PromiseLike<unknown>,
  stats: MethodMetrics,
  started: number,
): Promise<unknown> {
  return Promise.resolve(result).then(
    (value) => {
      finish(stats, started, Status.OK);
      return value;
    },
    (error) => {
      finish(stats, started, codeOf(error));
      throw error;
    },
  );
}

function codeOf(error: unknown): number {
  return error instanceof StreamwireError ? error.code : Status.UNKNOWN;
}

function code(status: number): number {
  return status >= 0 && status < CODES ? status : Status.UNKNOWN;
}
