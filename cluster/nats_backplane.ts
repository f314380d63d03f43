/**
 * The NATS backplane engine, over npm `nats` and a NATS server with
 * JetStream enabled (`nats-server -js`, 2.9 or later): one connection for
 * everything.
 *
 * Subjects and streams (prefix `sw` by default; names are escaped into one
 * token, `[A-Za-z0-9_-]` kept and any other byte written `=HH`):
 *
 * | subject or stream            | kind    | holds                                        |
 * | ---------------------------- | ------- | -------------------------------------------- |
 * | `sw.ch.<channel>.0`          | subject | a {@linkcode NatsBackplane.publish}          |
 * | `sw.ch.<channel>.<base>`     | subject | a log entry, republished by its stream       |
 * | `sw_log_<log>` on `sw.log.<log>.<channel>` | stream | one topic log, `max_msgs` = retention |
 * | `sw_nodes` on `sw.node.<node>` | stream | each node's last heartbeat, header `Sw-Ttl`  |
 * | `sw_sessions` on `sw.sess.<node>.<id>` | stream | each session's entry             |
 *
 * A log is a JetStream stream whose `republish` rule sends every stored
 * entry to the channel named in its subject, with `Nats-Sequence` and
 * `Nats-Last-Sequence` headers: storing and publishing are one step on the
 * server, so subscribers see entries in sequence order. An entry's offset is
 * its stream sequence plus the stream's base, the server clock in
 * microseconds when the stream was made and part of the republish subject;
 * a stream lost with the server's data is made again with a later base, so
 * offsets keep increasing across the loss (as long as fewer than a million
 * entries a second were appended). Heartbeat expiry is judged on the
 * server's clock, as seen through the timestamps it gives stored messages.
 *
 * Calls fail at once while the server is away (nothing is queued: the
 * client's own buffer is never written to while disconnected); the
 * connection retries with capped exponential backoff and subscribes again.
 *
 * @module
 */

import {
  connect as natsConnect,
  type JetStreamClient,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
  StorageType,
  type Subscription,
} from "nats";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type {
  Backplane,
  BackplaneOptions,
  BackplaneStatus,
  ChannelHandler,
  LogRead,
  NodeEntry,
  SessionEntry,
} from "./backplane.ts";
import { checkAppendMany, DEFAULT_MAX_APPEND_MANY, DEFAULT_RETENTION } from "./backplane.ts";
import { Backoff, redactUrl } from "./_engine.ts";
import { type Direct, lostSignal, natsServers, token } from "./_nats.ts";
import { NatsDirectory } from "./_nats_directory.ts";
import { NatsLogs } from "./_nats_logs.ts";

/** Options of {@linkcode NatsBackplane.connect}. */
export interface NatsBackplaneOptions extends BackplaneOptions {
  /**
   * Reconnection delay after the n-th failed attempt: `min(base * 2^n, max)`
   * ms, with up to 20% jitter so that nodes do not reconnect in step.
   *
   * @default {{ baseMs: 50, maxMs: 2000 }}
   */
  backoff?: { baseMs?: number; maxMs?: number };
  /**
   * How long {@linkcode NatsBackplane.connect} waits for the server before it fails.
   *
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /**
   * How long a JetStream request (append, read, heartbeat, directory) waits
   * for its answer.
   *
   * @default {5000}
   */
  requestTimeoutMs?: number;
  /**
   * Bytes of publishes and appends sent but not yet confirmed by the server;
   * past it a call fails with `resource_exhausted`. Bounds the client's
   * outbound buffer when the server or the network is slower than the
   * publishers.
   *
   * @default {8388608}
   */
  maxPendingBytes?: number;
  /**
   * Where the server keeps logs and the directory: `"file"` survives a
   * server restart, `"memory"` does not.
   *
   * @default {"file"}
   */
  storage?: "file" | "memory";
  /**
   * Session directory entries the server keeps; past it the oldest are
   * dropped. Bounds the directory if nodes never remove their sessions.
   *
   * @default {1000000}
   */
  maxSessions?: number;
  /**
   * Interval of the client's pings; two unanswered pings mark the
   * connection lost when the server vanishes without closing it.
   *
   * @default {10000}
   */
  pingIntervalMs?: number;
}

