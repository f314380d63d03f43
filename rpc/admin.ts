/**
 * The admin HTTP API of a live server, as a Hono app: health, metrics,
 * sessions (query, kick, notify), topics and broadcast. Its own entry
 * point, `@streamwire/streamwire/admin`, so that the RPC layer does not
 * load Hono.
 *
 * @example Serve the admin API next to a server
 * ```ts
 * import { adminApp } from "@streamwire/streamwire/admin";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods() });
 * const res = await adminApp(server).request("/health");
 * assert.equal((await res.json()).sessions, 0);
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { getCodec } from "../codec/payload_codec.ts";
import type { Session } from "../transport/session.ts";
import { SessionState } from "../transport/session_options.ts";
import {
  adminErrors,
  AdminHttpError,
  adminNotFound,
  bearerToken,
  intQuery,
  invalid,
  jsonBody,
  optionalJsonBody,
} from "./_admin_http.ts";
import type { RpcServer } from "./server.ts";

/**
 * The admin API as a fetch handler. The value is the Hono app itself, so
 * it mounts under an application's own: `app.mount("/streamwire",
 * admin.fetch)`, or `app.route("/streamwire", admin as Hono)` to keep Hono's
 * routing.
 */
export interface AdminApp {
  /** Handles one HTTP request: pass it to `Deno.serve`. */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
  /** Handles a request without a socket, for tests: a path or URL and request options. */
  request(input: string | Request | URL, init?: RequestInit): Response | Promise<Response>;
}

/** One mutating admin call, for the audit log. */
export interface AuditEntry {
  /** When, in ms since epoch. */
  at: number;
  /** `kick`, `notify` or `broadcast`. */
  action: "kick" | "notify" | "broadcast";
  /** Who asked: the caller's address, and whether a token was checked. */
  by: { remoteAddr: string | undefined; authenticated: boolean };
  /** What it acted on: a session id, or a topic (`*` for all). */
  target: string;
  /** Details: the reason of a kick, the method of a NOTIFY or BROADCAST. */
  detail: Record<string, unknown>;
  /** What came of it: sessions reached, or false if nothing was sent. */
  result: unknown;
}

/** Options of {@linkcode adminApp}. */
export interface AdminOptions {
  /** Bearer token required on every request; without it the API is open (bind it to loopback). */
  token?: string;
  /**
   * Largest request body in bytes, so a client cannot make the admin API
   * buffer without bound; larger bodies get 413.
   *
   * @default {65536}
   */
  maxBodyBytes?: number;
  /**
   * Largest page of `GET /sessions`.
   *
   * @default {1000}
   */
  maxPageSize?: number;
  /**
   * Turns the mutating routes (kick, notify, broadcast) off: they answer
   * 403 `permission_denied`.
   *
   * @default {false}
   */
  readOnly?: boolean;
  /**
   * Receives one entry per mutating call that was carried out.
   *
   * @default {an `info` line through the server's logger: `{"level":"info","msg":"admin",...}`}
   */
  audit?: (entry: AuditEntry) => void;
}

/** The default audit sink: the entry as the fields of an `admin` line of the server's log. */
function logAudit(server: RpcServer): (entry: AuditEntry) => void {
  return (entry) => server.logger.info("admin", { ...entry, at: new Date(entry.at).toISOString() });
}

function method(body: Record<string, unknown>): string {
  const name = body.method;
  if (typeof name !== "string" || name.length === 0 || name.length > 65535) {
    throw invalid(`'method' must be a non-empty string, got '${JSON.stringify(name)}'`);
  }
  return name;
}

function describe(session: Session): Record<string, unknown> {
  return {
    id: session.id,
    remoteAddr: session.remoteAddr,
    state: session.state,
    codec: session.settings?.codec,
    compression: session.settings?.compression,
    topics: [...session.topics],
    queuedBytes: session.queuedBytes,
    stats: session.stats,
  };
}

