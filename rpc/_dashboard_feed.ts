// The dashboard's live numbers: one sampler per admin app that reads the
// server once a second while at least one `GET /events` stream is open
// (and not at all otherwise), and sends each stream the same event.
// Private to rpc/admin.ts.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import { DURATION_BUCKETS, type RpcMetrics } from "./metrics.ts";
import type { RpcServer } from "./server.ts";
import { SseStream } from "./_sse.ts";

/** One point of the charts. Rates and latencies are null without calls, or without metrics. */
export interface Sample {
  /** When, in ms since epoch. */
  t: number;
  /** Sessions held, handshaking ones included. */
  sessions: number;
  /** Calls finished per second since the previous sample. */
  callsPerSec: number | null;
  /** Calls finished with a status other than `ok`, per second. */
  errorsPerSec: number | null;
  /** Median handler duration of those calls, in ms (from the duration buckets). */
  p50Ms: number | null;
  /** 99th percentile handler duration, in ms. */
  p99Ms: number | null;
}

/** Options of {@linkcode DashboardFeed}. */
export interface FeedOptions {
  /** Streams open at once. */
  maxStreams: number;
  /** Sessions and topics listed per event. */
  rows: number;
  /** Samples kept for the charts. */
  history: number;
  /** Ms between samples. */
  intervalMs: number;
}

/**
 * Events held for a stream whose reader is behind: a few seconds of
 * samples. Past it the oldest go; each event carries the whole table, so
 * only chart points are lost.
 */
const STREAM_QUEUE = 8;
/** Topics a session row names; the row also counts them all. */
const ROW_TOPICS = 8;

type Totals = { at: number; calls: number; errors: number; buckets: number[] };

/** The numbers behind `GET /events`. */
export class DashboardFeed {
  #server: RpcServer;
  #options: FeedOptions;
  #streams = new Set<SseStream<Record<string, unknown>>>();
  #history: Sample[] = [];
  #last: Totals | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(server: RpcServer, options: FeedOptions) {
    this.#server = server;
    this.#options = options;
  }

  /**
   * Opens one event stream: a first event at once (the history and the
   * current tables), then one per interval until {@linkcode DashboardFeed.close}.
   *
   * @returns The streaming response.
   * @throws {StreamwireError} `resource_exhausted` when `maxStreams` are open.
   */
  open(): Response {
    if (this.#streams.size >= this.#options.maxStreams) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Dashboard event streams already open: '${this.#streams.size}' (maxEventStreams)`,
      );
    }
    const stream: SseStream<Record<string, unknown>> = new SseStream({
      limit: STREAM_QUEUE,
      encode: (data) => ({ event: "stats", data }),
      onEnd: () => {
        this.#streams.delete(stream);
        if (this.#streams.size === 0) this.#stop();
      },
    });
    this.#streams.add(stream);
    if (this.#timer === undefined) {
      this.#last = this.#totals();
      this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs);
    }
    const latest = this.#history.at(-1);
    const sample = latest !== undefined && Date.now() - latest.t < 2 * this.#options.intervalMs
      ? latest
      : this.#sample(undefined);
    // A copy: the event is encoded when the reader takes it, and ticks
    // until then must not add their samples to it a second time.
    stream.push({ history: [...this.#history], ...this.#tables(), sample });
    return stream.response();
  }

  /** Ends every stream (the server is shutting down). */
  close(): void {
    for (const stream of [...this.#streams]) stream.end();
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (!this.#server.transport.accepting) return this.close();
    const now = this.#totals();
    const sample = this.#sample(now);
    this.#last = now;
    const history = this.#history;
    history.push(sample);
    if (history.length > this.#options.history) history.shift();
    const event = { ...this.#tables(), sample };
    for (const stream of this.#streams) stream.push(event);
  }

  #totals(): Totals | undefined {
    const metrics = this.#server.metrics;
    return metrics === undefined ? undefined : totals(metrics);
  }

  /** A sample from the change since the last totals (none: rates unknown). */
  #sample(now: Totals | undefined): Sample {
    const sample: Sample = {
      t: Date.now(),
      sessions: this.#server.transport.sessionCount,
      callsPerSec: null,
      errorsPerSec: null,
      p50Ms: null,
      p99Ms: null,
    };
    const last = this.#last;
    if (now === undefined || last === undefined || now.at <= last.at) return sample;
    const seconds = (now.at - last.at) / 1000;
    sample.callsPerSec = round((now.calls - last.calls) / seconds);
    sample.errorsPerSec = round((now.errors - last.errors) / seconds);
    const counts = now.buckets.map((n, i) => n - last.buckets[i]);
    sample.p50Ms = quantileMs(0.5, counts);
    sample.p99Ms = quantileMs(0.99, counts);
    return sample;
  }

  #tables(): { total: number; rows: Record<string, unknown>[]; topics: unknown[] } {
    const transport = this.#server.transport;
    const limit = this.#options.rows;
    const rows: Record<string, unknown>[] = [];
    for (const session of transport.sessions()) {
      if (rows.length >= limit) break;
      rows.push(row(session));
    }
    const topics = transport.topics().sort((a, b) =>
      b.members - a.members || (a.topic < b.topic ? -1 : 1)
    );
    return { total: transport.sessionCount, rows, topics: topics.slice(0, limit) };
  }
}

function row(session: Session): Record<string, unknown> {
  const topics = session.topics;
  const named: string[] = [];
  for (const topic of topics) {
    if (named.length >= ROW_TOPICS) break;
    named.push(topic);
  }
  return {
    id: session.id,
    remoteAddr: session.remoteAddr,
    state: session.state,
    codec: session.codec,
    rttMs: session.stats.rttMs ?? null,
    topics: named,
    topicCount: topics.size,
    queuedFrames: session.queuedFrames,
    queuedBytes: session.queuedBytes,
  };
}

/** Calls, errors and duration buckets summed over every method label. */
function totals(metrics: RpcMetrics): Totals {
  const buckets = new Array(DURATION_BUCKETS.length + 1).fill(0);
  let calls = 0;
  let ok = 0;
  for (const [, method] of metrics.labels()) {
    for (const n of method.codes) calls += n;
    ok += method.codes[Status.OK];
    method.buckets.forEach((n, i) => buckets[i] += n);
  }
  return { at: performance.now(), calls, errors: calls - ok, buckets };
}

/**
 * The `q` quantile of durations counted per bucket (not cumulative), by
 * linear interpolation inside the bucket that holds it, as Prometheus'
 * `histogram_quantile` does; a rank in the overflow bucket reads as the
 * last bound.
 */
export function quantileMs(q: number, counts: readonly number[]): number | null {
  let total = 0;
  for (const n of counts) total += n;
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (n > 0 && below + n >= rank) {
      if (i >= DURATION_BUCKETS.length) return DURATION_BUCKETS.at(-1)! * 1000;
      const lower = i === 0 ? 0 : DURATION_BUCKETS[i - 1];
      const upper = DURATION_BUCKETS[i];
      return round((lower + (upper - lower) * ((rank - below) / n)) * 1000);
    }
    below += n;
  }
  return DURATION_BUCKETS.at(-1)! * 1000;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
