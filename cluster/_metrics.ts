// The cluster's Prometheus families, registered in the server's own
// registry (the one `GET /metrics` serves) and read from the node's
// counters when scraped, so nothing on the delivery path touches prom-client.

import type { Counter, Gauge, Registry } from "prom-client";
import { scrapedCounter, scrapedGauge } from "../rpc/_prometheus.ts";
import { metricsRegistry } from "../rpc/admin.ts";
import type { Cluster, ClusterMetrics } from "./cluster.ts";

const PREFIX = "streamwire_cluster_";

/** Counters, by family name (after the prefix), help and the field they read. */
const COUNTERS: [name: string, help: string, field: keyof ClusterMetrics][] = [
  ["messages_published_total", "Broadcasts published through the backplane.", "published"],
  ["messages_received_total", "Messages received from the backplane.", "received"],
  [
    "messages_forwarded_total",
    "Frames queued to local sessions from backplane messages.",
    "delivered",
  ],
  [
    "local_only_total",
    "Broadcasts delivered to local sessions only because the backplane was down.",
    "localOnly",
  ],
  ["resumes_total", "cluster.follow calls resuming after an offset.", "resumes"],
  ["resume_gaps_total", "Resumes told that the log no longer reaches their offset.", "gaps"],
  ["replayed_total", "Log entries replayed to resuming sessions.", "replayed"],
  ["catchups_total", "Topic catch-ups from the log after missed messages.", "catchups"],
  ["backplane_errors_total", "Backplane calls that failed.", "errors"],
  ["outages_total", "Times the backplane went down.", "outages"],
];

/**
 * Registers the cluster families of `cluster` in its server's registry.
 *
 * @returns Removes them again (the node left; a later node of the same
 *   server registers its own).
 */
export function registerClusterMetrics(
  cluster: Cluster,
  nodesKnown: () => number,
): () => void {
  const registry = metricsRegistry(cluster.server) as Registry;
  const mine: (Gauge | Counter)[] = [];
  // A later node of the same server takes the names over.
  const claim = (name: string) => registry.removeSingleMetric(PREFIX + name);
  const gauge = (name: string, help: string, read: () => number) => {
    claim(name);
    mine.push(scrapedGauge(registry, PREFIX + name, help, read));
  };
  gauge("nodes", "Live nodes seen at this node's last heartbeat, itself included.", nodesKnown);
  gauge(
    "backplane_up",
    "1 while the backplane is reachable, 0 otherwise.",
    () => cluster.backplane.status === "up" ? 1 : 0,
  );
  gauge(
    "degraded",
    "1 while this node delivers locally only (backplane down), 0 otherwise.",
    () => cluster.status === "degraded" ? 1 : 0,
  );
  for (const [name, help, field] of COUNTERS) {
    claim(name);
    mine.push(scrapedCounter(registry, PREFIX + name, help, () => cluster.metrics[field]));
  }
  return () => {
    for (const metric of mine) {
      const name = (metric as unknown as { name: string }).name;
      if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
    }
  };
}
