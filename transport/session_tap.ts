/**
 * The observer a session calls for each message it receives or accepts to
 * send, while one is set on `Session.tap`: how the admin API's
 * wire tap sees one session's traffic.
 *
 * @module
 */

import type { Message } from "../codec/message.ts";

/**
 * Sees one session's messages as they pass. Set it on
 * `Session.tap` and clear it (`undefined`) when done: unset, a
 * session pays one branch per message for it. Its methods run on the
 * session's own path, between two frames: they must return quickly and
 * must not throw, and must copy what they keep (a received message's bytes
 * are views into the read buffer).
 *
 * @example Count what a session receives
 * ```ts
 * import { memoryPair, openSession, Server, type SessionTap } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const server = new Server({ handler: { message() {} } });
 * const [a, b] = memoryPair();
 * const session = server.accept(a)!;
 * const types: number[] = [];
 * const tap: SessionTap = {
 *   received: (message) => types.push(message.type),
 *   sent() {},
 *   sentEncoded() {},
 * };
 * session.tap = tap;
 * const client = await openSession(b, { handler: { message() {} } });
 * assert.deepEqual(types, [0x01]); // HELLO
 * session.tap = undefined;
 * await client.close();
 * await server.shutdown();
 * ```
 */
export interface SessionTap {
  /**
   * A message was read and is about to be handled (frames after a
   * connection ERROR are not: they are never read).
   *
   * @param message The decoded message; its bytes are views of the read buffer.
   */
  received(message: Message): void;
  /**
   * A message was accepted into the outbound queue.
   *
   * @param message The message, not yet encoded.
   * @param size Its size on the wire before compression, header included.
   */
  sent(message: Message, size: number): void;
  /**
   * Frames encoded elsewhere (a broadcast shared by many sessions) were
   * accepted into the outbound queue.
   *
   * @param bytes Complete frames, possibly compressed; shared, never to be changed.
   * @param frames How many frames `bytes` holds.
   */
  sentEncoded(bytes: Uint8Array, frames: number): void;
}