/**
 * A backplane on a NATS server with JetStream.
 *
 * @example Connect, append, read
 * ```ts ignore
 * // ignore: needs nats-server -js on 127.0.0.1:4222.
 * import { NatsBackplane } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * const backplane = await NatsBackplane.connect("nats://127.0.0.1:4222");
 * const offset = await backplane.append("news", "topic:news", new Uint8Array([1]));
 * assert.equal((await backplane.read("news", 0, 10)).head, offset);
 * await backplane.close();
 * ```
 */
export class NatsBackplane implements Backplane {
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #direct: Direct;
  #dir: NatsDirectory;
  #logs: NatsLogs;
  #p: string;
  #storage: StorageType;
  #maxPending: number;
  #maxAppendMany: number;
  #pending = 0;
  #backoff: Backoff;
  #handlers = new Map<string, ChannelHandler>();
  #subs = new Map<string, Subscription>();
  #listeners = new Set<(status: BackplaneStatus) => void>();
  #status: BackplaneStatus = "down";
  #closed = false;
  #lost = lostSignal();
  #flushing: Promise<void> | undefined;
  /** Counts connection drops and reconnections. */
  #epoch = 0;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    backoff: Backoff,
    options: NatsBackplaneOptions,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#direct = (jsm as unknown as { direct: Direct }).direct;
    this.#js = nc.jetstream({ timeout: options.requestTimeoutMs ?? 5000 });
    this.#backoff = backoff;
    this.#p = token(options.prefix ?? "sw");
    this.#storage = options.storage === "memory" ? StorageType.Memory : StorageType.File;
    this.#dir = new NatsDirectory({
      js: this.#js,
      jsm,
      direct: this.#direct,
      prefix: this.#p,
      storage: this.#storage,
      maxSessions: options.maxSessions ?? 1_000_000,
    });
    this.#logs = new NatsLogs({
      js: this.#js,
      jsm,
      direct: this.#direct,
      prefix: this.#p,
      storage: this.#storage,
      retention: options.retention ?? DEFAULT_RETENTION,
      now: () => this.#dir.now(),
    });
    this.#maxPending = options.maxPendingBytes ?? 8 * 1024 * 1024;
    this.#maxAppendMany = options.maxAppendMany ?? DEFAULT_MAX_APPEND_MANY;
  }

  /**
   * Connects to a NATS server and fails clearly if it cannot be reached or
   * has no JetStream.
   *
   * @param url `nats://[user:password@]host:port`, or several joined by commas.
   * @param options Prefix, retention, backoff, timeouts, bounds and storage.
   * @returns A backplane that is up.
   * @throws {StreamwireError} `unavailable` naming the URL when the server
   *   does not answer within `connectTimeoutMs` or has JetStream disabled.
   */
  static async connect(url: string, options: NatsBackplaneOptions = {}): Promise<NatsBackplane> {
    const backoff = new Backoff(options.backoff?.baseMs ?? 50, options.backoff?.maxMs ?? 2000);
    let nc: NatsConnection | undefined;
    let backplane: NatsBackplane;
    try {
      nc = await natsConnect({
        ...natsServers(url),
        name: "streamwire",
        timeout: options.connectTimeoutMs ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        waitOnFirstConnect: false,
        reconnectDelayHandler: () => backoff.next(),
        pingInterval: options.pingIntervalMs ?? 10_000,
        maxPingOut: 2,
      });
      const jsm = await nc.jetstreamManager({ timeout: options.requestTimeoutMs ?? 5000 });
      backplane = new NatsBackplane(nc, jsm, backoff, options);
      await backplane.#dir.ensure();
    } catch (error) {
      await nc?.close().catch(() => {});
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Cannot reach NATS JetStream at '${redactUrl(url)}': ${(error as Error).message}`,
        { cause: error },
      );
    }
    backplane.#watch();
    backplane.#setStatus("up");
    return backplane;
  }

  /** Current status: up while connected and the directory streams exist. */
  get status(): BackplaneStatus {
    return this.#status;
  }

  /**
   * Calls `listener` on every status change.
   *
   * @param listener Receives the new status.
   * @returns A function that removes the listener.
   */
  onStatus(listener: (status: BackplaneStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #setStatus(status: BackplaneStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    if (status === "down") {
      this.#lost.reject(new StreamwireError(Status.UNAVAILABLE, "NATS connection lost"));
      this.#logs.forget(); // a server that comes back may have lost its streams
    } else {
      this.#lost = lostSignal();
    }
    for (const listener of this.#listeners) listener(status);
  }

  #watch(): void {
    (async () => {
      for await (const s of this.#nc.status()) {
        if (s.type === "disconnect" || s.type === "staleConnection") {
          this.#epoch++;
          this.#setStatus("down");
        } else if (s.type === "reconnect") this.#reconnected();
      }
    })().catch(() => {});
    this.#nc.closed().then(() => this.#setStatus("down"), () => this.#setStatus("down"));
  }

  /** Up again once the directory streams exist (a restarted server may have lost them). */
  async #reconnected(): Promise<void> {
    this.#backoff.reset();
    const epoch = ++this.#epoch; // a later drop or reconnection ends this loop
    while (epoch === this.#epoch && !this.#closed && !this.#nc.isClosed()) {
      try {
        await this.#dir.ensure();
        if (epoch === this.#epoch && !this.#closed) this.#setStatus("up");
        return;
      } catch {
        await new Promise((r) => setTimeout(r, this.#backoff.next()));
      }
    }
  }

  /** Runs `op` if up; rejects at once when down or when the connection is lost meanwhile. */
  #call<T>(op: () => Promise<T>): Promise<T> {
    if (this.#status !== "up") {
      return Promise.reject(
        new StreamwireError(
          Status.UNAVAILABLE,
          this.#closed ? "NATS backplane closed" : "NATS backplane is down",
        ),
      );
    }
    return Promise.race([op(), this.#lost.promise]);
  }

  /** Counts `bytes` as pending while `op` runs; refuses past `maxPendingBytes`. */
  async #bounded<T>(bytes: number, op: () => Promise<T>): Promise<T> {
    if (this.#pending + bytes > this.#maxPending) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Pending bytes '${this.#pending + bytes}' exceed maxPendingBytes '${this.#maxPending}'`,
      );
    }
    this.#pending += bytes;
    try {
      return await op();
    } finally {
      this.#pending -= bytes;
    }
  }

  /** One flush for every publish made in the same turn. */
  #flush(): Promise<void> {
    this.#flushing ??= Promise.resolve().then(() => {
      this.#flushing = undefined;
      return this.#nc.flush();
    });
    return this.#flushing;
  }

  /**
   * Publishes to a channel.
   *
   * @param channel Channel name.
   * @param data Bytes.
   * @returns Resolves once the server took it.
   */
  publish(channel: string, data: Uint8Array): Promise<void> {
    return this.#call(() =>
      this.#bounded(data.length, () => {
        this.#nc.publish(`${this.#p}.ch.${token(channel)}.0`, data);
        return this.#flush();
      })
    );
  }

  /**
   * Subscribes to a channel, plain messages and log entries alike.
   *
   * @param channel Channel name.
   * @param handler Receives each message.
   * @returns Resolves once the server confirmed the subscription.
   */
  subscribe(channel: string, handler: ChannelHandler): Promise<void> {
    return this.#call(() => {
      this.#handlers.set(channel, handler);
      if (!this.#subs.has(channel)) {
        const sub = this.#nc.subscribe(`${this.#p}.ch.${token(channel)}.*`, {
          callback: (error, msg) => {
            if (error === null) this.#deliver(channel, msg);
          },
        });
        this.#subs.set(channel, sub);
      }
      return this.#nc.flush();
    });
  }

  #deliver(channel: string, msg: Msg): void {
    const handler = this.#handlers.get(channel);
    if (handler === undefined) return;
    const base = Number(msg.subject.slice(msg.subject.lastIndexOf(".") + 1));
    // A copy: the client hands out views of its read buffer (Node Buffers, whose
    // slice() is a view too), and handlers keep and patch messages.
    const data = new Uint8Array(msg.data);
    let offset = 0, prev = 0;
    if (base > 0) {
      const seq = Number(msg.headers?.get("Nats-Sequence"));
      const last = Number(msg.headers?.get("Nats-Last-Sequence"));
      if (!(seq > 0)) return;
      offset = base + seq;
      prev = last > 0 ? base + last : 0;
    }
    try {
      handler(data, offset, prev);
    } catch {
      // A throw here would end the client's read loop and with it the connection.
    }
  }

  /**
   * Unsubscribes from a channel; the subscription is not restored on reconnect.
   *
   * @param channel Channel name.
   * @returns Resolves once the server confirmed it.
   */
  unsubscribe(channel: string): Promise<void> {
    this.#handlers.delete(channel);
    this.#subs.get(channel)?.unsubscribe();
    this.#subs.delete(channel);
    return this.#call(() => this.#nc.flush());
  }

  /**
   * Appends to a log (trimmed to the retention) whose stream republishes the
   * entry to the channel; the stream is made on first use.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes.
   * @returns The entry's offset.
   */
  async append(log: string, channel: string, data: Uint8Array): Promise<number> {
    return (await this.appendMany(log, channel, [data]))[0];
  }

  /** Entries one {@linkcode NatsBackplane.appendMany} takes. */
  get maxAppendMany(): number {
    return this.#maxAppendMany;
  }

  /**
   * Appends entries in order with pipelined JetStream publishes (one round
   * trip); the stream republishes each entry to the channel.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes of each entry.
   * @returns The entries' offsets.
   */
  appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]> {
    try {
      checkAppendMany(data.length, this.#maxAppendMany);
    } catch (error) {
      return Promise.reject(error);
    }
    const bytes = data.reduce((n, d) => n + d.length, 0);
    return this.#call(() => this.#bounded(bytes, () => this.#logs.appendMany(log, channel, data)));
  }

  /**
   * Reads a log after an offset with direct gets of its sequences.
   *
   * @param log Log name.
   * @param after Offset already seen.
   * @param limit Most entries.
   * @returns Entries, gap and head.
   */
  read(log: string, after: number, limit: number): Promise<LogRead> {
    return this.#call(() => this.#logs.read(log, after, limit));
  }

  /**
   * Announces a node until `ttlMs` from now on the server's clock.
   *
   * @param node Node id.
   * @param info What to announce.
   * @param ttlMs Lifetime.
   * @returns Resolves once stored.
   */
  heartbeat(node: string, info: string, ttlMs: number): Promise<void> {
    return this.#call(() => this.#dir.heartbeat(node, info, ttlMs));
  }

  /**
   * Lists live nodes.
   *
   * @returns The nodes.
   */
  nodes(): Promise<NodeEntry[]> {
    return this.#call(() => this.#dir.nodes());
  }

  /**
   * Forgets a node and its sessions.
   *
   * @param node Node id.
   * @returns Resolves once forgotten.
   */
  removeNode(node: string): Promise<void> {
    return this.#call(() => this.#dir.removeNode(node));
  }

  /**
   * Forgets expired nodes and their sessions; of several nodes reaping at
   * once, only one reports each id.
   *
   * @returns Ids forgotten.
   */
  reap(): Promise<string[]> {
    return this.#call(() => this.#dir.reap());
  }

  /**
   * Records a session.
   *
   * @param entry The entry.
   * @returns Resolves once stored.
   */
  setSession(entry: SessionEntry): Promise<void> {
    return this.#call(() => this.#dir.setSession(entry));
  }

  /**
   * Removes a session if it is recorded on `node`.
   *
   * @param node Its node.
   * @param id Session id.
   * @returns Resolves once removed.
   */
  deleteSession(node: string, id: string): Promise<void> {
    return this.#call(() => this.#dir.deleteSession(node, id));
  }

  /**
   * Looks a session up.
   *
   * @param id Session id.
   * @returns Its entry while its node lives.
   */
  session(id: string): Promise<SessionEntry | undefined> {
    return this.#call(() => this.#dir.session(id));
  }

  /**
   * Lists sessions of live nodes.
   *
   * @param node Only this node's.
   * @returns Entries.
   */
  sessions(node?: string): Promise<SessionEntry[]> {
    return this.#call(() => this.#dir.sessions(node));
  }

  /**
   * Closes the connection; later calls reject.
   *
   * @returns Resolves once closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
    this.#subs.clear();
    this.#setStatus("down");
    await this.#nc.close().catch(() => {});
  }
}
