// The lines an RpcServer logs: one per session opened and closed, one per
// failure its clients do not see. Never one per frame or call at `info`.

import { Status } from "../codec/constants.ts";
import type { StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import type { LogFields, Logger } from "./logger.ts";
import type { ErrorInfo } from "./peer.ts";

/** `session opened`: who, over what, speaking what. */
export function logOpened(logger: Logger, session: Session): void {
  logger.info("session opened", {
    session: session.id,
    remote: session.remoteAddr,
    transport: session.conn.transport,
    codec: session.settings?.codec,
    compression: session.settings?.compression,
  });
}

/**
 * `session closed` with its counters, lifetime and reason; a connection
 * that never completed the handshake is `handshake failed` (a warning) when
 * something was wrong with it, a debug line when it just went away.
 */
export function logClosed(
  logger: Logger,
  session: Session,
  reason: StreamwireError | undefined,
  shuttingDown: boolean,
): void {
  const stats = session.stats;
  const fields: LogFields = {
    session: session.id,
    remote: session.remoteAddr,
    durationMs: Date.now() - stats.createdAt,
    framesIn: stats.framesIn,
    framesOut: stats.framesOut,
    bytesIn: stats.bytesIn,
    bytesOut: stats.bytesOut,
    reason: reason?.message ?? (shuttingDown ? "server shutdown" : "connection closed"),
    code: reason?.code,
    codeName: reason?.codeName,
  };
  if (session.settings !== undefined) logger.info("session closed", fields);
  else if (reason !== undefined) logger.warn("handshake failed", fields);
  else logger.debug("handshake abandoned", fields);
}

/**
 * What `onError` logs by default: the original error, whose message and
 * stack the client never sees; a call's client got code 2 `unknown`.
 */
export function logFailure(logger: Logger, error: unknown, info: ErrorInfo): void {
  const call = info.id !== 0;
  logger.error(call ? "call failed" : "notification failed", {
    session: info.session.id,
    method: info.method,
    id: info.id,
    code: call ? Status.UNKNOWN : undefined,
    codeName: call ? "unknown" : undefined,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  });
}
