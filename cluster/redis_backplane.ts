/**
 * The Redis backplane engine, over npm `ioredis`: one connection for
 * commands and one for pub/sub.
 *
 * Key and channel layout (prefix `sw` by default):
 *
 * | key or channel           | type    | holds                                        |
 * | ------------------------ | ------- | -------------------------------------------- |
 * | `sw:ch:<channel>`        | channel | `"<offset> <prev> "` then the bytes          |
 * | `sw:log:<log>`           | stream  | entries `<offset>-0` with fields `p`, `d`    |
 * | `sw:head:<log>`          | string  | the log's latest offset                      |
 * | `sw:nodes`               | zset    | node id, scored by its expiry (Redis clock)  |
 * | `sw:nodeinfo`            | hash    | node id to its last announcement             |
 * | `sw:sessions`            | hash    | session id to `<node>\n<info>`               |
 * | `sw:nodesessions:<node>` | set     | a node's session ids, to forget them with it |
 *
 * Appending, reading, heartbeats and reaping are Lua scripts
 * (`_redis_scripts.ts`), so each is atomic and every expiry uses one clock,
 * the Redis server's. Commands fail
 * at once while Redis is away (no offline queue, so nothing piles up in
 * memory); the connections retry with capped exponential backoff and the
 * pub/sub connection subscribes again to its channels.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Redis, type RedisOptions } from "ioredis";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import {
  type Backplane,
  type BackplaneOptions,
  type BackplaneStatus,
  type ChannelHandler,
  checkAppendMany,
  DEFAULT_MAX_APPEND_MANY,
  DEFAULT_RETENTION,
  hasGap,
  type LogEntry,
  type LogRead,
  type NodeEntry,
  type SessionEntry,
} from "./backplane.ts";
import { backoffMs, redactUrl } from "./_engine.ts";
import { deliver, SCRIPTS } from "./_redis_scripts.ts";

/** Options of {@linkcode RedisBackplane.connect}. */
export interface RedisBackplaneOptions extends BackplaneOptions {
  /**
   * Reconnection delay after the n-th failed attempt: `min(base * 2^n, max)`
   * ms, with up to 20% jitter so that nodes do not reconnect in step.
   *
   * @default {{ baseMs: 50, maxMs: 2000 }}
   */
  backoff?: { baseMs?: number; maxMs?: number };
  /**
   * How long {@linkcode RedisBackplane.connect} waits for Redis before it fails.
   *
   * @default {5000}
   */
  connectTimeoutMs?: number;
}

const decoder = new TextDecoder();

/**
 * A backplane on one Redis server (version 6.2 or later).
 *
 * @example Connect, append, read
 * ```ts ignore
 * // ignore: needs a Redis server on 127.0.0.1:6379.
 * import { RedisBackplane } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * const backplane = await RedisBackplane.connect("redis://127.0.0.1:6379");
 * const offset = await backplane.append("news", "topic:news", new Uint8Array([1]));
 * assert.equal((await backplane.read("news", 0, 10)).head, offset);
 * await backplane.close();
 * ```
 */
export class RedisBackplane implements Backplane {
  #cmd: Redis;
  #sub: Redis;
  #prefix: string;
  #retention: number;
  #maxAppendMany: number;
  #handlers = new Map<string, ChannelHandler>();
  #listeners = new Set<(status: BackplaneStatus) => void>();
  #status: BackplaneStatus = "down";
  #closed = false;

  private constructor(cmd: Redis, sub: Redis, options: RedisBackplaneOptions) {
    this.#cmd = cmd;
    this.#sub = sub;
    this.#prefix = options.prefix ?? "sw";
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.#maxAppendMany = options.maxAppendMany ?? DEFAULT_MAX_APPEND_MANY;
    const chPrefix = `${this.#prefix}:ch:`;
    sub.on("messageBuffer", (channel: Uint8Array, message: Uint8Array) => {
      const handler = this.#handlers.get(decoder.decode(channel).slice(chPrefix.length));
      if (handler !== undefined) deliver(message, handler);
    });
    const update = () => this.#update();
    for (const client of [cmd, sub]) {
      client.on("ready", update);
      client.on("close", update);
      client.on("end", update);
      // Errors are reported through the status; without a listener ioredis logs each one.
      client.on("error", () => {});
    }
  }

