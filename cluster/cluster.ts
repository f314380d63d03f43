/**
 * The cluster layer: an {@linkcode RpcServer} joined to other nodes through
 * a {@linkcode Backplane}.
 *
 * - Broadcasts to all and to a topic are encoded once per codec on the
 *   publishing node and forwarded as frames; receiving nodes patch the
 *   topic offset into them and queue the same bytes to every local member.
 * - A node subscribes to a topic's channel only while it has a local member.
 * - Unicast, notify and kick reach a session on any node through the
 *   session directory and the node's own channel.
 * - Nodes announce themselves with heartbeats; a node that stops is
 *   forgotten, with its directory entries, within `nodeTtlMs` plus one
 *   heartbeat.
 * - Topic messages carry offsets; `cluster.follow` joins a topic and
 *   replays what a client missed after its last offset.
 * - While the backplane is down, local delivery goes on (without offsets),
 *   {@linkcode Cluster.status} is `"degraded"`, nothing is queued, and the
 *   engine reconnects with backoff; on its return the node announces itself
 *   and its sessions again and catches its topics up.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { type CodecName, getCodec } from "../codec/payload_codec.ts";
import type { RpcServer } from "../rpc/server.ts";
import type { Backplane, BackplaneStatus, NodeEntry, SessionEntry } from "./backplane.ts";
import { followParams, safeJson } from "./_fanout.ts";
import { Membership, type NodeContext } from "./_membership.ts";
import { registerClusterMetrics } from "./_metrics.ts";
import { deliver, Topics } from "./_topics.ts";
import { kick, onNodeMessage, unicast } from "./_unicast.ts";
import { Batcher, BATCHER_LIMITS } from "./_batcher.ts";
import {
  broadcastTemplate,
  decodeBatch,
  decodeNodeMessage,
  encodeBatch,
  encodeNodeMessage,
  Kind,
  type NodeMessage,
} from "./_wire.ts";

/** Options of {@linkcode Cluster.start}. */
export interface ClusterOptions {
  /** The backplane engine this node uses. */
  backplane: Backplane;
  /** This node's id, unique in the cluster. @default {a random id} */
  nodeId?: string;
  /** Address clients may reach this node at, announced in heartbeats. */
  address?: string;
  /** Heartbeat interval in ms. @default {1000} */
  heartbeatMs?: number;
  /** A node silent this long is forgotten. @default {3 x heartbeatMs} */
  nodeTtlMs?: number;
  /**
   * Codecs a forwarded broadcast is encoded in; sessions using another
   * codec do not receive cross-node broadcasts. Codecs that cannot encode
   * a value (`raw`, for anything but bytes) are skipped for it.
   *
   * @default {["msgpack", "cbor", "json", "raw"]}
   */
  codecs?: readonly CodecName[];
  /**
   * Entries replayed to one session per `cluster.follow`, and frames held
   * for it meanwhile; bounds the memory one resume can take.
   *
   * @default {10000}
   */
  maxReplay?: number;
}

/** Counters of a cluster node. */
export interface ClusterMetrics {
  /** Broadcasts published through the backplane. */
  published: number;
  /** Broadcasts delivered to local members only because the backplane was down. */
  localOnly: number;
  /** Messages received from the backplane. */
  received: number;
  /** Frames queued to local sessions from cross-node messages. */
  delivered: number;
  /** Log entries replayed to resuming sessions. */
  replayed: number;
  /** Resumes told of a gap. */
  gaps: number;
  /** Topic catch-ups after missed messages. */
  catchups: number;
  /** Backplane calls that failed. */
  errors: number;
  /** `cluster.follow` calls with an offset to resume from. */
  resumes: number;
  /** Times the backplane went down. */
  outages: number;
}

/** What `cluster.follow` answers. */
export interface FollowResult {
  /** The topic's latest offset once the replay was queued. */
  head: number;
  /** Entries replayed. */
  recovered: number;
  /** Whether entries after the given offset were no longer in the log. */
  gap: boolean;
}

/** A live node as {@linkcode Cluster.view} shows it. */
export interface ClusterNodeView {
  /** Node id. */
  id: string;
  /** Whether it is this node. */
  self: boolean;
  /** The address it announced, if any. */
  address?: string;
  /** Sessions it held at its last heartbeat. */
  sessions?: number;
  /** Whether it announced that it drains (GOAWAY). */
  draining: boolean;
  /** When it sent its last heartbeat, by its own clock, in ms since the epoch. */
  lastHeartbeat?: number;
}

