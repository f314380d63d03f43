// `streamwire admin <admin-url> <action>`: a thin client of the admin HTTP
// API (rpc/admin.ts) over fetch. The API answers failures as JSON
// `{code, codeName, message}`; they become StreamwireErrors, so the exit
// code is 64 + the status code as for an RPC.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { type CliIo, type Command, type Flags, intFlag, parseJson, usage } from "./_command.ts";
import type { Output } from "./_output.ts";

/** Arguments after the action, least and most. */
const ACTIONS: Record<string, { args: [number, number]; usage: string }> = {
  health: { args: [0, 0], usage: "health" },
  metrics: { args: [0, 0], usage: "metrics" },
  sessions: { args: [0, 0], usage: "sessions [--offset n] [--limit n] [--all]" },
  session: { args: [1, 1], usage: "session <id>" },
  kick: { args: [1, 2], usage: "kick <id> [reason]" },
  notify: { args: [2, 3], usage: "notify <id> <method> [params-json]" },
  topics: { args: [0, 0], usage: "topics" },
  broadcast: { args: [1, 2], usage: "broadcast <method> [params-json] [--topic t]" },
};

/** Flags that belong to one action only. */
const ACTION_FLAGS: Record<string, string> = {
  offset: "sessions",
  limit: "sessions",
  all: "sessions",
  topic: "broadcast",
};

/** Page size of `sessions --all`: the admin API's largest page by default. */
const ALL_PAGE = 1000;
/** HTTP statuses the admin API answers without a JSON body, as status codes. */
const HTTP_CODES: Record<number, number> = {
  400: Status.INVALID_ARGUMENT,
  401: Status.UNAUTHENTICATED,
  403: Status.PERMISSION_DENIED,
  404: Status.NOT_FOUND,
  405: Status.UNIMPLEMENTED,
  409: Status.ALREADY_EXISTS,
  412: Status.FAILED_PRECONDITION,
  413: Status.RESOURCE_EXHAUSTED,
  429: Status.RESOURCE_EXHAUSTED,
  501: Status.UNIMPLEMENTED,
  503: Status.UNAVAILABLE,
  504: Status.DEADLINE_EXCEEDED,
};

const HELP = `Actions:
${Object.values(ACTIONS).map((a) => `  ${a.usage}`).join("\n")}

<admin-url> is the admin API's address, such as http://127.0.0.1:9001 (http:// may be
left out). The token is --token or STREAMWIRE_ADMIN_TOKEN, sent as a bearer token.

Options:
  --token <secret>   admin API token (default: $STREAMWIRE_ADMIN_TOKEN)
  --offset <n>       sessions: first session of the page (default 0)
  --limit <n>        sessions: sessions in the page (default 100)
  --all              sessions: every session, page by page
  --topic <topic>    broadcast: only to the members of <topic> (default everyone)
  --timeout <ms>     time allowed for each HTTP request (default 30000)
  --json             compact JSON on one line (errors as JSON too)

Output: sessions and topics as tables (header, one row each; a note on stderr when a
page leaves sessions out); metrics as the Prometheus text the server sends; the others
as indented JSON: health {status, accepting, sessions}, session {id, remoteAddr, state,
codec, compression, topics, queuedBytes, stats}, kick {kicked, reason}, notify {sent},
broadcast {delivered, dropped, ...}. With --json every action but metrics prints the
API's JSON compactly: sessions {total, offset, sessions: [...]}, topics {topics: [...]}.

Exit: 0 ok; 2 usage; 64 + status code when the API refuses (69 not_found for an unknown
session, 80 unauthenticated for a bad token, 67 invalid_argument); 78 unavailable when the
admin URL does not answer; 68 deadline_exceeded after --timeout.

Examples:
  streamwire admin http://127.0.0.1:9001 sessions --all
  STREAMWIRE_ADMIN_TOKEN=s3cret streamwire admin 127.0.0.1:9001 kick s1 maintenance
  streamwire admin http://127.0.0.1:9001 broadcast news '{"text":"hi"}' --topic lobby`;