  /**
   * Connects to Redis and fails clearly if it cannot be reached.
   *
   * @param url `redis://[user:password@]host:port[/db]`.
   * @param options Prefix, retention, backoff and connect timeout.
   * @returns A backplane that is up.
   * @throws {StreamwireError} `unavailable` naming the URL when Redis does
   *   not answer within `connectTimeoutMs`.
   */
  static async connect(
    url: string,
    options: RedisBackplaneOptions = {},
  ): Promise<RedisBackplane> {
    const base = options.backoff?.baseMs ?? 50;
    const max = options.backoff?.maxMs ?? 2000;
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      retryStrategy: (times: number) => backoffMs(times, base, max),
    };
    const cmd = new Redis(url, redisOptions);
    const sub = new Redis(url, redisOptions);
    const backplane = new RedisBackplane(cmd, sub, options);
    try {
      await Promise.all([cmd.connect(), sub.connect()]);
    } catch (error) {
      cmd.disconnect();
      sub.disconnect();
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Cannot reach Redis at '${redactUrl(url)}': ${(error as Error).message}`,
        { cause: error },
      );
    }
    backplane.#update();
    return backplane;
  }

  /** Current status: up while both connections are ready. */
  get status(): BackplaneStatus {
    return this.#status;
  }

  #update(): void {
    const status = !this.#closed && this.#cmd.status === "ready" && this.#sub.status === "ready"
      ? "up"
      : "down";
    if (status === this.#status) return;
    this.#status = status;
    for (const listener of this.#listeners) listener(status);
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

  #key(kind: string, name = ""): string {
    return `${this.#prefix}:${kind}${name === "" ? "" : `:${name}`}`;
  }

  /**
   * Publishes to a channel.
   *
   * @param channel Channel name.
   * @param data Bytes.
   * @returns Resolves once Redis took it.
   */
  async publish(channel: string, data: Uint8Array): Promise<void> {
    const message = Buffer.allocUnsafe(4 + data.length);
    message.set([48, 32, 48, 32]); // "0 0 ": no offset, no previous one
    message.set(data, 4);
    await this.#cmd.publish(this.#key("ch", channel), message);
  }

  /**
   * Subscribes to a channel.
   *
   * @param channel Channel name.
   * @param handler Receives each message.
   * @returns Resolves once Redis confirmed the subscription.
   */
  async subscribe(channel: string, handler: ChannelHandler): Promise<void> {
    this.#handlers.set(channel, handler);
    await this.#sub.subscribe(this.#key("ch", channel));
  }

  /**
   * Unsubscribes from a channel.
   *
   * @param channel Channel name.
   * @returns Resolves once Redis confirmed it.
   */
  async unsubscribe(channel: string): Promise<void> {
    this.#handlers.delete(channel);
    await this.#sub.unsubscribe(this.#key("ch", channel));
  }

  /** Entries one {@linkcode RedisBackplane.appendMany} takes. */
  get maxAppendMany(): number {
    return this.#maxAppendMany;
  }

  /**
   * Appends to a log (trimmed to the retention) and publishes the entry.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes.
   * @returns The entry's offset.
   */
  async append(log: string, channel: string, data: Uint8Array): Promise<number> {
    return (await this.appendMany(log, channel, [data]))[0];
  }

  /**
   * Appends entries in order with one script call, trims the log once and
   * publishes them as one channel message.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes of each entry.
   * @returns The entries' offsets.
   */
  async appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]> {
    checkAppendMany(data.length, this.#maxAppendMany);
    if (data.length === 0) return [];
    const first = Number(
      await SCRIPTS.append.run(this.#cmd, [
        this.#key("log", log),
        this.#key("head", log),
        this.#key("ch", channel),
        this.#retention,
        ...data.map(asBuffer),
      ]),
    );
    return data.map((_, i) => first + i);
  }

