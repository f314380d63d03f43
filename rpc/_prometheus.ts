// The Prometheus families of an RpcServer, in a prom-client registry of its
// own: every value is read from the server's counters when scraped (collect
// callbacks), so nothing on the call path touches prom-client.

import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValueWithName,
  Registry,
} from "prom-client";
import { statusName } from "../codec/error.ts";
import type { ServerMetrics } from "../transport/server.ts";
import { SessionState } from "../transport/session_options.ts";
import { DURATION_BUCKETS, type RpcMetrics, type TrafficTotals } from "./metrics.ts";
import type { RpcServer } from "./server.ts";

const PREFIX = "streamwire_";
const STATES = Object.values(SessionState);

/** Per-method call durations, read from {@linkcode RpcMetrics} when scraped. */
class CallDurations extends Histogram<"method"> {
  #metrics: RpcMetrics | undefined;

  constructor(registry: Registry, metrics: RpcMetrics | undefined) {
    super({
      name: `${PREFIX}call_duration_seconds`,
      help: "Duration of served calls, until the response or the end of the stream.",
      labelNames: ["method"],
      buckets: [...DURATION_BUCKETS],
      registers: [registry],
    });
    this.#metrics = metrics;
  }

  // The registry writes a histogram from this method when it has one.
  getForPromString(): ReturnType<CallDurations["get"]> {
    return this.get();
  }

  // The buckets live in RpcMetrics, counted without prom-client's label
  // hashing on each call; they are laid out here in the histogram's shape.
  override get(): Promise<MetricObjectWithValues<MetricValueWithName<"method">>> {
    const name = `${PREFIX}call_duration_seconds`;
    const values: MetricValueWithName<string>[] = [];
    for (const [method, stats] of this.#metrics?.labels() ?? []) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += stats.buckets[i];
        values.push({ metricName: `${name}_bucket`, labels: { le, method }, value: cumulative });
      });
      const count = cumulative + stats.buckets[DURATION_BUCKETS.length];
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", method }, value: count });
      values.push({ metricName: `${name}_sum`, labels: { method }, value: stats.sum });
      values.push({ metricName: `${name}_count`, labels: { method }, value: count });
    }
    // prom-client's typings declare `type` as an enum, but the registry
    // writes the string its own histograms carry.
    return Promise.resolve({
      name,
      help: "Duration of served calls, until the response or the end of the stream.",
      type: "histogram",
      aggregator: "sum",
      values,
    } as unknown as MetricObjectWithValues<MetricValueWithName<"method">>);
  }
}

/**
 * A counter whose value is read when scraped, registered in `registry`
 * under its full `name`; the cluster's families are made the same way.
 */
export function scrapedCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge whose value is read when scraped, as {@linkcode scrapedCounter}. */
export function scrapedGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** The transport's counters: family name (after the prefix), help and the field each reads. */
const TRANSPORT_COUNTERS: [name: string, help: string, field: keyof ServerMetrics][] = [
  ["connections_accepted_total", "Connections accepted into a session.", "accepted"],
  [
    "connections_refused_total",
    "Connections refused at maxConnections or during shutdown.",
    "rejected",
  ],
  ["handshake_failures_total", "Handshakes that failed.", "handshakeFailures"],
  ["sessions_closed_total", "Sessions closed, for any reason.", "closed"],
  ["dead_peers_total", "Sessions closed for heartbeat silence.", "deadPeers"],
  [
    "slow_consumer_drops_total",
    "Sessions disconnected because their outbound queue was over its limit.",
    "slowConsumers",
  ],
  ["broadcasts_total", "Broadcasts sent.", "broadcasts"],
  ["broadcast_deliveries_total", "Broadcast frames queued to sessions.", "broadcastDeliveries"],
];

/** Traffic counters, over every session the server held: family name, help, field. */
const TRAFFIC_COUNTERS: [name: string, help: string, field: keyof TrafficTotals][] = [
  ["frames_received_total", "Frames received.", "framesIn"],
  ["frames_sent_total", "Frames written to connections.", "framesOut"],
  ["received_bytes_total", "Bytes received.", "bytesIn"],
  ["sent_bytes_total", "Bytes written to connections.", "bytesOut"],
];

/**
 * Builds the registry of `server`: transport, session, call and process
 * families. Counters end in `_total`; method labels are bounded by
 * {@linkcode RpcMetrics}' cap.
 */
export function serverRegistry(server: RpcServer): Registry {
  const registry = new Registry();
  const t = server.transport;
  const m = t.metrics;
  const calls = server.metrics;

  new Gauge({
    name: `${PREFIX}sessions`,
    help: "Sessions held, by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const session of t.sessions()) counts.set(session.state, counts.get(session.state)! + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  scrapedGauge(
    registry,
    `${PREFIX}topics`,
    "Topics with at least one member.",
    () => t.topics().length,
  );
  scrapedGauge(
    registry,
    `${PREFIX}outbound_queued_bytes`,
    "Bytes queued to be written, over all sessions.",
    () => {
      let bytes = 0;
      for (const session of t.sessions()) bytes += session.queuedBytes;
      return bytes;
    },
  );
  for (const [name, help, field] of TRANSPORT_COUNTERS) {
    scrapedCounter(registry, PREFIX + name, help, () => m[field]);
  }

  const traffic = (key: keyof TrafficTotals) => () => {
    let total = calls?.closedTraffic[key] ?? 0;
    for (const session of t.sessions()) total += session.stats[key];
    return total;
  };
  for (const [name, help, key] of TRAFFIC_COUNTERS) {
    scrapedCounter(registry, PREFIX + name, help, traffic(key));
  }

  if (calls !== undefined) {
    new Counter({
      name: `${PREFIX}session_errors_total`,
      help: "Sessions closed on an error, by its status code.",
      labelNames: ["code"],
      registers: [registry],
      collect() {
        this.reset();
        calls.sessionErrors.forEach((n, code) => {
          if (n > 0) this.inc({ code: statusName(code) }, n);
        });
      },
    });
    new Counter({
      name: `${PREFIX}calls_total`,
      help: "Served calls finished, by method and status code.",
      labelNames: ["method", "code"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [method, stats] of calls.labels()) {
          stats.codes.forEach((n, code) => {
            if (n > 0) this.inc({ method, code: statusName(code) }, n);
          });
        }
      },
    });
    new Gauge({
      name: `${PREFIX}calls_in_flight`,
      help: "Served calls started and not yet finished, by method.",
      labelNames: ["method"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [method, stats] of calls.labels()) this.set({ method }, stats.inFlight);
      },
    });
    new CallDurations(registry, calls);
  }
  collectDefaultMetrics({ register: registry });
  return registry;
}
