// The HTTP side of the admin API: JSON errors for every status, bearer
// authentication, body and query parsing. Private to rpc/admin.ts.

import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { tokensEqual } from "../transport/handshake.ts";

/** HTTP status of each protocol status an admin route fails with. */
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

/** A failure with its own HTTP status (413 for a body over the limit, say). */
export class AdminHttpError extends StreamwireError {
  readonly httpStatus: ContentfulStatusCode;

  constructor(httpStatus: ContentfulStatusCode, code: number, message: string) {
    super(code, message);
    this.httpStatus = httpStatus;
  }
}

function errorJson(c: Context, error: StreamwireError, status: ContentfulStatusCode): Response {
  const headers: Record<string, string> = status === 401
    ? { "www-authenticate": 'Bearer realm="streamwire"' }
    : {};
  return c.json(
    { code: error.code, codeName: error.codeName, message: error.message },
    status,
    headers,
  );
}

/**
 * Answers every failure as JSON `{code, codeName, message}` with a matching
 * HTTP status, so admin clients see the protocol's codes.
 */
export function adminErrors(): ErrorHandler {
  return function adminErrors(thrown, c) {
    if (thrown instanceof AdminHttpError) return errorJson(c, thrown, thrown.httpStatus);
    if (thrown instanceof HTTPException) {
      const status = thrown.status as ContentfulStatusCode;
      const code = status === 401
        ? Status.UNAUTHENTICATED
        : status === 413
        ? Status.RESOURCE_EXHAUSTED
        : Status.INVALID_ARGUMENT;
      return errorJson(c, new StreamwireError(code, thrown.message || "Bad request"), status);
    }
    const error = StreamwireError.from(thrown);
    return errorJson(c, error, HTTP_STATUS[error.code] ?? 500);
  };
}

/** A JSON 404 naming the route nobody serves. */
export function adminNotFound(): NotFoundHandler {
  return function adminNotFound(c) {
    const error = new StreamwireError(
      Status.NOT_FOUND,
      `No route '${c.req.method} ${new URL(c.req.url).pathname}'`,
    );
    return errorJson(c, error, 404);
  };
}

/**
 * Requires `authorization: Bearer <token>`; a missing, malformed or wrong
 * header is 401 with a `www-authenticate` challenge (RFC 6750 3).
 */
export function bearerToken(token: string): MiddlewareHandler {
  return async function bearerToken(c, next) {
    const header = c.req.header("authorization");
    const match = header === undefined ? null : /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
    if (match === null || !tokensEqual(match[1], token)) {
      const message = header === undefined
        ? "Missing bearer token"
        : match === null
        ? "Malformed authorization header: expected 'Bearer <token>'"
        : "Bad bearer token";
      throw new AdminHttpError(401, Status.UNAUTHENTICATED, message);
    }
    await next();
  };
}

/** The body as a JSON object, or `invalid_argument`. */
export async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  return jsonObject(await request.text());
}

/** The optional JSON object body of a request that may have none. */
export async function optionalJsonBody(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  return text === "" ? {} : jsonObject(text);
}

function jsonObject(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw invalid(`Body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("Body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** An integer query parameter within bounds, or its default; anything else is `invalid_argument`. */
export function intQuery(
  c: Context,
  name: string,
  bounds: { min: number; max: number; default: number },
): number {
  const raw = c.req.query(name);
  if (raw === undefined) return bounds.default;
  const value = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= bounds.min && value <= bounds.max)) {
    throw invalid(`'${name}' must be an integer within ${bounds.min}..${bounds.max}, got '${raw}'`);
  }
  return value;
}

/** `invalid_argument` with `message`. */
export function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}
