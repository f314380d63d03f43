/**
 * The client side of the handshake: HELLO out, HELLO_ACK in, a session ready
 * for calls.
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection } from "./connection.ts";
import { acceptAck, type HelloOptions, helloPayload } from "./handshake.ts";
import { Session, type SessionHandler, type SessionLimits, type SessionStages } from "./session.ts";

/** Options of {@linkcode openSession}. */
export interface OpenSessionOptions extends HelloOptions, SessionLimits {
  /** Receives call-level messages once the session is open. */
  handler: SessionHandler;
  /** The user's own inbound stages (see {@linkcode SessionStages}). */
  inbound?: SessionStages;
  /** The user's own outbound stages. */
  outbound?: SessionStages;
  /**
   * How long to wait for HELLO_ACK, in ms.
   *
   * @default {5000}
   */
  handshakeTimeoutMs?: number;
}

/**
 * Runs the client handshake on a connection and keeps the session alive
 * with heartbeats (PROTOCOL.md 5) until it closes.
 *
 * @param conn A connection to a server.
 * @param options The offer, the handler and limits.
 * @returns The open session.
 * @throws {StreamwireError} The server's ERROR (such as `unauthenticated`),
 *   `deadline_exceeded` without an answer, or `unavailable` if the connection closed.
 *
 * @example Usage
 * ```ts
 * import { memoryPair, openSession, Server } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const server = new Server({ handler: { message() {} }, token: "s3cret" });
 * const [a, b] = memoryPair();
 * server.accept(a);
 * await assert.rejects(
 *   openSession(b, { handler: { message() {} }, token: "wrong" }),
 *   { codeName: "unauthenticated" },
 * );
 * await server.shutdown();
 * ```
 */
export async function openSession(conn: Connection, options: OpenSessionOptions): Promise<Session> {
  const hello = helloPayload(options);
  const timeoutMs = options.handshakeTimeoutMs ?? 5000;
  const session = new Session(conn, {
    ...options,
    role: "client",
    acceptAck: (ack) => acceptAck(ack, hello),
  });
  session.send({ type: FrameType.HELLO, seq: 0, hello });
  const timer = setTimeout(
    () =>
      session.close(
        new StreamwireError(Status.DEADLINE_EXCEEDED, `No HELLO_ACK within '${timeoutMs}' ms`),
      ),
    timeoutMs,
  );
  try {
    await session.opened;
  } catch (error) {
    await session.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  startHeartbeat(session);
  return session;
}

/** One timer per client session: a client has one session, a server sweeps all of its own. */
function startHeartbeat(session: Session): void {
  const hb = session.settings!.heartbeatMs;
  const timer = setInterval(() => session.tick(Date.now(), Infinity), Math.max(5, hb / 4));
  session.closed.then(() => clearInterval(timer));
}
