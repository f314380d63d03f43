// Delivery of a backplane message to local sessions, and parameter checks
// of the cluster's methods.

import { HEADER_SIZE, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { type Session, SessionState } from "../transport/session.ts";
import { forAlgorithm, type NodeMessage, withOffset } from "./_wire.ts";

/**
 * Queues a message's frames to sessions: one patched (offset) and
 * compressed copy per codec and algorithm, the same bytes for every session
 * sharing them. A session over its queue bound goes to `slow`.
 *
 * @returns Sessions the frame was queued to.
 */
export function fanOut(
  targets: Iterable<Session>,
  m: NodeMessage,
  offset: number,
  slow: (session: Session) => void,
): number {
  const bytes = new Map<string, Uint8Array | null>();
  let delivered = 0;
  const dropped: Session[] = [];
  for (const session of targets) {
    if (m.target !== "" && session.id === m.target) continue;
    const state = session.state;
    if (state !== SessionState.ACTIVE && state !== SessionState.IDLE) continue;
    const algorithm = session.settings?.compression[0];
    const key = `${session.codec}/${algorithm ?? ""}`;
    let frame = bytes.get(key);
    if (frame === undefined) {
      const template = m.frames.get(session.codec);
      frame = template === undefined
        ? null
        : forAlgorithm(offset > 0 ? withOffset(template, offset) : template, algorithm);
      bytes.set(key, frame);
    }
    if (frame === null) continue;
    // Never a frame the session said it would refuse (its maxFrame).
    if (frame.length - HEADER_SIZE > (session.settings?.maxFrame ?? Infinity)) continue;
    if (session.sendEncoded(frame)) delivered++;
    else dropped.push(session);
  }
  for (const session of dropped) slow(session);
  return delivered;
}

export function followParams(p: unknown): { topic: string; after: number } {
  const { topic, after } = (p ?? {}) as { topic?: unknown; after?: unknown };
  if (typeof topic !== "string" || topic.length === 0) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `params.topic must be a non-empty string, got '${JSON.stringify(topic)}'`,
    );
  }
  if (
    after !== undefined && (typeof after !== "number" || !Number.isSafeInteger(after) || after < 0)
  ) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `params.after must be a non-negative integer, got '${JSON.stringify(after)}'`,
    );
  }
  return { topic, after: after ?? 0 };
}

export function safeJson(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
