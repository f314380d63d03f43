/**
 * The admin HTTP API of a live server, as a Hono app: health, metrics,
 * sessions (query, kick, notify), topics and broadcast, and a live
 * dashboard with a wire tap of one session (docs/ADMIN.md). Its own entry
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
import { serverRegistry } from "./_prometheus.ts";
import type { Registry } from "prom-client";
import { DashboardFeed } from "./_dashboard_feed.ts";
import { dashboardPage } from "./_dashboard_page.tsx";
import { type TapFrame, WireTaps } from "./_wire_tap.ts";

export type { TapFrame } from "./_wire_tap.ts";

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
  /**
   * Dashboard event streams (`GET /events`) open at once; the next is
   * refused with 429, so that clients cannot make the server sample and
   * write for any number of them.
   *
   * @default {8}
   */
  maxEventStreams?: number;
  /**
   * Sessions, and topics, listed in each dashboard event (the first ones;
   * the event also gives the total), so that an event stays small with
   * 10,000 sessions.
   *
   * @default {100}
   */
  dashboardRows?: number;
  /**
   * Samples (one a second) kept for the dashboard's charts and sent to a
   * page when it connects.
   *
   * @default {120}
   */
  historySeconds?: number;
  /**
   * Wire taps (`GET /sessions/:id/tap`) open at once over all sessions;
   * the next is refused with 429. 0 turns taps off (403): a tap shows
   * payloads.
   *
   * @default {4}
   */
  maxTaps?: number;
  /**
   * Frames a tap holds for a reader that is behind; past it the oldest is
   * dropped and counted (each frame event carries the count), so a tap on
   * a busy session holds at most this many rows.
   *
   * @default {256}
   */
  tapBuffer?: number;
  /**
   * Characters of a tap's payload preview; longer ones are cut with `…`.
   *
   * @default {200}
   */
  previewChars?: number;
  /**
   * Makes the preview a tap shows of each frame: receives the frame (its
   * method and decoded value, and the default `preview`) and returns the
   * text to show instead, such as the preview with secrets masked. A hook
   * that throws shows `(redact failed)`.
   *
   * @default {the default preview: the decoded payload as JSON, shortened}
   */
  redact?: (frame: TapFrame) => string;
  /**
   * Ends every dashboard stream and tap when aborted (give the signal
   * that stops the HTTP server, so its shutdown does not wait for them).
   * They end by themselves within a second once the server stops accepting.
   */
  signal?: AbortSignal;
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

const registries = new WeakMap<RpcServer, Registry>();

/**
 * What {@linkcode metricsRegistry} returns: a `prom-client` `Registry`,
 * typed by the part this module relies on so that the public API names no
 * type of another package; cast it to `Registry` to register families of
 * your own or merge it.
 */
export interface MetricsRegistry {
  /** The exposition text of every family. */
  metrics(): Promise<string>;
  /** The `content-type` of that text. */
  readonly contentType: string;
}

/**
 * The Prometheus registry of `server`, a `prom-client` {@linkcode Registry}
 * of its own (never the global one), made at the first call and kept for
 * the server's life; `GET /metrics` serves its text. Every value is read
 * from the server when scraped:
 *
 * | family | type | labels |
 * | --- | --- | --- |
 * | `streamwire_sessions` | gauge | `state` |
 * | `streamwire_topics` | gauge | |
 * | `streamwire_outbound_queued_bytes` | gauge | |
 * | `streamwire_connections_accepted_total`, `streamwire_connections_refused_total` | counter | |
 * | `streamwire_handshake_failures_total`, `streamwire_sessions_closed_total`, `streamwire_dead_peers_total` | counter | |
 * | `streamwire_slow_consumer_drops_total` | counter | |
 * | `streamwire_broadcasts_total`, `streamwire_broadcast_deliveries_total` | counter | |
 * | `streamwire_frames_received_total`, `streamwire_frames_sent_total` | counter | |
 * | `streamwire_received_bytes_total`, `streamwire_sent_bytes_total` | counter | |
 * | `streamwire_session_errors_total` | counter | `code` |
 * | `streamwire_calls_total` | counter | `method`, `code` |
 * | `streamwire_calls_in_flight` | gauge | `method` |
 * | `streamwire_call_duration_seconds` | histogram | `method` |
 *
 * and `prom-client`'s default process families (`process_*`, `nodejs_*`).
 * The call families need the server's `metrics` option (on by default);
 * `method` is a registered method, `_unknown` for calls to a method the
 * server lacks, or `_other` past the cap on method labels. `code` is a
 * status name (`ok`, `not_found`, …). Frames and bytes count every session
 * the server held, closed ones included, in all frame types together.
 *
 * @param server The live server.
 * @returns Its registry, a `prom-client` `Registry`: register families of
 *   your own in it, or merge it with others (`Registry.merge`).
 *
 * @example Read a family
 * ```ts
 * import { metricsRegistry } from "@streamwire/streamwire/admin";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods() });
 * const registry = metricsRegistry(server);
 * const text = await registry.metrics();
 * assert.match(text, /^streamwire_connections_accepted_total 0$/m);
 * await server.shutdown();
 * ```
 */