function prometheus(server: RpcServer): string {
  const t = server.transport;
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, value: number) => {
    lines.push(`# HELP streamwire_${name} ${help}`, `# TYPE streamwire_${name} ${type}`);
    lines.push(`streamwire_${name} ${value}`);
  };
  metric("sessions", "gauge", "Sessions held, handshaking ones included.", t.sessionCount);
  metric("topics", "gauge", "Topics with at least one member.", t.topics().length);
  const m = t.metrics;
  metric("accepted_total", "counter", "Connections accepted into a session.", m.accepted);
  metric(
    "rejected_total",
    "counter",
    "Connections refused when full or shutting down.",
    m.rejected,
  );
  metric("handshake_failures_total", "counter", "Failed handshakes.", m.handshakeFailures);
  metric("closed_total", "counter", "Sessions closed.", m.closed);
  metric("slow_consumers_total", "counter", "Sessions dropped as slow consumers.", m.slowConsumers);
  metric("dead_peers_total", "counter", "Sessions closed for heartbeat silence.", m.deadPeers);
  metric("broadcasts_total", "counter", "Broadcasts sent.", m.broadcasts);
  metric(
    "broadcast_deliveries_total",
    "counter",
    "Broadcast frames queued.",
    m.broadcastDeliveries,
  );
  let framesIn = 0, framesOut = 0, bytesIn = 0, bytesOut = 0;
  for (const s of t.sessions()) {
    framesIn += s.stats.framesIn;
    framesOut += s.stats.framesOut;
    bytesIn += s.stats.bytesIn;
    bytesOut += s.stats.bytesOut;
  }
  metric("session_frames_in", "gauge", "Frames received by open sessions.", framesIn);
  metric("session_frames_out", "gauge", "Frames sent by open sessions.", framesOut);
  metric("session_bytes_in", "gauge", "Bytes received by open sessions.", bytesIn);
  metric("session_bytes_out", "gauge", "Bytes sent by open sessions.", bytesOut);
  return lines.join("\n") + "\n";
}

/** Session states a `GET /sessions?state=` filter takes. */
const STATES = new Set<string>(Object.values(SessionState));

/**
 * Builds the admin API of `server`:
 *
 * | route | does |
 * | --- | --- |
 * | `GET /health` | `{status, accepting, sessions}` |
 * | `GET /ready` | 200 `{ready: true}` while accepting, 503 while draining |
 * | `GET /metrics` | Prometheus text format |
 * | `GET /sessions?offset&limit&state&topic&remote` | a page of sessions, filtered by state, topic membership and remote address prefix |
 * | `GET /sessions/:id` | one session |
 * | `DELETE /sessions/:id` | kick (ERROR `aborted` carrying the reason, close); body `{reason}` optional |
 * | `POST /sessions/:id/notify` | NOTIFY `{method, params}` to one session |
 * | `GET /topics` | topics and member counts |
 * | `POST /broadcast` | BROADCAST `{method, params, topic?}` |
 *
 * Every failure, a 404 included, is JSON `{code, codeName, message}` with
 * the protocol's status code: 400 for a bad query or body, 401 for a
 * missing, malformed or wrong bearer token, 403 for a mutating route when
 * `readOnly`, 404 for an unknown session or route, 413 for a body over
 * `maxBodyBytes`. Each mutating call carried out is audited.
 *
 * Serve it with `Deno.serve({ hostname: "127.0.0.1", port }, app.fetch)`,
 * or mount it in an app of your own: `app.mount("/streamwire", admin.fetch)`.
 *
 * @param server The live server.
 * @param options Token, limits, read-only mode, audit sink.
 * @returns The app (a Hono app); its `fetch` serves the API.
 *
 * @example Usage
 * ```ts
 * import { adminApp } from "@streamwire/streamwire/admin";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import { type Context, Hono } from "hono";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods() });
 * const app = new Hono().mount("/streamwire", adminApp(server, { token: "s3cret" }).fetch);
 * assert.equal((await app.request("/streamwire/health")).status, 401);
 * const res = await app.request("/streamwire/health", {
 *   headers: { authorization: "Bearer s3cret" },
 * });
 * assert.equal((await res.json()).status, "ok");
 * await server.shutdown();
 * ```
 */