/** What {@linkcode Cluster.view} returns. */
export interface ClusterView {
  /** This node's id. */
  nodeId: string;
  /** `"connected"`, or `"degraded"` while the backplane is down. */
  status: "connected" | "degraded";
  /** The backplane's own status. */
  backplane: BackplaneStatus;
  /** Whether this node drains. */
  draining: boolean;
  /** Live nodes, this one included. */
  nodes: ClusterNodeView[];
  /**
   * Whether `nodes` is the list read at this node's last heartbeat rather
   * than now, because the backplane is down.
   */
  stale: boolean;
  /** This node's counters. */
  metrics: ClusterMetrics;
}

/**
 * The service name of a cluster node's health (`health.check {service}`):
 * `SERVING` while the backplane is up, `NOT_SERVING` while it is away or
 * once the node left. The server as a whole (`""`) stays `SERVING` while
 * degraded, since local delivery works.
 */
export const CLUSTER_HEALTH_SERVICE = "streamwire.cluster";

const CODECS: readonly CodecName[] = ["msgpack", "cbor", "json", "raw"];

/**
 * One node of a cluster. Emits `status` (`CustomEvent` with `"connected"`
 * or `"degraded"`), `nodejoined` and `nodegone` (with the node id, as seen
 * at a heartbeat).
 *
 * @example Cross-node broadcast on an in-memory backplane
 * ```ts
 * import { Cluster, MemoryHub } from "@streamwire/streamwire/cluster";
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const hub = new MemoryHub();
 * const a = await Cluster.start(new RpcServer({ methods: new Methods() }), {
 *   backplane: hub.connect(),
 * });
 * const server = new RpcServer({ methods: new Methods() });
 * const b = await Cluster.start(server, { backplane: hub.connect() });
 * const client = await connect(server.listen({ port: 0 }));
 * const got = new Promise((resolve) => client.subscribe("news", resolve));
 * await a.broadcast("news", { hello: "from a" });
 * assert.deepEqual(await got, { hello: "from a" });
 * await client.close();
 * await a.shutdown();
 * await b.shutdown();
 * ```
 */
export class Cluster extends EventTarget {
  /** This node's id. */
  readonly nodeId: string;
  /** The server this node serves. */
  readonly server: RpcServer;
  /** The backplane. */
  readonly backplane: Backplane;
  /** Counters. */
  readonly metrics: ClusterMetrics = {
    published: 0,
    localOnly: 0,
    received: 0,
    delivered: 0,
    replayed: 0,
    gaps: 0,
    catchups: 0,
    errors: 0,
    resumes: 0,
    outages: 0,
  };
  #codecs: readonly CodecName[];
  #node: NodeContext;
  #membership: Membership;
  #topics: Topics;
  #unwatch: () => void;
  #offStatus: () => void;
  #unregister: () => void;
  #all: Batcher<void>;
  #topicsOut: Batcher<number>;
  #closed = false;

