/**
 * The cluster's part of the admin HTTP API, as a small Hono app of its own
 * rooted at `/cluster`, to serve beside (or mount under) the server's
 * admin API.
 *
 * @module
 */

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import {
  adminErrors,
  AdminHttpError,
  adminNotFound,
  bearerToken,
  intQuery,
  invalid,
  jsonBody,
  optionalJsonBody,
} from "../rpc/_admin_http.ts";
import type { AdminApp } from "../rpc/admin.ts";
import type { Cluster } from "./cluster.ts";
import { safeJson } from "./_fanout.ts";

/**
 * The cluster admin API as a fetch handler (the value is the Hono app), of
 * the same shape as the server's: route `/cluster` to its `fetch`.
 */
export type ClusterAdminApp = AdminApp;

/** One mutating call of the cluster admin API, for the audit log. */
export interface ClusterAuditEntry {
  /** When, in ms since epoch. */
  at: number;
  /** What was done. */
  action: "kick" | "notify" | "broadcast";
  /** A session id, or a topic (`*` for all). */
  target: string;
  /** The reason of a kick, the method of a NOTIFY or BROADCAST. */
  detail: Record<string, unknown>;
  /** Whether the session was found, or the broadcast's offset. */
  result: unknown;
}

/** Options of {@linkcode clusterAdminApp}. */
export interface ClusterAdminOptions {
  /** Bearer token required on every request; without it the API is open (bind it to loopback). */
  token?: string;
  /**
   * Largest request body in bytes, so a client cannot make the API buffer
   * without bound; larger bodies get 413.
   *
   * @default {65536}
   */
  maxBodyBytes?: number;
  /**
   * Largest page of `GET /cluster/sessions`; the directory is read whole
   * from the backplane, and this bounds what one answer holds.
   *
   * @default {1000}
   */
  maxPageSize?: number;
  /**
   * Turns the mutating routes (kick, notify, broadcast) off: 403 `permission_denied`.
   *
   * @default {false}
   */
  readOnly?: boolean;
  /**
   * Receives one entry per mutating call carried out.
   *
   * @default {an `info` line `cluster-admin` through the server's logger}
   */
  audit?: (entry: ClusterAuditEntry) => void;
}

const DEFAULT_BODY = 64 * 1024;

/**
 * Builds the cluster admin API of a node:
 *
 * | route | does |
 * | --- | --- |
 * | `GET /cluster` | {@linkcode Cluster.view}: node id, status, backplane, nodes with last heartbeat and draining flag, counters |
 * | `GET /cluster/sessions?offset&limit&node` | a page of the cluster-wide session directory |
 * | `DELETE /cluster/sessions/:id` | kick a session on any node; body `{reason}` optional |
 * | `POST /cluster/sessions/:id/notify` | NOTIFY `{method, params}` to a session on any node |
 * | `POST /cluster/broadcast` | BROADCAST `{method, params, topic?}` to the whole cluster |
 *
 * Failures are JSON `{code, codeName, message}` as in the server's admin
 * API: 503 `unavailable` for routes that need the backplane while it is
 * down (`GET /cluster` still answers, from the last heartbeat).
 *
 * @param cluster The node.
 * @param options Token, limits, read-only mode, audit sink.
 * @returns The app; its `fetch` serves the routes above.
 *
 * @example Look at a one-node cluster
 * ```ts
 * import { Cluster, clusterAdminApp, MemoryHub } from "@streamwire/streamwire/cluster";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods() });
 * const cluster = await Cluster.start(server, { backplane: new MemoryHub().connect() });
 * const view = await (await clusterAdminApp(cluster).request("/cluster")).json();
 * assert.equal(view.nodeId, cluster.nodeId);
 * assert.equal(view.status, "connected");
 * await cluster.shutdown();
 * ```
 */
