/**
 * The client side of the handshake: HELLO out, HELLO_ACK in, a session ready
 * for calls.
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import type { Connection } from "./connection.ts";
import { acceptAck, type HelloOptions, helloPayload } from "./handshake.ts";
import { Session, type SessionHandler, type SessionLimits, SessionState } from "./session.ts";

/** Options of {@linkcode openSession}. */
export interface OpenSessionOptions extends HelloOptions, SessionLimits {
  /** Receives call-level messages once the session is open. */
  handler: SessionHandler;
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
  let settle!: (error?: StreamwireError) => void;
  const done = new Promise<StreamwireError | undefined>((resolve) => (settle = resolve));
  const user = options.handler;
  const handler: SessionHandler = {
    message(session: Session, messages: Message[]) {
      if (session.state !== SessionState.CONNECTING) return user.message(session, messages);
      const ack = messages[0];
      if (ack.type !== FrameType.HELLO_ACK || messages.length > 1) {
        const error = new StreamwireError(
          Status.FAILED_PRECONDITION,
          `Expected HELLO_ACK, got frame type '0x${ack.type.toString(16)}'`,
        );
        session.close(error);
        return settle(error);
      }
      try {
        session.establish(acceptAck(ack.ack, hello));
        settle();
      } catch (error) {
        session.close(StreamwireError.from(error));
        settle(StreamwireError.from(error));
      }
    },
    open: (session) => user.open?.(session),
    goaway: (session, message) => user.goaway?.(session, message),
    drain: user.drain,
    close(session, reason) {
      settle(
        reason ?? session.closeReason ??
          new StreamwireError(Status.UNAVAILABLE, "Connection closed during the handshake"),
      );
      user.close?.(session, reason);
    },
  };
  const session = new Session(conn, {
    ...options,
    role: "client",
    handler,
    accept: options.compression,
  });
  session.send({ type: FrameType.HELLO, seq: 0, hello });
  const timer = setTimeout(
    () =>
      settle(
        new StreamwireError(
          Status.DEADLINE_EXCEEDED,
          `No HELLO_ACK within '${timeoutMs}' ms`,
        ),
      ),
    timeoutMs,
  );
  const error = await done;
  clearTimeout(timer);
  if (error !== undefined) {
    await session.close();
    throw error;
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