  private constructor(server: RpcServer, options: ClusterOptions) {
    super();
    this.server = server;
    this.backplane = options.backplane;
    this.nodeId = options.nodeId ?? `node-${crypto.randomUUID().slice(0, 8)}`;
    this.#codecs = options.codecs ?? CODECS;
    this.#node = {
      nodeId: this.nodeId,
      server,
      backplane: this.backplane,
      metrics: this.metrics,
      closed: () => this.#closed,
    };
    const heartbeatMs = options.heartbeatMs ?? 1000;
    this.#membership = new Membership(this.#node, this, {
      heartbeatMs,
      ttlMs: options.nodeTtlMs ?? 3 * heartbeatMs,
      address: options.address,
    });
    this.#topics = new Topics(this.#node, options.maxReplay ?? 10_000);
    const backplane = this.backplane;
    this.#all = new Batcher<void>(async (channel, messages) => {
      await backplane.publish(
        channel,
        messages.length === 1 ? messages[0] : encodeBatch(this.nodeId, messages),
      );
      return [];
    });
    this.#topicsOut = new Batcher(
      (topic, messages) => backplane.appendMany(topic, `topic:${topic}`, messages),
      { ...BATCHER_LIMITS, maxBatch: Math.min(BATCHER_LIMITS.maxBatch, backplane.maxAppendMany) },
    );
    this.#unwatch = server.transport.watch({
      topic: (topic) => this.#topics.reconcile(topic),
      session: (session, open) => this.#membership.directory(session, open),
    });
    this.#offStatus = this.backplane.onStatus((s) => this.#statusChanged(s));
    this.#unregister = registerClusterMetrics(this, () => this.#membership.known.size);
    server.health?.set(CLUSTER_HEALTH_SERVICE, "SERVING");
    server.methods
      .unary("cluster.follow", (p, ctx) => this.#topics.follow(ctx.session, followParams(p)))
      .unary(
        "cluster.unfollow",
        (p, ctx) => server.transport.leave(ctx.session, followParams(p).topic),
      );
  }

  /**
   * Joins `server` to the cluster: subscribes to the cluster-wide and node
   * channels, announces the node, registers sessions and topics it already
   * has, and serves `cluster.follow` and `cluster.unfollow`.
   *
   * @param server The RPC server of this node.
   * @param options Backplane, node id, heartbeats, codecs, replay bound.
   * @returns The running node.
   * @throws {StreamwireError} `unavailable` if the backplane is down.
   */
  static async start(server: RpcServer, options: ClusterOptions): Promise<Cluster> {
    if (options.backplane.status !== "up") {
      throw new StreamwireError(Status.UNAVAILABLE, "Backplane is not reachable");
    }
    const cluster = new Cluster(server, options);
    try {
      await cluster.#join();
    } catch (error) {
      await cluster.close();
      throw StreamwireError.from(error);
    }
    return cluster;
  }

  /** `"connected"` while the backplane is up, `"degraded"` (local delivery only) otherwise. */
  get status(): "connected" | "degraded" {
    return this.backplane.status === "up" ? "connected" : "degraded";
  }

  async #join(): Promise<void> {
    await this.backplane.subscribe("all", (data) => this.#onAll(data));
    await this.backplane.subscribe(
      `node:${this.nodeId}`,
      (data) => onNodeMessage(this.#node, data),
    );
    await this.#membership.announce();
    for (const { topic } of this.server.transport.topics()) this.#topics.reconcile(topic);
    await this.#topics.settled();
  }

  #statusChanged(status: "up" | "down"): void {
    if (status === "down") this.metrics.outages++;
    if (!this.#closed) {
      this.server.health?.set(CLUSTER_HEALTH_SERVICE, status === "up" ? "SERVING" : "NOT_SERVING");
    }
    this.dispatchEvent(new CustomEvent("status", { detail: this.status }));
    if (status !== "up" || this.#closed) return;
    // Back after an outage: the engine may have lost everything.
    this.#membership.announce().catch(() => this.metrics.errors++);
    this.#topics.rejoin();
  }

  /**
   * Waits until this node's subscription to a topic's channel matches its
   * local membership, so that a member who just joined misses nothing
   * published from then on.
   *
   * @param topic Topic.
   * @returns Resolves once subscribed (or unsubscribed).
   */
  async ready(topic: string): Promise<void> {
    await this.#topics.ready(topic);
  }

  /**
   * Broadcasts to every session of the cluster, or to a topic's members.
   * The value is encoded once per codec here; other nodes queue the frames
   * as they are. Topic messages are logged with an offset and reach local
   * members through the backplane too, so every member sees one order.
   *
   * Broadcasts leave through a bounded pipeline, one lane for all and one
   * per topic: published at once when nothing is in flight on the lane,
   * otherwise gathered, when a slot frees, into one backplane message (to
   * all) or one `appendMany` (to a topic) of at most 256 messages or
   * 256 KiB; two batches in flight per lane, 64 over all topics.
   *
   * @param method The BROADCAST's method (the topic, for chat-style fan-out).
   * @param value Params.
   * @param options Topic, and a session id to leave out.
   * @returns The topic offset (0 for a broadcast to all, or while degraded).
   * @throws {StreamwireError} `resource_exhausted` when 8,192 broadcasts to
   *   all, or 8,192 to topics, already wait for the backplane.
   */
  async broadcast(
    method: string,
    value: unknown,
    options: { topic?: string; exclude?: string } = {},
  ): Promise<{ offset: number }> {
    const frames = new Map<string, Uint8Array>();
    for (const codec of this.#codecs) {
      let params: Uint8Array;
      try {
        params = getCodec(codec).encode(value);
      } catch {
        continue; // this codec cannot carry the value (raw, for a non-bytes value)
      }
      frames.set(codec, broadcastTemplate(method, params, options.topic !== undefined));
    }
    const m: NodeMessage = {
      kind: options.topic === undefined ? Kind.ALL : Kind.TOPIC,
      origin: this.nodeId,
      target: options.exclude ?? "",
      frames,
      reason: "",
    };
    if (this.backplane.status === "up") {
      const message = encodeNodeMessage(m); // not needed for local-only delivery
      try {
        if (options.topic === undefined) {
          await this.#all.publish("all", message);
          this.metrics.published++;
          deliver(this.#node, this.server.transport.sessions(), m, 0);
          return { offset: 0 };
        }
        const offset = await this.#topicsOut.publish(options.topic, message);
        this.metrics.published++;
        return { offset };
      } catch (error) {
        // A full publish queue is the caller's to handle, not a reason for local-only delivery.
        if (error instanceof StreamwireError && error.code === Status.RESOURCE_EXHAUSTED) {
          throw error;
        }
        this.metrics.errors++; // the backplane went away meanwhile: deliver here at least
      }
    }
    this.metrics.localOnly++;
    const targets = options.topic === undefined
      ? this.server.transport.sessions()
      : this.server.transport.members(options.topic);
    deliver(this.#node, targets, m, 0);
    return { offset: 0 };
  }

  #onAll(data: Uint8Array): void {
    if (data[0] === Kind.BATCH) {
      const batch = decodeBatch(data);
      if (batch.origin === this.nodeId) {
        this.metrics.received += batch.messages.length;
        return; // delivered here when published
      }
      for (const message of batch.messages) this.#onAll(message);
      return;
    }
    this.metrics.received++;
    const m = decodeNodeMessage(data);
    if (m.origin === this.nodeId) return; // delivered here when published
    deliver(this.#node, this.server.transport.sessions(), m, 0);
  }

  /**
   * Sends a NOTIFY to a session on any node.
   *
   * @param sessionId Session id.
   * @param method Method of the NOTIFY.
   * @param value Params, encoded in the session's codec.
   * @returns Whether the session was found (here, or in the directory).
   */
  unicast(sessionId: string, method: string, value: unknown): Promise<boolean> {
    return unicast(this.#node, sessionId, method, value);
  }

  /**
   * Disconnects a session on any node with ERROR `aborted`.
   *
   * @param sessionId Session id.
   * @param reason Sent to the peer.
   * @returns Whether the session was found.
   */
  kick(sessionId: string, reason = "Kicked by the server"): Promise<boolean> {
    return kick(this.#node, sessionId, reason);
  }

  /**
   * Live nodes.
   *
   * @returns Each node with what it announced (address, sessions, topics, draining).
   */
  async nodes(): Promise<(NodeEntry & { announced: Record<string, unknown> })[]> {
    return (await this.backplane.nodes()).map((n) => ({ ...n, announced: safeJson(n.info) }));
  }

  /**
   * Sessions of every live node.
   *
   * @returns Directory entries.
   */
  sessions(): Promise<SessionEntry[]> {
    return this.backplane.sessions();
  }

  /**
   * The cluster as this node sees it, for operators: its status, the live
   * nodes with their last heartbeat and draining flag, and its counters.
   * While the backplane is down, the nodes are those of the last heartbeat
   * (`stale`).
   *
   * @returns The view.
   */
  async view(): Promise<ClusterView> {
    let entries: readonly NodeEntry[] = this.#membership.lastNodes;
    let stale = true;
    if (this.backplane.status === "up") {
      try {
        entries = await this.backplane.nodes();
        stale = false;
      } catch {
        this.metrics.errors++;
      }
    }
    const nodes = entries.map((n): ClusterNodeView => {
      const a = safeJson(n.info);
      return {
        id: n.id,
        self: n.id === this.nodeId,
        address: typeof a.address === "string" ? a.address : undefined,
        sessions: typeof a.sessions === "number" ? a.sessions : undefined,
        draining: a.draining === true,
        lastHeartbeat: typeof a.beat === "number" ? a.beat : undefined,
      };
    });
    return {
      nodeId: this.nodeId,
      status: this.status,
      backplane: this.backplane.status,
      draining: this.#membership.draining,
      nodes,
      stale,
      metrics: { ...this.metrics },
    };
  }

  /**
   * Leaves the cluster without stopping the server: heartbeats stop, the
   * node and its sessions are removed from the backplane, which is closed.
   *
   * @returns Resolves once left.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#membership.stop();
    this.#unwatch();
    this.#offStatus();
    this.#unregister();
    this.server.health?.set(CLUSTER_HEALTH_SERVICE, "NOT_SERVING");
    await this.backplane.removeNode(this.nodeId).catch(() => {});
    await this.backplane.close();
  }

  /**
   * Graceful shutdown of the node: announces that it drains, shuts the
   * server down (GOAWAY, drain, close), then leaves the cluster.
   *
   * @param options Drain deadline in ms, passed to the server.
   * @returns Resolves once the server is down and the node left.
   */
  async shutdown(options: { deadlineMs?: number } = {}): Promise<void> {
    this.#membership.draining = true;
    await this.#membership.heartbeat().catch(() => {});
    await this.server.shutdown(options);
    await this.close();
  }
}
