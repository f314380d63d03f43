/**
 * The one error class of the toolkit: every failure carries a status code of
 * PROTOCOL.md 6, so it can cross the wire as an ERROR frame unchanged.
 *
 * @module
 */

import { Status } from "./constants.ts";

const NAMES: readonly string[] = Object.keys(Status).map((key) => key.toLowerCase());

/**
 * The snake_case name of a status code, such as `"resource_exhausted"`.
 *
 * @param code A status code.
 * @returns Its name, or `"unknown"` for a number outside PROTOCOL.md 6.
 *
 * @example Usage
 * ```ts
 * import { Status, statusName } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * assert.equal(statusName(Status.DATA_LOSS), "data_loss");
 * ```
 */
export function statusName(code: number): string {
  return NAMES[code] ?? "unknown";
}

/**
 * An error with a protocol status code.
 *
 * @example Usage
 * ```ts
 * import { Status, StreamwireError } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const err = new StreamwireError(Status.NOT_FOUND, "No user 'ada'");
 * assert.equal(err.code, 5);
 * assert.equal(err.codeName, "not_found");
 * assert.equal(err.message, "No user 'ada'");
 * ```
 */
export class StreamwireError extends Error {
  /** The status code (PROTOCOL.md 6). */
  readonly code: number;

  /**
   * Creates an error.
   *
   * @param code A status code; numbers outside 1..16 are kept but named `unknown`.
   * @param message What went wrong, quoting the offending value.
   * @param options Standard error options, such as `cause`.
   */
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreamwireError";
    this.code = code;
  }

  /** The snake_case name of {@linkcode StreamwireError.code}, such as `"invalid_argument"`. */
  get codeName(): string {
    return statusName(this.code);
  }

  /**
   * Turns anything thrown into a `StreamwireError`. A `StreamwireError` is
   * returned as is; anything else becomes `unknown` (code 2) with its
   * message, and keeps the original as `cause`. A foreign error's own
   * numeric `code` is never taken as a status: an HTTP library's `500`, a
   * `DOMException`'s legacy code `8` or a system error number mean something
   * else, and the caller decides what reaches the peer.
   *
   * @param error A thrown value.
   * @returns `error` itself when it is a `StreamwireError`, else a wrapper.
   *
   * @example Foreign errors become `unknown`, whatever their own code
   * ```ts
   * import { Status, StreamwireError } from "@streamwire/streamwire/codec";
   * import assert from "node:assert/strict";
   *
   * const err = StreamwireError.from(new TypeError("boom"));
   * assert.equal(err.codeName, "unknown");
   * assert.equal(err.message, "boom");
   *
   * const http = Object.assign(new Error("upstream failed"), { code: 5 });
   * assert.equal(StreamwireError.from(http).code, Status.UNKNOWN);
   * assert.equal(StreamwireError.from(http).cause, http);
   *
   * const own = new StreamwireError(Status.NOT_FOUND, "No user 'ada'");
   * assert.equal(StreamwireError.from(own), own);
   * ```
   */
  static from(error: unknown): StreamwireError {
    if (error instanceof StreamwireError) return error;
    return new StreamwireError(Status.UNKNOWN, describe(error), { cause: error });
  }
}

/** The message of a thrown value, never throwing itself. */
function describe(error: unknown): string {
  if (error instanceof Error) return String(error.message);
  try {
    return String(error);
  } catch {
    // Objects without a prototype, or with a throwing toString.
    return Object.prototype.toString.call(error);
  }
}
