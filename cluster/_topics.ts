// Topics of a cluster node: the topic channels it subscribes to while it has
// local members, delivery of logged messages in offset order with catch-up
// from the log after a missed one, and resume (`cluster.follow`) replaying a
// topic's log after a client's last offset.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import type { FollowResult } from "./cluster.ts";
import { fanOut } from "./_fanout.ts";
import type { NodeContext } from "./_membership.ts";
import { decodeNodeMessage, type NodeMessage, replayMessage } from "./_wire.ts";

/** Entries read from a log in one call. */
const LOG_PAGE = 500;

interface TopicState {
  /** Latest offset delivered here; 0 before the first. */
  last: number;
  /** Messages waiting behind a catch-up, in arrival order. */
  held?: [offset: number, data: Uint8Array][];
}

/** Queues a message to local sessions, counting deliveries and dropping slow consumers. */
export function deliver(
  node: NodeContext,
  targets: Iterable<Session>,
  m: NodeMessage,
  offset: number,
): void {
  node.metrics.delivered += fanOut(targets, m, offset, (session) => {
    node.server.transport.metrics.slowConsumers++;
    session.close(new StreamwireError(Status.RESOURCE_EXHAUSTED, "Slow consumer"));
  });
}

/** The topic channels of one node and the resumes of its sessions. */
export class Topics {
  #node: NodeContext;
  #maxReplay: number;
  #topics = new Map<string, TopicState>();
  /** Per topic, the subscribe/unsubscribe work in order. */
  #ops = new Map<string, Promise<void>>();
  #subscribed = new Set<string>();
  /** Sessions resuming a topic: frames for them wait here until their replay is queued. */
  #resuming = new Map<Session, Map<string, [number, Uint8Array][]>>();

  constructor(node: NodeContext, maxReplay: number) {
    this.#node = node;
    this.#maxReplay = maxReplay;
  }

  /** Subscribes to a topic's channel while it has local members, in order per topic. */
  reconcile(topic: string): void {
    const { backplane, server, metrics } = this.#node;
    const prev = this.#ops.get(topic) ?? Promise.resolve();
    const next = prev.then(async () => {
      const want = !this.#node.closed() && server.transport.members(topic).size > 0;
      if (want && !this.#subscribed.has(topic)) {
        if (!this.#topics.has(topic)) this.#topics.set(topic, { last: 0 });
        await backplane.subscribe(
          `topic:${topic}`,
          (data, offset, prev) => this.#onTopic(topic, data, offset, prev),
        );
        this.#subscribed.add(topic);
      } else if (!want && this.#subscribed.has(topic)) {
        this.#subscribed.delete(topic);
        this.#topics.delete(topic);
        await backplane.unsubscribe(`topic:${topic}`);
      }
    }).catch(() => {
      metrics.errors++;
    });
    this.#ops.set(topic, next);
    next.then(() => {
      if (this.#ops.get(topic) === next) this.#ops.delete(topic);
    });
  }

  /** Resolves once the topic's subscription matches its local membership. */
  async ready(topic: string): Promise<void> {
    await this.#ops.get(topic);
  }

  /** Resolves once every pending subscription change is done. */
  async settled(): Promise<void> {
    await Promise.all(this.#ops.values());
  }

  /** After an outage: subscribes again and catches every topic up from its log. */
  rejoin(): void {
    for (const topic of this.#topics.keys()) {
      this.#subscribed.delete(topic);
      this.reconcile(topic);
    }
    for (const [topic, state] of this.#topics) if (state.last > 0) this.#catchUp(topic, state);
  }

  #onTopic(topic: string, data: Uint8Array, offset: number, prev: number): void {
    this.#node.metrics.received++;
    const state = this.#topics.get(topic);
    if (state === undefined) return;
    if (state.held !== undefined) {
      if (state.held.length < this.#maxReplay) state.held.push([offset, data]);
      return; // past the bound the catch-up's own read covers them
    }
    if (offset <= state.last) return; // already delivered
    if (state.last > 0 && prev !== state.last) {
      // Messages between were missed (a dropped subscription): read them first.
      state.held = [[offset, data]];
      this.#catchUp(topic, state);
      return;
    }
    this.#deliverTopic(topic, state, offset, data);
  }

  #deliverTopic(topic: string, state: TopicState, offset: number, data: Uint8Array): void {
    state.last = offset;
    const m = decodeNodeMessage(data);
    const members = this.#node.server.transport.members(topic);
    const live: Session[] = [];
    for (const session of members) {
      const held = this.#resuming.get(session)?.get(topic);
      if (held === undefined) live.push(session);
      else if (held.length < this.#maxReplay) held.push([offset, data]);
      else session.close(new StreamwireError(Status.RESOURCE_EXHAUSTED, "Resume fell behind"));
    }
    deliver(this.#node, live, m, offset);
  }

  #catchUp(topic: string, state: TopicState): void {
    const { backplane, metrics } = this.#node;
    metrics.catchups++;
    state.held ??= [];
    const run = async () => {
      for (;;) {
        const read = await backplane.read(topic, state.last, LOG_PAGE);
        for (const e of read.entries) this.#deliverTopic(topic, state, e.offset, e.data);
        if (read.entries.length < LOG_PAGE) break;
      }
    };
    run().catch(() => metrics.errors++).finally(() => {
      const held = state.held ?? [];
      state.held = undefined;
      for (const [offset, data] of held) {
        if (offset > state.last) this.#deliverTopic(topic, state, offset, data);
      }
    });
  }

  /** Joins a session to a topic and replays what it missed after `after`. */
  async follow(session: Session, p: { topic: string; after: number }): Promise<FollowResult> {
    const { server, backplane, metrics } = this.#node;
    const t = server.transport;
    if (p.after > 0) metrics.resumes++;
    const pending: [number, Uint8Array][] = [];
    let map = this.#resuming.get(session);
    if (map === undefined) this.#resuming.set(session, map = new Map());
    map.set(p.topic, pending);
    let recovered = 0, gap = false, head = this.#topics.get(p.topic)?.last ?? 0;
    try {
      t.join(session, p.topic);
      await this.#ops.get(p.topic); // subscribed before reading, so nothing falls between
      if (backplane.status !== "up") return { head, recovered, gap: p.after > 0 };
      let after = p.after;
      let first = true;
      for (;;) {
        const read = await backplane.read(p.topic, after, LOG_PAGE);
        head = Math.max(head, read.head);
        if (p.after === 0) break; // a fresh follower starts at the head
        if (first) gap = read.gap;
        first = false;
        for (const e of read.entries) {
          const frame = decodeNodeMessage(e.data).frames.get(session.codec);
          if (frame !== undefined) await session.write(replayMessage(frame, e.offset));
          after = e.offset;
          recovered++;
          if (recovered >= this.#maxReplay) break;
        }
        if (read.entries.length < LOG_PAGE || recovered >= this.#maxReplay) break;
      }
      metrics.replayed += recovered;
      if (gap) metrics.gaps++;
      // Frames that arrived meanwhile, past what the replay covered, in order.
      map.delete(p.topic);
      const rest = pending.filter(([offset]) => offset > after);
      for (const [offset, data] of rest) {
        deliver(this.#node, [session], decodeNodeMessage(data), offset);
        head = Math.max(head, offset);
      }
      return { head, recovered, gap };
    } finally {
      map.delete(p.topic);
      if (map.size === 0) this.#resuming.delete(session);
    }
  }
}
