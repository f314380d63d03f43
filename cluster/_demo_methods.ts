// The demo's chat methods made cluster-wide: `chat.join` answers once the
// node follows the room's channel, and `chat.say` publishes through the
// cluster, so members on every node hear it.

import type { RpcServer } from "../rpc/server.ts";
import type { Cluster } from "./cluster.ts";
import { followParams } from "./_fanout.ts";

/** Replaces `chat.join` and `chat.say` of the demo on `server` with cluster-wide ones. */
export function clusterChat(server: RpcServer, cluster: Cluster): void {
  server.methods
    .unary("chat.join", async (p, ctx) => {
      const room = followParams({ topic: (p as { room?: unknown })?.room }).topic;
      server.transport.join(ctx.session, room);
      await cluster.ready(room);
      return true;
    })
    .unary("chat.say", async (p, ctx) => {
      const { room, text } = (p ?? {}) as { room?: unknown; text?: unknown };
      const topic = followParams({ topic: room }).topic;
      if (typeof text !== "string") {
        throw new TypeError(`params.text must be a string, got '${JSON.stringify(text)}'`);
      }
      const { offset } = await cluster.broadcast(topic, { from: ctx.session.id, text }, { topic });
      return offset;
    });
}