export function adminApp(server: RpcServer, options: AdminOptions = {}): AdminApp {
  const maxPage = options.maxPageSize ?? 1000;
  const audit = options.audit ?? logAudit(server);
  const app = new Hono();
  app.onError(adminErrors());
  app.notFound(adminNotFound());
  if (options.token !== undefined) app.use(bearerToken(options.token));
  app.use(bodyLimit({
    maxSize: options.maxBodyBytes ?? 64 * 1024,
    onError: () => {
      throw new AdminHttpError(
        413,
        Status.RESOURCE_EXHAUSTED,
        `Request body larger than maxBodyBytes '${options.maxBodyBytes ?? 64 * 1024}'`,
      );
    },
  }));
  const transport = server.transport;
  const find = (id: string) => {
    const session = transport.session(id);
    if (session === undefined) {
      throw new StreamwireError(Status.NOT_FOUND, `No session '${id}'`);
    }
    return session;
  };
  const mutating = () => {
    if (options.readOnly) {
      throw new StreamwireError(
        Status.PERMISSION_DENIED,
        "Mutating admin routes are turned off (readOnly)",
      );
    }
  };
  const record = (c: Context, entry: Omit<AuditEntry, "at" | "by">) => {
    const info = c.env as { remoteAddr?: { hostname?: string; port?: number } } | undefined;
    const remote = info?.remoteAddr;
    audit({
      at: Date.now(),
      by: {
        remoteAddr: remote?.hostname === undefined
          ? undefined
          : `${remote.hostname}:${remote.port}`,
        authenticated: options.token !== undefined,
      },
      ...entry,
    });
  };

  app.get("/health", (c) =>
    c.json({
      status: transport.accepting ? "ok" : "draining",
      accepting: transport.accepting,
      sessions: transport.sessionCount,
    }));
  app.get("/ready", (c) => c.json({ ready: transport.accepting }, transport.accepting ? 200 : 503));
  app.get(
    "/metrics",
    (c) => c.text(prometheus(server), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.get("/sessions", (c) => {
    const offset = intQuery(c, "offset", { min: 0, max: Number.MAX_SAFE_INTEGER, default: 0 });
    const limit = intQuery(c, "limit", { min: 1, max: maxPage, default: 100 });
    const state = c.req.query("state");
    if (state !== undefined && !STATES.has(state)) {
      throw invalid(`'state' must be one of ${[...STATES].join(", ")}, got '${state}'`);
    }
    const topic = c.req.query("topic");
    const remote = c.req.query("remote");
    const page: Record<string, unknown>[] = [];
    let total = 0;
    for (const session of transport.sessions()) {
      if (state !== undefined && session.state !== state) continue;
      if (topic !== undefined && !session.topics.has(topic)) continue;
      if (remote !== undefined && !session.remoteAddr.startsWith(remote)) continue;
      if (total++ < offset || page.length >= limit) continue;
      page.push(describe(session));
    }
    return c.json({ total, offset, sessions: page });
  });
  app.get("/sessions/:id", (c) => c.json(describe(find(c.req.param("id")))));
  app.delete("/sessions/:id", async (c) => {
    mutating();
    const session = find(c.req.param("id"));
    const reason = (await optionalJsonBody(c.req.raw)).reason;
    if (reason !== undefined && typeof reason !== "string") {
      throw invalid(`'reason' must be a string, got '${JSON.stringify(reason)}'`);
    }
    transport.kick(session.id, reason);
    record(c, { action: "kick", target: session.id, detail: { reason }, result: true });
    return c.body(null, 204);
  });
  app.post("/sessions/:id/notify", async (c) => {
    mutating();
    const session = find(c.req.param("id"));
    const body = await jsonBody(c.req.raw);
    const name = method(body);
    const params = body.params === undefined
      ? new Uint8Array(0)
      : getCodec(session.codec).encode(body.params);
    const sent = transport.unicast(session.id, {
      type: FrameType.NOTIFY,
      seq: 0,
      method: name,
      params,
    });
    record(c, { action: "notify", target: session.id, detail: { method: name }, result: sent });
    if (!sent) {
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Session '${session.id}' is closing or too slow to take more`,
      );
    }
    return c.json({ sent });
  });
  app.get("/topics", (c) => c.json({ topics: transport.topics() }));
  app.post("/broadcast", async (c) => {
    mutating();
    const body = await jsonBody(c.req.raw);
    const topic = body.topic;
    if (topic !== undefined && typeof topic !== "string") {
      throw invalid(`'topic' must be a string, got '${JSON.stringify(topic)}'`);
    }
    const name = method(body);
    const result = server.broadcast(name, body.params, { topic });
    record(c, { action: "broadcast", target: topic ?? "*", detail: { method: name }, result });
    return c.json(result);
  });
  return app;
}
