// Membership of a cluster node: its heartbeat with what it announces, the
// directory entries of its local sessions, reaping of expired nodes, and the
// `nodejoined`/`nodegone` events seen at each heartbeat.

import type { RpcServer } from "../rpc/server.ts";
import { type Session, SessionState } from "../transport/session.ts";
import type { Backplane, NodeEntry, SessionEntry } from "./backplane.ts";
import type { ClusterMetrics } from "./cluster.ts";

/** What the parts of a node share: its id, server, backplane and counters. */
export interface NodeContext {
  readonly nodeId: string;
  readonly server: RpcServer;
  readonly backplane: Backplane;
  readonly metrics: ClusterMetrics;
  /** Whether the node left the cluster. */
  closed(): boolean;
}

/**
 * Topics listed in one heartbeat's announcement, so that a node with many
 * topics does not write an unbounded value at every beat.
 */
const MAX_TOPICS_ANNOUNCED = 100;

type Timer = ReturnType<typeof setInterval>;

/** Heartbeats and directory entries of one node. */
export class Membership {
  /** Whether the node announces that it drains (GOAWAY sent or about to be). */
  draining = false;
  /** When the last heartbeat was recorded, in ms since the epoch; 0 before the first. */
  lastBeat = 0;
  #node: NodeContext;
  #events: EventTarget;
  #address: string | undefined;
  #ttl: number;
  #timer: Timer | undefined;
  /** Node ids seen alive at the last heartbeat. */
  #known = new Set<string>();
  /** The node list read at the last heartbeat (at most one entry per live node). */
  #nodes: NodeEntry[] = [];

  constructor(
    node: NodeContext,
    events: EventTarget,
    options: { heartbeatMs: number; ttlMs: number; address?: string },
  ) {
    this.#node = node;
    this.#events = events;
    this.#address = options.address;
    this.#ttl = options.ttlMs;
    this.#timer = setInterval(() => this.#beat(), options.heartbeatMs);
  }

  /** Node ids seen alive at the last heartbeat. */
  get known(): ReadonlySet<string> {
    return this.#known;
  }

  /** The node list read at the last heartbeat that reached the backplane. */
  get lastNodes(): readonly NodeEntry[] {
    return this.#nodes;
  }

  /** Records this node's heartbeat now. */
  async heartbeat(): Promise<void> {
    await this.#node.backplane.heartbeat(this.#node.nodeId, this.#info(), this.#ttl);
    this.lastBeat = Date.now();
  }

  /**
   * Heartbeat and directory entries of every local session; entries of
   * sessions that closed while the backplane was away are removed.
   */
  async announce(): Promise<void> {
    await this.heartbeat();
    const { backplane, nodeId, server } = this.#node;
    const writes: Promise<void>[] = [];
    for (const s of server.transport.sessions()) {
      if (s.settings !== undefined && s.state !== SessionState.CLOSED) {
        writes.push(backplane.setSession(this.#entry(s)));
      }
    }
    for (const e of await backplane.sessions(nodeId)) {
      if (server.transport.session(e.id) === undefined) {
        writes.push(backplane.deleteSession(nodeId, e.id));
      }
    }
    await Promise.all(writes);
  }

  /** Adds or removes a local session's directory entry. */
  directory(session: Session, open: boolean): void {
    const { backplane, nodeId, metrics } = this.#node;
    if (backplane.status !== "up") return; // re-registered when it is back
    const write = open
      ? backplane.setSession(this.#entry(session))
      : backplane.deleteSession(nodeId, session.id);
    write.catch(() => metrics.errors++);
  }

  /** Stops the heartbeats. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #info(): string {
    const t = this.#node.server.transport;
    return JSON.stringify({
      address: this.#address,
      sessions: t.sessionCount,
      topics: t.topics().slice(0, MAX_TOPICS_ANNOUNCED),
      draining: this.draining,
      beat: Date.now(),
    });
  }

  #entry(session: Session): SessionEntry {
    const info = { codec: session.codec, compression: session.settings?.compression[0] };
    return { id: session.id, node: this.#node.nodeId, info: JSON.stringify(info) };
  }

  #beat(): void {
    const { backplane, metrics } = this.#node;
    if (backplane.status !== "up") return;
    // Whichever node reaps an expired node, every node sees it leave the list.
    this.heartbeat()
      .then(() => backplane.reap())
      .then(() => backplane.nodes())
      .then((nodes) => {
        const now = new Set(nodes.map((n) => n.id));
        for (const id of this.#known) {
          if (!now.has(id)) this.#events.dispatchEvent(new CustomEvent("nodegone", { detail: id }));
        }
        for (const id of now) {
          if (!this.#known.has(id)) {
            this.#events.dispatchEvent(new CustomEvent("nodejoined", { detail: id }));
          }
        }
        this.#known = now;
        this.#nodes = nodes;
      })
      .catch(() => metrics.errors++);
  }
}