export function metricsRegistry(server: RpcServer): MetricsRegistry {
  let registry = registries.get(server);
  if (registry === undefined) registries.set(server, registry = serverRegistry(server));
  return registry;
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
 * | `GET /metrics` | Prometheus text format, from {@linkcode metricsRegistry} |
 * | `GET /sessions?offset&limit&state&topic&remote` | a page of sessions, filtered by state, topic membership and remote address prefix |
 * | `GET /sessions/:id` | one session |
 * | `DELETE /sessions/:id` | kick (ERROR `aborted` carrying the reason, close); body `{reason}` optional |
 * | `POST /sessions/:id/notify` | NOTIFY `{method, params}` to one session |
 * | `GET /topics` | topics and member counts |
 * | `POST /broadcast` | BROADCAST `{method, params, topic?}` |
 * | `GET /` | the dashboard page (HTML, served without the token: it holds no data) |
 * | `GET /events` | `text/event-stream`: a `stats` event now and each second (sessions, calls/s, errors/s, p50/p99, the session and topic tables) |
 * | `GET /sessions/:id/tap` | `text/event-stream`: a wire tap of one session, an `open` event, a `frame` event per frame, an `end` event |
 *
 * Every failure, a 404 included, is JSON `{code, codeName, message}` with
 * the protocol's status code: 400 for a bad query or body, 401 for a
 * missing, malformed or wrong bearer token, 403 for a mutating route when
 * `readOnly` (and for taps when `maxTaps` is 0), 404 for an unknown
 * session or route, 413 for a body over `maxBodyBytes`, 429 past
 * `maxEventStreams` or `maxTaps`. Each mutating call carried out is audited.
 *
 * The event streams are read with `fetch`, the token in the
 * `authorization` header like every other route (the page does so; an
 * `EventSource` cannot send the header). A tap frame event is
 * `{t, direction, type, seq, size, method, preview, dropped}`; see
 * {@linkcode TapFrame}. Nothing is sampled while no `/events` stream is
 * open, and a session without a tap pays one branch per frame.
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
 * import { Hono } from "hono";
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
 *
 * @example Tap a session, with a redact hook
 * ```ts
 * import { adminApp } from "@streamwire/streamwire/admin";
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("login", () => true) });
 * const client = await connect(server.listen({ port: 0 }));
 * const admin = adminApp(server, {
 *   redact: (frame) => frame.method === "login" ? "(credentials)" : frame.preview,
 * });
 * const tap = await admin.request(`/sessions/${client.session!.id}/tap`);
 * const events = tap.body!.pipeThrough(new TextDecoderStream()).getReader();
 * await client.call("login", { password: "hunter2" });
 * let text = "";
 * while (!text.includes('"type":"RESPONSE"')) text += (await events.read()).value;
 * assert.match(text, /"direction":"in","type":"REQUEST","seq":\d+,"size":\d+,"method":"login"/);
 * assert.ok(text.includes('"preview":"(credentials)"') && !text.includes("hunter2"));
 * await events.cancel();
 * await client.close();
 * await server.shutdown();
 * ```
 */
export function adminApp(server: RpcServer, options: AdminOptions = {}): AdminApp {
  const maxPage = options.maxPageSize ?? 1000;
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const maxTaps = options.maxTaps ?? 4;
  const tapBuffer = options.tapBuffer ?? 256;
  const audit = options.audit ?? logAudit(server);
  const app = new Hono();
  app.onError(adminErrors());
  app.notFound(adminNotFound());
  const feed = new DashboardFeed(server, {
    maxStreams: options.maxEventStreams ?? 8,
    rows: options.dashboardRows ?? 100,
    history: options.historySeconds ?? 120,
    intervalMs: 1000,
  });
  const taps = new WireTaps({
    maxTaps,
    buffer: tapBuffer,
    previewChars: options.previewChars ?? 200,
    redact: options.redact,
  });
  options.signal?.addEventListener("abort", () => {
    feed.close();
    taps.close();
  }, { once: true });
  // Before the token check: the page holds no data, and asks for the token.
  app.get("/", function dashboard(c: Context) {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    return c.html(
      dashboardPage({
        tokenRequired: options.token !== undefined,
        readOnly: options.readOnly ?? false,
        taps: maxTaps > 0,
        tapRows: tapBuffer,
        nonce,
      }),
      200,
      {
        "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; ` +
          `style-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; ` +
          "form-action 'none'; frame-ancestors 'none'",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
      },
    );
  });
  if (options.token !== undefined) app.use(bearerToken(options.token));
  app.use(bodyLimit({
    maxSize: maxBodyBytes,
    onError: () => {
      throw new AdminHttpError(
        413,
        Status.RESOURCE_EXHAUSTED,
        `Request body larger than maxBodyBytes '${maxBodyBytes}'`,
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
    async function metrics(c: Context) {
      const registry = metricsRegistry(server);
      return c.text(await registry.metrics(), 200, { "content-type": registry.contentType });
    },
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
  app.get("/events", function events() {
    if (options.signal?.aborted || !transport.accepting) {
      throw new StreamwireError(Status.UNAVAILABLE, "Server is shutting down");
    }
    return feed.open();
  });
  app.get("/sessions/:id/tap", function tap(c) {
    if (options.signal?.aborted) {
      throw new StreamwireError(Status.UNAVAILABLE, "Admin API is closing");
    }
    return taps.open(find(c.req.param("id")));
  });
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