export function clusterAdminApp(
  cluster: Cluster,
  options: ClusterAdminOptions = {},
): ClusterAdminApp {
  const maxPage = options.maxPageSize ?? 1000;
  const maxBody = options.maxBodyBytes ?? DEFAULT_BODY;
  const audit = options.audit ??
    ((entry: ClusterAuditEntry) =>
      cluster.server.logger.info("cluster-admin", {
        ...entry,
        at: new Date(entry.at).toISOString(),
      }));
  const app = new Hono().basePath("/cluster");
  app.onError(adminErrors());
  app.notFound(adminNotFound());
  if (options.token !== undefined) app.use(bearerToken(options.token));
  app.use(bodyLimit({
    maxSize: maxBody,
    onError: () => {
      throw new AdminHttpError(
        413,
        Status.RESOURCE_EXHAUSTED,
        `Request body larger than maxBodyBytes '${maxBody}'`,
      );
    },
  }));
  const mutating = () => {
    if (options.readOnly) {
      throw new StreamwireError(
        Status.PERMISSION_DENIED,
        "Mutating admin routes are turned off (readOnly)",
      );
    }
  };
  const down = () => new StreamwireError(Status.UNAVAILABLE, "The cluster backplane is down");
  // A call that may need the backplane: its failure while it is down is `unavailable`.
  const viaBackplane = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw cluster.status === "connected" ? error : down();
    }
  };
  const record = (entry: Omit<ClusterAuditEntry, "at">) => audit({ at: Date.now(), ...entry });

  app.get("/", async (c) => c.json(await cluster.view()));
  app.get("/sessions", async (c) => {
    const offset = intQuery(c, "offset", { min: 0, max: Number.MAX_SAFE_INTEGER, default: 0 });
    const limit = intQuery(c, "limit", { min: 1, max: maxPage, default: 100 });
    const node = c.req.query("node");
    if (cluster.status !== "connected") throw down();
    const all = await viaBackplane(() => cluster.sessions());
    const matching = node === undefined ? all : all.filter((s) => s.node === node);
    matching.sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
    const sessions = matching.slice(offset, offset + limit).map((s) => ({
      id: s.id,
      node: s.node,
      ...safeJson(s.info),
    }));
    return c.json({ total: matching.length, offset, sessions });
  });
  app.delete("/sessions/:id", async (c) => {
    mutating();
    const id = c.req.param("id");
    const reason = (await optionalJsonBody(c.req.raw)).reason;
    if (reason !== undefined && typeof reason !== "string") {
      throw invalid(`'reason' must be a string, got '${JSON.stringify(reason)}'`);
    }
    const found = await viaBackplane(() => cluster.kick(id, reason));
    if (!found) throw new StreamwireError(Status.NOT_FOUND, `No session '${id}' in the cluster`);
    record({ action: "kick", target: id, detail: { reason }, result: true });
    return c.body(null, 204);
  });
  app.post("/sessions/:id/notify", async (c) => {
    mutating();
    const id = c.req.param("id");
    const body = await jsonBody(c.req.raw);
    const method = methodOf(body);
    const found = await viaBackplane(() => cluster.unicast(id, method, body.params ?? null));
    if (!found) throw new StreamwireError(Status.NOT_FOUND, `No session '${id}' in the cluster`);
    record({ action: "notify", target: id, detail: { method }, result: true });
    return c.json({ delivered: true });
  });
  app.post("/broadcast", async (c) => {
    mutating();
    const body = await jsonBody(c.req.raw);
    const method = methodOf(body);
    const topic = body.topic;
    if (topic !== undefined && (typeof topic !== "string" || topic.length === 0)) {
      throw invalid(`'topic' must be a non-empty string, got '${JSON.stringify(topic)}'`);
    }
    const { offset } = await cluster.broadcast(method, body.params ?? null, { topic });
    record({ action: "broadcast", target: topic ?? "*", detail: { method }, result: offset });
    return c.json({ offset, status: cluster.status });
  });
  return app;
}

function methodOf(body: Record<string, unknown>): string {
  const name = body.method;
  if (typeof name !== "string" || name.length === 0 || name.length > 65535) {
    throw invalid(`'method' must be a non-empty string, got '${JSON.stringify(name)}'`);
  }
  return name;
}
