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

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { encodeMessage } from "../codec/message.ts";
import { type CodecName, getCodec } from "../codec/payload_codec.ts";
import type { RpcServer } from "../rpc/server.ts";
import { SessionState } from "../transport/session.ts";
import type { Session } from "../transport/session.ts";
import type { Backplane, NodeEntry, SessionEntry } from "./backplane.ts";
import { fanOut, followParams, safeJson } from "./_fanout.ts";
import {
  broadcastTemplate,
  decodeNodeMessage,
  encodeNodeMessage,
  forAlgorithm,
  Kind,
  type NodeMessage,
  replayMessage,
} from "./_wire.ts";

type Timer = ReturnType<typeof setInterval>;

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

const CODECS: readonly CodecName[] = ["msgpack", "cbor", "json", "raw"];
const LOG_PAGE = 500;
const MAX_TOPICS_ANNOUNCED = 100;

interface TopicState {
  /** Latest offset delivered here; 0 before the first. */
  last: number;
  /** Messages waiting behind a catch-up, in arrival order. */
  held?: [offset: number, data: Uint8Array][];
}

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
  };
  #options: ClusterOptions;
  #ttl: number;
  #codecs: readonly CodecName[];
  #maxReplay: number;
  #timer: Timer | undefined;
  #unwatch: () => void;
  #offStatus: () => void;
  #topics = new Map<string, TopicState>();
  /** Per topic, the subscribe/unsubscribe work in order. */
  #ops = new Map<string, Promise<void>>();
  #subscribed = new Set<string>();
  /** Sessions resuming a topic: frames for them wait here until their replay is queued. */
  #resuming = new Map<Session, Map<string, [number, Uint8Array][]>>();
  #draining = false;
  #closed = false;
  /** Node ids seen alive at the last heartbeat. */
  #known = new Set<string>();

  private constructor(server: RpcServer, options: ClusterOptions) {
    super();
    this.server = server;
    this.backplane = options.backplane;
    this.#options = options;
    this.nodeId = options.nodeId ?? `node-${crypto.randomUUID().slice(0, 8)}`;
    const heartbeat = options.heartbeatMs ?? 1000;
    this.#ttl = options.nodeTtlMs ?? 3 * heartbeat;
    this.#codecs = options.codecs ?? CODECS;
    this.#maxReplay = options.maxReplay ?? 10_000;
    this.#unwatch = server.transport.watch({
      topic: (topic) => this.#reconcile(topic),
      session: (session, open) => this.#directory(session, open),
    });
    this.#offStatus = this.backplane.onStatus((s) => this.#statusChanged(s));
    server.methods
      .unary("cluster.follow", (p, ctx) => this.#follow(ctx.session, followParams(p)))
      .unary(
        "cluster.unfollow",
        (p, ctx) => server.transport.leave(ctx.session, followParams(p).topic),
      );
    this.#timer = setInterval(() => this.#beat(), heartbeat);
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
    await this.backplane.subscribe(`node:${this.nodeId}`, (data) => this.#onNode(data));
    await this.#announce();
    for (const { topic } of this.server.transport.topics()) this.#reconcile(topic);
    await Promise.all(this.#ops.values());
  }

  /** Heartbeat, directory entries of every local session, and reaping. */
  async #announce(): Promise<void> {
    await this.backplane.heartbeat(this.nodeId, this.#info(), this.#ttl);
    const writes: Promise<void>[] = [];
    for (const s of this.server.transport.sessions()) {
      if (s.settings !== undefined && s.state !== SessionState.CLOSED) {
        writes.push(this.backplane.setSession(this.#entry(s)));
      }
    }
    await Promise.all(writes);
  }

  #info(): string {
    const t = this.server.transport;
    return JSON.stringify({
      address: this.#options.address,
      sessions: t.sessionCount,
      topics: t.topics().slice(0, MAX_TOPICS_ANNOUNCED),
      draining: this.#draining,
    });
  }

  #entry(session: Session): SessionEntry {
    const info = { codec: session.codec, compression: session.settings?.compression[0] };
    return { id: session.id, node: this.nodeId, info: JSON.stringify(info) };
  }

  #beat(): void {
    if (this.backplane.status !== "up") return;
    // Whichever node reaps an expired node, every node sees it leave the list.
    this.backplane.heartbeat(this.nodeId, this.#info(), this.#ttl)
      .then(() => this.backplane.reap())
      .then(() => this.backplane.nodes())
      .then((nodes) => {
        const now = new Set(nodes.map((n) => n.id));
        for (const id of this.#known) {
          if (!now.has(id)) this.dispatchEvent(new CustomEvent("nodegone", { detail: id }));
        }
        for (const id of now) {
          if (!this.#known.has(id)) {
            this.dispatchEvent(new CustomEvent("nodejoined", { detail: id }));
          }
        }
        this.#known = now;
      })
      .catch(() => this.metrics.errors++);
  }

  #statusChanged(status: "up" | "down"): void {
    this.dispatchEvent(new CustomEvent("status", { detail: this.status }));
    if (status !== "up" || this.#closed) return;
    // Back after an outage: the engine may have lost everything.
    this.#announce().catch(() => this.metrics.errors++);
    for (const topic of this.#topics.keys()) {
      this.#subscribed.delete(topic);
      this.#reconcile(topic);
    }
    for (const [topic, state] of this.#topics) if (state.last > 0) this.#catchUp(topic, state);
  }

  #directory(session: Session, open: boolean): void {
    if (this.backplane.status !== "up") return; // re-registered when it is back
    const write = open
      ? this.backplane.setSession(this.#entry(session))
      : this.backplane.deleteSession(this.nodeId, session.id);
    write.catch(() => this.metrics.errors++);
  }

  /** Subscribes to a topic's channel while it has local members, in order per topic. */
  #reconcile(topic: string): void {
    const prev = this.#ops.get(topic) ?? Promise.resolve();
    const next = prev.then(async () => {
      const want = !this.#closed && this.server.transport.members(topic).size > 0;
      if (want && !this.#subscribed.has(topic)) {
        if (!this.#topics.has(topic)) this.#topics.set(topic, { last: 0 });
        await this.backplane.subscribe(
          `topic:${topic}`,
          (data, offset, prev) => this.#onTopic(topic, data, offset, prev),
        );
        this.#subscribed.add(topic);
      } else if (!want && this.#subscribed.has(topic)) {
        this.#subscribed.delete(topic);
        this.#topics.delete(topic);
        await this.backplane.unsubscribe(`topic:${topic}`);
      }
    }).catch(() => {
      this.metrics.errors++;
    });
    this.#ops.set(topic, next);
    next.then(() => {
      if (this.#ops.get(topic) === next) this.#ops.delete(topic);
    });
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
    await this.#ops.get(topic);
  }

  /**
   * Broadcasts to every session of the cluster, or to a topic's members.
   * The value is encoded once per codec here; other nodes queue the frames
   * as they are. Topic messages are logged with an offset and reach local
   * members through the backplane too, so every member sees one order.
   *
   * @param method The BROADCAST's method (the topic, for chat-style fan-out).
   * @param value Params.
   * @param options Topic, and a session id to leave out.
   * @returns The topic offset (0 for a broadcast to all, or while degraded).
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
      frames.set(codec, broadcastTemplate(method, params));
    }
    const kind = options.topic === undefined ? Kind.ALL : Kind.TOPIC;
    const message = encodeNodeMessage({
      kind,
      origin: this.nodeId,
      target: options.exclude ?? "",
      frames,
      reason: "",
    });
    if (this.backplane.status === "up") {
      try {
        if (options.topic === undefined) {
          await this.backplane.publish("all", message);
          this.metrics.published++;
          this.#fanOut(this.server.transport.sessions(), decodeNodeMessage(message), 0);
          return { offset: 0 };
        }
        const offset = await this.backplane.append(
          options.topic,
          `topic:${options.topic}`,
          message,
        );
        this.metrics.published++;
        return { offset };
      } catch {
        this.metrics.errors++; // the backplane went away meanwhile: deliver here at least
      }
    }
    this.metrics.localOnly++;
    const targets = options.topic === undefined
      ? this.server.transport.sessions()
      : this.server.transport.members(options.topic);
    this.#fanOut(targets, decodeNodeMessage(message), 0);
    return { offset: 0 };
  }

  #onAll(data: Uint8Array): void {
    this.metrics.received++;
    const m = decodeNodeMessage(data);
    if (m.origin === this.nodeId) return; // delivered here when published
    this.#fanOut(this.server.transport.sessions(), m, 0);
  }

  #onTopic(topic: string, data: Uint8Array, offset: number, prev: number): void {
    this.metrics.received++;
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
    const members = this.server.transport.members(topic);
    const live: Session[] = [];
    for (const session of members) {
      const held = this.#resuming.get(session)?.get(topic);
      if (held === undefined) live.push(session);
      else if (held.length < this.#maxReplay) held.push([offset, data]);
      else session.close(new StreamwireError(Status.RESOURCE_EXHAUSTED, "Resume fell behind"));
    }
    this.#fanOut(live, m, offset);
  }

  #catchUp(topic: string, state: TopicState): void {
    this.metrics.catchups++;
    state.held ??= [];
    const run = async () => {
      for (;;) {
        const read = await this.backplane.read(topic, state.last, LOG_PAGE);
        for (const e of read.entries) this.#deliverTopic(topic, state, e.offset, e.data);
        if (read.entries.length < LOG_PAGE) break;
      }
    };
    run().catch(() => this.metrics.errors++).finally(() => {
      const held = state.held ?? [];
      state.held = undefined;
      for (const [offset, data] of held) {
        if (offset > state.last) this.#deliverTopic(topic, state, offset, data);
      }
    });
  }

  #fanOut(targets: Iterable<Session>, m: NodeMessage, offset: number): void {
    this.metrics.delivered += fanOut(targets, m, offset, (session) => {
      this.server.transport.metrics.slowConsumers++;
      session.close(new StreamwireError(Status.RESOURCE_EXHAUSTED, "Slow consumer"));
    });
  }

  /**
   * Sends a NOTIFY to a session on any node.
   *
   * @param sessionId Session id.
   * @param method Method of the NOTIFY.
   * @param value Params, encoded in the session's codec.
   * @returns Whether the session was found (here, or in the directory).
   */
  async unicast(sessionId: string, method: string, value: unknown): Promise<boolean> {
    const local = this.server.transport.session(sessionId);
    if (local !== undefined) {
      const params = getCodec(local.codec).encode(value);
      return this.server.transport.unicast(sessionId, {
        type: FrameType.NOTIFY,
        seq: 0,
        method,
        params,
      });
    }
    const entry = await this.backplane.session(sessionId);
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
    await this.#toNode(entry.node, Kind.UNICAST, sessionId, new Map([["", frame]]), "");
    return true;
  }

  /**
   * Disconnects a session on any node with ERROR `aborted`.
   *
   * @param sessionId Session id.
   * @param reason Sent to the peer.
   * @returns Whether the session was found.
   */
  async kick(sessionId: string, reason = "Kicked by the server"): Promise<boolean> {
    if (this.server.transport.kick(sessionId, reason)) return true;
    const entry = await this.backplane.session(sessionId);
    if (entry === undefined) return false;
    await this.#toNode(entry.node, Kind.KICK, sessionId, new Map(), reason);
    return true;
  }

  #toNode(
    node: string,
    kind: number,
    target: string,
    frames: Map<string, Uint8Array>,
    reason: string,
  ): Promise<void> {
    const data = encodeNodeMessage({ kind, origin: this.nodeId, target, frames, reason });
    return this.backplane.publish(`node:${node}`, data);
  }

  #onNode(data: Uint8Array): void {
    this.metrics.received++;
    const m = decodeNodeMessage(data);
    const session = this.server.transport.session(m.target);
    if (session === undefined) return;
    if (m.kind === Kind.KICK) this.server.transport.kick(m.target, m.reason);
    else if (m.kind === Kind.UNICAST) {
      const frame = m.frames.get("");
      if (frame === undefined) return;
      if (session.sendEncoded(forAlgorithm(frame, session.settings?.compression[0]))) {
        this.metrics.delivered++;
      }
    }
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

  /** Joins a session to a topic and replays what it missed after `after`. */
  async #follow(session: Session, p: { topic: string; after: number }): Promise<FollowResult> {
    const t = this.server.transport;
    const pending: [number, Uint8Array][] = [];
    let map = this.#resuming.get(session);
    if (map === undefined) this.#resuming.set(session, map = new Map());
    map.set(p.topic, pending);
    let recovered = 0, gap = false, head = this.#topics.get(p.topic)?.last ?? 0;
    try {
      t.join(session, p.topic);
      await this.#ops.get(p.topic); // subscribed before reading, so nothing falls between
      if (this.backplane.status !== "up") return { head, recovered, gap: p.after > 0 };
      let after = p.after;
      let first = true;
      for (;;) {
        const read = await this.backplane.read(p.topic, after, LOG_PAGE);
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
      this.metrics.replayed += recovered;
      if (gap) this.metrics.gaps++;
      // Frames that arrived meanwhile, past what the replay covered, in order.
      map.delete(p.topic);
      const rest = pending.filter(([offset]) => offset > after);
      for (const [offset, data] of rest) {
        this.#fanOut([session], decodeNodeMessage(data), offset);
        head = Math.max(head, offset);
      }
      return { head, recovered, gap };
    } finally {
      map.delete(p.topic);
      if (map.size === 0) this.#resuming.delete(session);
    }
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
    clearInterval(this.#timer);
    this.#unwatch();
    this.#offStatus();
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
    this.#draining = true;
    await this.backplane.heartbeat(this.nodeId, this.#info(), this.#ttl).catch(() => {});
    await this.server.shutdown(options);
    await this.close();
  }
}
