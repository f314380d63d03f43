// What a served call's failure becomes on the wire, and where the original
// goes. Private: the dispatcher uses these.

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";
import { enqueue, ignore, type Outlet } from "./_flow.ts";
import type { ErrorInfo } from "./peer.ts";

/** The default of `onError`: a server's log is its standard error. */
export function logError(error: unknown, info: ErrorInfo): void {
  console.error(
    `streamwire: call '${info.id}' to '${info.method}' on session '${info.session.id}' failed:`,
    error,
  );
}

/** Whether a handler's result is a promise (or any thenable) to wait for. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * What the caller is told of a failure: a StreamwireError as it is; any
 * other error only as `unknown`, since its message and any numeric `code`
 * belong to this side (a library's HTTP status, a password in a message).
 * The original goes to `report` (the server's `onError`).
 */
export function wireError(error: unknown, report: () => void, method: string): StreamwireError {
  if (error instanceof StreamwireError) {
    return error.code === 0 ? new StreamwireError(Status.UNKNOWN, error.message) : error;
  }
  report();
  return new StreamwireError(Status.UNKNOWN, `Internal error in '${method}'`);
}

/** Queues ERROR for call `id`, shortening a message that would exceed maxFrame. */
export function sendError(outlet: Outlet, id: number, error: StreamwireError): void {
  const message = { type: FrameType.ERROR, seq: id, code: error.code, message: error.message };
  try {
    enqueue(outlet, message)?.catch(ignore);
  } catch {
    // Only a message longer than maxFrame gets here.
    enqueue(outlet, { ...message, message: `Error message exceeds maxFrame` })?.catch(ignore);
  }
}

/** DATA from the caller that the session's codec cannot decode. */
export function notDecodable(error: unknown, codec: PayloadCodec): StreamwireError {
  return new StreamwireError(
    Status.INVALID_ARGUMENT,
    `DATA does not decode as ${codec.name}: ${(error as Error)?.message ?? String(error)}`,
  );
}
