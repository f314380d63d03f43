// Unicast, NOTIFY and kick of a session on any node: a local session is
// reached directly; another node's through the session directory and that
// node's own channel, with the frame encoded here in the session's codec.

import { FrameType } from "../codec/constants.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { encodeMessage } from "../codec/message.ts";
import { type CodecName, getCodec } from "../codec/payload_codec.ts";
import type { NodeContext } from "./_membership.ts";
import { decodeNodeMessage, encodeNodeMessage, forAlgorithm, Kind } from "./_wire.ts";

/** Sends a NOTIFY to a session on any node; false if it is nowhere. */
export async function unicast(
  node: NodeContext,
  sessionId: string,
  method: string,
  value: unknown,
): Promise<boolean> {
  const transport = node.server.transport;
  const local = transport.session(sessionId);
  if (local !== undefined) {
    const params = getCodec(local.codec).encode(value);
    return transport.unicast(sessionId, { type: FrameType.NOTIFY, seq: 0, method, params });
  }
  const entry = await node.backplane.session(sessionId);
  if (entry === undefined) return false;
  const codec = (JSON.parse(entry.info) as { codec: CodecName }).codec;
  const frame = encodeFrames([
    encodeMessage({
      type: FrameType.NOTIFY,
      seq: 0,
      method,
      params: getCodec(codec).encode(value),
    }),
  ]);
  await toNode(node, entry.node, Kind.UNICAST, sessionId, new Map([["", frame]]), "");
  return true;
}

/** Disconnects a session on any node with ERROR `aborted`; false if it is nowhere. */
export async function kick(node: NodeContext, sessionId: string, reason: string): Promise<boolean> {
  if (node.server.transport.kick(sessionId, reason)) return true;
  const entry = await node.backplane.session(sessionId);
  if (entry === undefined) return false;
  await toNode(node, entry.node, Kind.KICK, sessionId, new Map(), reason);
  return true;
}

function toNode(
  node: NodeContext,
  to: string,
  kind: number,
  target: string,
  frames: Map<string, Uint8Array>,
  reason: string,
): Promise<void> {
  const data = encodeNodeMessage({ kind, origin: node.nodeId, target, frames, reason });
  return node.backplane.publish(`node:${to}`, data);
}

/** Handles a message on this node's own channel: a unicast or a kick. */
export function onNodeMessage(node: NodeContext, data: Uint8Array): void {
  node.metrics.received++;
  const m = decodeNodeMessage(data);
  const transport = node.server.transport;
  const session = transport.session(m.target);
  if (session === undefined) return;
  if (m.kind === Kind.KICK) transport.kick(m.target, m.reason);
  else if (m.kind === Kind.UNICAST) {
    const frame = m.frames.get("");
    if (frame === undefined) return;
    if (session.sendEncoded(forAlgorithm(frame, session.settings?.compression[0]))) {
      node.metrics.delivered++;
    }
  }
}
