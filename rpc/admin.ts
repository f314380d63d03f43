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

import { type ErrorHandler, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { getCodec } from "../codec/payload_codec.ts";
import type { Session } from "../transport/session.ts";
import type { RpcServer } from "./server.ts";

/** The admin API as a fetch handler (a Hono app underneath). */
export interface AdminApp {
  /** Handles one HTTP request: pass it to `Deno.serve`. */
  fetch(request: Request): Response | Promise<Response>;
  /** Handles a request without a socket, for tests: a path or URL and request options. */
  request(input: string | Request | URL, init?: RequestInit): Response | Promise<Response>;
}

/** Options of {@linkcode adminApp}. */
export interface AdminOptions {
  /** Bearer token required on every request; without it the API is open (bind it to loopback). */
  token?: string;
  /**
   * Largest request body in bytes, so a client cannot make the admin API
   * buffer without bound.
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
}

const HTTP_STATUS: Record<number, ContentfulStatusCode> = {
  [Status.INVALID_ARGUMENT]: 400,
  [Status.UNAUTHENTICATED]: 401,
  [Status.PERMISSION_DENIED]: 403,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.FAILED_PRECONDITION]: 412,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.UNIMPLEMENTED]: 501,
  [Status.UNAVAILABLE]: 503,
  [Status.DEADLINE_EXCEEDED]: 504,
};

/**
 * Answers errors thrown by admin handlers as JSON `{code, codeName, message}`
 * with a matching HTTP status, so admin clients see the protocol's codes.
 */
function adminErrors(): ErrorHandler {
  return function adminErrors(thrown, c) {
    if (thrown instanceof HTTPException) {
      const status = thrown.status;
      const unauthenticated = status === 401;
      const error = new StreamwireError(
        unauthenticated ? Status.UNAUTHENTICATED : Status.INVALID_ARGUMENT,
        unauthenticated ? "Bad or missing bearer token" : thrown.message || "Bad request",
      );
      return c.json(
        { code: error.code, codeName: error.codeName, message: error.message },
        status as ContentfulStatusCode,
        unauthenticated ? { "www-authenticate": 'Bearer realm="streamwire"' } : {},
      );
    }
    const error = StreamwireError.from(thrown);
    return c.json(
      { code: error.code, codeName: error.codeName, message: error.message },
      HTTP_STATUS[error.code] ?? 500,
    );
  };
}

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}

async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch (error) {
    throw invalid(`Body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("Body must be a JSON object");
  }
  return body as Record<string, unknown>;
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

/**
 * Builds the admin API of `server`:
 *
 * | route | does |
 * | --- | --- |
 * | `GET /health` | `{status, accepting, sessions}` |
 * | `GET /metrics` | Prometheus text format |
 * | `GET /sessions?offset&limit` | a page of sessions |
 * | `GET /sessions/:id` | one session |
 * | `DELETE /sessions/:id` | kick (ERROR `aborted`, close); body `{reason}` optional |
 * | `POST /sessions/:id/notify` | NOTIFY `{method, params}` to one session |
 * | `GET /topics` | topics and member counts |
 * | `POST /broadcast` | BROADCAST `{method, params, topic?}` |
 *
 * Serve it with `Deno.serve({ hostname: "127.0.0.1", port }, app.fetch)`.
 *
 * @param server The live server.
 * @param options Token and limits.
 * @returns The app; its `fetch` serves the API.
 *
 * @example Usage
 * ```ts
 * import { adminApp } from "@streamwire/streamwire/admin";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods() });
 * const app = adminApp(server, { token: "s3cret" });
 * assert.equal((await app.request("/health")).status, 401);
 * const res = await app.request("/health", { headers: { authorization: "Bearer s3cret" } });
 * assert.equal((await res.json()).status, "ok");
 * await server.shutdown();
 * ```
 */
export function adminApp(server: RpcServer, options: AdminOptions = {}): AdminApp {
  const maxPage = options.maxPageSize ?? 1000;
  const app = new Hono();
  app.onError(adminErrors());
  if (options.token !== undefined) app.use(bearerAuth({ token: options.token }));
  app.use(bodyLimit({
    maxSize: options.maxBodyBytes ?? 64 * 1024,
    onError: () => {
      throw new StreamwireError(Status.RESOURCE_EXHAUSTED, "Request body too large");
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

  app.get("/health", (c) =>
    c.json({
      status: transport.accepting ? "ok" : "draining",
      accepting: transport.accepting,
      sessions: transport.sessionCount,
    }));
  app.get(
    "/metrics",
    (c) => c.text(prometheus(server), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.get("/sessions", (c) => {
    const offset = Number(c.req.query("offset") ?? 0);
    const limit = Number(c.req.query("limit") ?? 100);
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalid(`Bad offset '${offset}'`);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxPage) {
      throw invalid(`limit must be within 1..${maxPage}, got '${c.req.query("limit")}'`);
    }
    const page: Record<string, unknown>[] = [];
    let i = 0;
    for (const session of transport.sessions()) {
      if (i++ < offset) continue;
      if (page.length >= limit) break;
      page.push(describe(session));
    }
    return c.json({ total: transport.sessionCount, offset, sessions: page });
  });
  app.get("/sessions/:id", (c) => c.json(describe(find(c.req.param("id")))));
  app.delete("/sessions/:id", async (c) => {
    const session = find(c.req.param("id"));
    const text = await c.req.text();
    const reason = text === "" ? undefined : (await jsonBody(
      new Request("http://x", {
        method: "POST",
        body: text,
      }),
    )).reason;
    transport.kick(session.id, typeof reason === "string" ? reason : undefined);
    return c.body(null, 204);
  });
  app.post("/sessions/:id/notify", async (c) => {
    const session = find(c.req.param("id"));
    const body = await jsonBody(c.req.raw);
    const params = body.params === undefined
      ? new Uint8Array(0)
      : getCodec(session.codec).encode(body.params);
    const sent = transport.unicast(session.id, {
      type: FrameType.NOTIFY,
      seq: 0,
      method: method(body),
      params,
    });
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
    const body = await jsonBody(c.req.raw);
    const topic = body.topic;
    if (topic !== undefined && typeof topic !== "string") {
      throw invalid(`'topic' must be a string, got '${JSON.stringify(topic)}'`);
    }
    return c.json(server.broadcast(method(body), body.params, { topic }));
  });
  return app;
}