/** The admin API's base URL, with a trailing slash so paths resolve under it. */
function baseUrl(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usage(`Admin URL '${text}' is not a URL such as 'http://127.0.0.1:9001'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw usage(`Admin URL '${text}' must be http:// or https://`);
  }
  if (url.search || url.hash) throw usage(`Admin URL '${text}' must not have a query or fragment`);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

/** Requests to one admin API, failures as StreamwireErrors. */
class AdminClient {
  #base: URL;
  #headers: Record<string, string>;
  #signal: AbortSignal;
  #timeoutMs: number;

  constructor(base: URL, token: string | undefined, signal: AbortSignal, timeoutMs: number) {
    this.#base = base;
    this.#headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
  }

  /** Sends one request; resolves with a successful response, else throws its status. */
  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const url = new URL(path, this.#base);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: body === undefined
          ? this.#headers
          : { ...this.#headers, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([this.#signal, timeout]),
      });
    } catch (error) {
      if (this.#signal.aborted) throw this.#signal.reason;
      if (timeout.aborted) {
        throw new StreamwireError(
          Status.DEADLINE_EXCEEDED,
          `Admin API at '${this.#base}' did not answer within '${this.#timeoutMs}' ms`,
        );
      }
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Admin API at '${this.#base}' is unreachable: ${reason(error)}`,
        { cause: error },
      );
    }
    if (response.ok) return response;
    throw await failure(response, `${method} ${url.pathname}`);
  }

  /** A request whose answer is JSON. */
  async json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.request(method, path, body);
    try {
      return await response.json();
    } catch (error) {
      throw new StreamwireError(
        Status.INTERNAL,
        `Admin API answered ${method} ${path} with a body that is not JSON: ` +
          (error as Error).message,
      );
    }
  }
}

/** The message of a failed fetch, with its cause (Deno says "fetch failed", the cause why). */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error ? error.cause : undefined;
  return cause instanceof Error ? `${message}: ${cause.message}` : message;
}

/** The error of a refused request: the API's `{code, message}`, or one from the HTTP status. */
async function failure(response: Response, what: string): Promise<StreamwireError> {
  const text = await response.text().catch(() => "");
  let body: { code?: unknown; message?: unknown } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // Not the admin API's JSON (a proxy's page, a route that does not exist): the status decides.
  }
  const code = body?.code;
  if (typeof code === "number" && Number.isInteger(code) && code > 0 && code <= 16) {
    return new StreamwireError(code, String(body?.message ?? `${what} failed`));
  }
  const detail = text.trim().slice(0, 200);
  return new StreamwireError(
    HTTP_CODES[response.status] ?? Status.UNKNOWN,
    `Admin API answered ${what} with HTTP ${response.status}${detail ? `: ${detail}` : ""}`,
  );
}

interface SessionRow {
  id: string;
  remoteAddr?: string;
  state?: string;
  codec?: string;
  topics?: string[];
  queuedBytes?: number;
  stats?: {
    framesIn?: number;
    framesOut?: number;
    bytesIn?: number;
    bytesOut?: number;
    createdAt?: number;
  };
}

interface SessionPage {
  total: number;
  offset: number;
  sessions: SessionRow[];
}

function isPage(value: unknown): value is SessionPage {
  const page = value as SessionPage;
  return typeof page === "object" && page !== null && typeof page.total === "number" &&
    Array.isArray(page.sessions);
}

async function sessions(admin: AdminClient, flags: Flags): Promise<SessionPage> {
  if (flags.all && (flags.offset !== undefined || flags.limit !== undefined)) {
    throw usage("--all reads every page: it takes no --offset or --limit");
  }
  const page = async (offset: number, limit: number) => {
    const answer = await admin.json("GET", `sessions?offset=${offset}&limit=${limit}`);
    if (!isPage(answer)) {
      throw new StreamwireError(Status.INTERNAL, "Admin API answered sessions without a page");
    }
    return answer;
  };
  if (!flags.all) {
    const offset = intFlag(flags, "offset", { min: 0, default: 0 });
    return await page(offset, intFlag(flags, "limit", { min: 1, default: 100 }));
  }
  // Sessions come and go between pages: the listing is a walk, not a snapshot.
  const all: SessionRow[] = [];
  let total = 0;
  for (;;) {
    const next = await page(all.length, ALL_PAGE);
    total = next.total;
    all.push(...next.sessions);
    if (next.sessions.length < ALL_PAGE || all.length >= total) break;
  }
  return { total: Math.max(total, all.length), offset: 0, sessions: all };
}

/** Lines of a table, columns padded to their widest cell. */
async function table(out: Output, header: string[], rows: string[][]): Promise<void> {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd();
  out.line(line(header));
  for (const row of rows) await out.line(line(row));
}

function age(createdAt: number | undefined): string {
  if (createdAt === undefined) return "-";
  const s = Math.max(0, Math.floor((Date.now() - createdAt) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60}m`;
}

async function printSessions(io: CliIo, page: SessionPage): Promise<void> {
  const n = (v: number | undefined) => v === undefined ? "-" : String(v);
  await table(
    io.stdout,
    ["ID", "REMOTE", "STATE", "CODEC", "AGE", "FRAMES IN/OUT", "BYTES IN/OUT", "QUEUED", "TOPICS"],
    page.sessions.map((s) => [
      String(s.id),
      s.remoteAddr ?? "-",
      s.state ?? "-",
      s.codec ?? "-",
      age(s.stats?.createdAt),
      `${n(s.stats?.framesIn)}/${n(s.stats?.framesOut)}`,
      `${n(s.stats?.bytesIn)}/${n(s.stats?.bytesOut)}`,
      n(s.queuedBytes),
      (s.topics ?? []).join(",") || "-",
    ]),
  );
  const shown = page.sessions.length;
  if (page.offset > 0 || page.offset + shown < page.total) {
    io.stderr.line(
      `sessions ${shown === 0 ? "none" : `${page.offset + 1}-${page.offset + shown}`} of ` +
        `${page.total}; --offset, --limit or --all for others`,
    );
    await io.stderr.flush();
  }
}

function paramsArg(text: string | undefined): unknown {
  return text === undefined ? undefined : parseJson(text, "params");
}

/** `streamwire admin`. */
export const adminCommand: Command = {
  name: "admin",
  summary: "sessions, kick, notify, broadcast, topics, metrics over the admin API",
  usage: "streamwire admin <admin-url> <action> [arguments] [options]",
  help: HELP,
  flags: {
    token: { type: "string" },
    offset: { type: "string" },
    limit: { type: "string" },
    all: { type: "boolean" },
    topic: { type: "string" },
    timeout: { type: "string" },
  },
  positionals: [2, 5],
  async run({ flags, positionals }, io) {
    const [url, action, ...args] = positionals;
    const spec = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (spec === undefined) {
      throw usage(
        `Unknown action '${action}'; one of ${Object.keys(ACTIONS).join(", ")} ` +
          `(see 'streamwire admin --help')`,
      );
    }
    if (args.length < spec.args[0] || args.length > spec.args[1]) {
      throw usage(`Usage: streamwire admin <admin-url> ${spec.usage}`);
    }
    for (const [flag, owner] of Object.entries(ACTION_FLAGS)) {
      if (flags[flag] !== undefined && owner !== action) {
        throw usage(`--${flag} applies to '${owner}' only, not '${action}'`);
      }
    }
    const base = baseUrl(url);
    const token = (flags.token as string | undefined) ?? io.env.STREAMWIRE_ADMIN_TOKEN;
    const timeoutMs = intFlag(flags, "timeout", { min: 1, max: 2 ** 31 - 1, default: 30_000 });
    const admin = new AdminClient(base, token || undefined, io.signal, timeoutMs);
    const print = (value: unknown) =>
      io.stdout.line(flags.json ? JSON.stringify(value) : JSON.stringify(value, null, 2));
    const id = (text: string) => encodeURIComponent(text);

    switch (action) {
      case "health":
        print(await admin.json("GET", "health"));
        return;
      case "metrics": {
        const text = await (await admin.request("GET", "metrics")).text();
        io.stdout.write(text.endsWith("\n") || text === "" ? text : text + "\n");
        return;
      }
      case "sessions": {
        const page = await sessions(admin, flags);
        if (flags.json) print(page);
        else await printSessions(io, page);
        return;
      }
      case "session":
        print(await admin.json("GET", `sessions/${id(args[0])}`));
        return;
      case "kick": {
        const [session, reason] = args;
        const response = await admin.request(
          "DELETE",
          `sessions/${id(session)}`,
          reason === undefined ? undefined : { reason },
        );
        await response.body?.cancel();
        print({ kicked: session, reason: reason ?? null });
        return;
      }
      case "notify": {
        const [session, method, params] = args;
        print(
          await admin.json("POST", `sessions/${id(session)}/notify`, {
            method,
            params: paramsArg(params),
          }),
        );
        return;
      }
      case "topics": {
        const answer = await admin.json("GET", "topics") as {
          topics?: { topic: string; members: number }[];
        };
        if (flags.json) {
          print(answer);
          return;
        }
        await table(
          io.stdout,
          ["TOPIC", "MEMBERS"],
          (answer.topics ?? []).map((t) => [String(t.topic), String(t.members)]),
        );
        return;
      }
      case "broadcast": {
        const [method, params] = args;
        const topic = flags.topic as string | undefined;
        print(await admin.json("POST", "broadcast", { method, params: paramsArg(params), topic }));
        return;
      }
    }
  },
};