  /**
   * Reads a log after an offset.
   *
   * @param log Log name.
   * @param after Offset already seen.
   * @param limit Most entries.
   * @returns Entries, gap and head.
   */
  async read(log: string, after: number, limit: number): Promise<LogRead> {
    const [head, raw] = await SCRIPTS.read.run(this.#cmd, [
      this.#key("log", log),
      this.#key("head", log),
      String(after),
      limit,
    ], true) as [Uint8Array, [Uint8Array, Uint8Array[]][]];
    const entries: LogEntry[] = raw.map(([id, fields]) => {
      const entry: LogEntry = {
        offset: Number(decoder.decode(id).split("-")[0]),
        prev: 0,
        data: new Uint8Array(0),
      };
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = decoder.decode(fields[i]);
        if (name === "p") entry.prev = Number(decoder.decode(fields[i + 1]));
        else if (name === "d") entry.data = new Uint8Array(fields[i + 1]);
      }
      return entry;
    });
    const last = Number(decoder.decode(head));
    return { entries, gap: hasGap(after, entries, last), head: last };
  }

  /**
   * Announces a node until `ttlMs` from now on the Redis clock.
   *
   * @param node Node id.
   * @param info What to announce.
   * @param ttlMs Lifetime.
   * @returns Resolves once recorded.
   */
  async heartbeat(node: string, info: string, ttlMs: number): Promise<void> {
    await SCRIPTS.heartbeat.run(this.#cmd, [
      this.#key("nodes"),
      this.#key("nodeinfo"),
      node,
      info,
      ttlMs,
    ]);
  }

  /**
   * Lists live nodes.
   *
   * @returns The nodes.
   */
  async nodes(): Promise<NodeEntry[]> {
    const flat = await SCRIPTS.nodes.run(this.#cmd, [
      this.#key("nodes"),
      this.#key("nodeinfo"),
    ]) as string[];
    const out: NodeEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i], info: flat[i + 1] });
    return out;
  }

  async #forget(node: string): Promise<string[]> {
    return await SCRIPTS.forget.run(this.#cmd, [
      this.#key("nodes"),
      this.#key("nodeinfo"),
      this.#key("sessions"),
      this.#key("nodesessions") + ":",
      node,
    ]) as string[];
  }

  /**
   * Forgets a node and its sessions.
   *
   * @param node Node id.
   * @returns Resolves once forgotten.
   */
  async removeNode(node: string): Promise<void> {
    await this.#forget(node);
  }

  /**
   * Forgets expired nodes and their sessions.
   *
   * @returns Ids forgotten.
   */
  reap(): Promise<string[]> {
    return this.#forget("");
  }

  /**
   * Records a session.
   *
   * @param entry The entry.
   * @returns Resolves once recorded.
   */
  async setSession(entry: SessionEntry): Promise<void> {
    await this.#cmd.multi()
      .hset(this.#key("sessions"), entry.id, `${entry.node}\n${entry.info}`)
      .sadd(this.#key("nodesessions", entry.node), entry.id)
      .exec();
  }

  /**
   * Removes a session.
   *
   * @param node Its node.
   * @param id Session id.
   * @returns Resolves once removed.
   */
  async deleteSession(node: string, id: string): Promise<void> {
    await SCRIPTS.deleteSession.run(this.#cmd, [
      this.#key("sessions"),
      this.#key("nodesessions", node),
      id,
      node,
    ]);
  }

  /**
   * Looks a session up.
   *
   * @param id Session id.
   * @returns Its entry while its node lives.
   */
  async session(id: string): Promise<SessionEntry | undefined> {
    const value = await this.#cmd.hget(this.#key("sessions"), id);
    if (value === null) return undefined;
    const entry = parseSession(id, value);
    const alive = (await this.nodes()).some((n) => n.id === entry.node);
    return alive ? entry : undefined;
  }

  /**
   * Lists sessions of live nodes.
   *
   * @param node Only this node's.
   * @returns Entries.
   */
  async sessions(node?: string): Promise<SessionEntry[]> {
    const live = new Set((await this.nodes()).map((n) => n.id));
    const all = await this.#cmd.hgetall(this.#key("sessions"));
    return Object.entries(all).map(([id, value]) => parseSession(id, value))
      .filter((e) => live.has(e.node) && (node === undefined || e.node === node));
  }

  /**
   * Closes both connections.
   *
   * @returns Resolves once closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
    await Promise.allSettled([this.#cmd.quit(), this.#sub.quit()]);
    this.#cmd.disconnect();
    this.#sub.disconnect();
    this.#update();
  }
}

/** ioredis sends a Buffer as bytes but any other Uint8Array as its string form. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function parseSession(id: string, value: string): SessionEntry {
  const nl = value.indexOf("\n");
  return { id, node: value.slice(0, nl), info: value.slice(nl + 1) };
}
