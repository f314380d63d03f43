/**
 * The in-memory backplane engine: several servers in one process share a
 * {@linkcode MemoryHub}, each through its own {@linkcode MemoryBackplane}.
 * It keeps the guarantees of the Redis engine (delivery in a later
 * microtask, atomic append-and-publish, expiry by a clock), and the hub can
 * be stopped and started to play an engine restart that loses its data.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import {
  type Backplane,
  type BackplaneStatus,
  type ChannelHandler,
  checkAppendMany,
  DEFAULT_MAX_APPEND_MANY,
  DEFAULT_RETENTION,
  hasGap,
  type LogEntry,
  type LogRead,
  nextOffset,
  type NodeEntry,
  type SessionEntry,
} from "./backplane.ts";

/** Options of {@linkcode MemoryHub}. */
export interface MemoryHubOptions {
  /** Entries a topic log keeps. @default {10000} */
  retention?: number;
  /** Entries one `appendMany` takes. @default {1024} */
  maxAppendMany?: number;
  /** The clock of heartbeat expiry and offsets, in ms. @default {Date.now} */
  now?: () => number;
}

interface Log {
  entries: LogEntry[];
  head: number;
}

/**
 * The shared state of in-memory backplanes: channels, logs, nodes and the
 * session directory.
 *
 * @example Two backplanes on one hub
 * ```ts
 * import { MemoryHub } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * const hub = new MemoryHub();
 * const a = hub.connect(), b = hub.connect();
 * const got = Promise.withResolvers<Uint8Array>();
 * await b.subscribe("news", (data) => got.resolve(data));
 * await a.publish("news", new Uint8Array([1, 2]));
 * assert.deepEqual(await got.promise, new Uint8Array([1, 2]));
 * await a.close();
 * await b.close();
 * ```
 */
export class MemoryHub {
  /** Entries one `appendMany` takes. */
  readonly maxAppendMany: number;
  #retention: number;
  #now: () => number;
  #running = true;
  #members = new Set<MemoryBackplane>();
  #subs = new Map<string, Set<MemoryBackplane>>();
  #logs = new Map<string, Log>();
  #nodes = new Map<string, { info: string; expires: number }>();
  #sessions = new Map<string, SessionEntry>();

  /**
   * Creates a running hub.
   *
   * @param options Retention and clock.
   */
  constructor(options: MemoryHubOptions = {}) {
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.maxAppendMany = options.maxAppendMany ?? DEFAULT_MAX_APPEND_MANY;
    this.#now = options.now ?? Date.now;
  }

  /** Whether the hub runs (its backplanes are up). */
  get running(): boolean {
    return this.#running;
  }

  /**
   * A backplane on this hub, for one node.
   *
   * @returns A new backplane, up while the hub runs.
   */
  connect(): MemoryBackplane {
    const backplane = new MemoryBackplane(this);
    this.#members.add(backplane);
    return backplane;
  }

  /**
   * Stops the hub and drops its data, as an engine restart without
   * persistence does; every backplane goes down.
   */
  stop(): void {
    this.#running = false;
    this.#logs.clear();
    this.#nodes.clear();
    this.#sessions.clear();
    for (const member of this.#members) member._setStatus("down");
  }

  /** Starts the hub again; every backplane comes up, its subscriptions kept. */
  start(): void {
    this.#running = true;
    for (const member of this.#members) member._setStatus("up");
  }

  /** @internal */
  _check(backplane: MemoryBackplane): void {
    if (!this.#members.has(backplane)) {
      throw new StreamwireError(Status.UNAVAILABLE, "Backplane closed");
    }
    if (!this.#running) throw new StreamwireError(Status.UNAVAILABLE, "Memory hub is stopped");
  }

  /** @internal */
  _leave(backplane: MemoryBackplane): void {
    this.#members.delete(backplane);
    for (const [channel, set] of this.#subs) {
      set.delete(backplane);
      if (set.size === 0) this.#subs.delete(channel);
    }
  }

  /** @internal */
  _sub(backplane: MemoryBackplane, channel: string, on: boolean): void {
    let set = this.#subs.get(channel);
    if (on) {
      if (set === undefined) this.#subs.set(channel, set = new Set());
      set.add(backplane);
    } else if (set !== undefined) {
      set.delete(backplane);
      if (set.size === 0) this.#subs.delete(channel);
    }
  }

  /** @internal */
  _publish(channel: string, data: Uint8Array, offset: number, prev: number): void {
    const set = this.#subs.get(channel);
    if (set === undefined) return;
    // Each receiver gets its own copy, as over a network; delivery waits for
    // a microtask, and microtasks run in order, so publish order is kept.
    for (const member of set) {
      const copy = data.slice();
      queueMicrotask(() => member._deliver(channel, copy, offset, prev));
    }
  }

  /** @internal */
  _append(log: string, channel: string, data: Uint8Array): number {
    let entry = this.#logs.get(log);
    if (entry === undefined) this.#logs.set(log, entry = { entries: [], head: 0 });
    const prev = entry.head;
    const offset = nextOffset(prev, this.#now());
    entry.entries.push({ offset, prev, data: data.slice() });
    entry.head = offset;
    if (entry.entries.length > this.#retention) {
      entry.entries.splice(0, entry.entries.length - this.#retention);
    }
    this._publish(channel, data, offset, prev);
    return offset;
  }

  /** @internal */
  _appendMany(log: string, channel: string, data: readonly Uint8Array[]): number[] {
    checkAppendMany(data.length, this.maxAppendMany);
    return data.map((d) => this._append(log, channel, d));
  }

  /** @internal */
  _read(log: string, after: number, limit: number): LogRead {
    const entry = this.#logs.get(log);
    const head = entry?.head ?? 0;
    const all = entry?.entries ?? [];
    const entries = all.filter((e) => e.offset > after).slice(0, limit)
      .map((e) => ({ ...e, data: e.data.slice() }));
    return { entries, gap: hasGap(after, entries, head), head };
  }

  /** @internal */
  _heartbeat(node: string, info: string, ttlMs: number): void {
    this.#nodes.set(node, { info, expires: this.#now() + ttlMs });
  }

  /** @internal */
  _alive(node: string): boolean {
    const entry = this.#nodes.get(node);
    return entry !== undefined && entry.expires > this.#now();
  }

  /** @internal */
  _nodes(): NodeEntry[] {
    return [...this.#nodes].filter(([id]) => this._alive(id)).map(([id, { info }]) => ({
      id,
      info,
    }));
  }

  /** @internal */
  _removeNode(node: string): void {
    this.#nodes.delete(node);
    for (const [id, entry] of this.#sessions) if (entry.node === node) this.#sessions.delete(id);
  }

  /** @internal */
  _reap(): string[] {
    const gone = [...this.#nodes.keys()].filter((id) => !this._alive(id));
    for (const id of gone) this._removeNode(id);
    return gone;
  }

  /** @internal */
  _setSession(entry: SessionEntry): void {
    this.#sessions.set(entry.id, { ...entry });
  }

  /** @internal */
  _deleteSession(node: string, id: string): void {
    if (this.#sessions.get(id)?.node === node) this.#sessions.delete(id);
  }

  /** @internal */
  _session(id: string): SessionEntry | undefined {
    const entry = this.#sessions.get(id);
    return entry !== undefined && this._alive(entry.node) ? { ...entry } : undefined;
  }

  /** @internal */
  _sessionList(node?: string): SessionEntry[] {
    return [...this.#sessions.values()]
      .filter((e) => (node === undefined || e.node === node) && this._alive(e.node))
      .map((e) => ({ ...e }));
  }
}

/**
 * One node's view of a {@linkcode MemoryHub}.
 *
 * @example Append and read a log
 * ```ts
 * import { MemoryHub } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * const backplane = new MemoryHub().connect();
 * const first = await backplane.append("log:t", "topic:t", new Uint8Array([1]));
 * const read = await backplane.read("log:t", 0, 10);
 * assert.equal(read.head, first);
 * assert.deepEqual(read.entries.map((e) => e.data[0]), [1]);
 * await backplane.close();
 * ```
 */
export class MemoryBackplane implements Backplane {
  #hub: MemoryHub;
  #status: BackplaneStatus;
  #listeners = new Set<(status: BackplaneStatus) => void>();
  #handlers = new Map<string, ChannelHandler>();

  /**
   * Made by {@linkcode MemoryHub.connect}.
   *
   * @param hub The hub.
   */
  constructor(hub: MemoryHub) {
    this.#hub = hub;
    this.#status = hub.running ? "up" : "down";
  }

  /** Current status. */
  get status(): BackplaneStatus {
    return this.#status;
  }

  /** Entries one {@linkcode MemoryBackplane.appendMany} takes, the hub's. */
  get maxAppendMany(): number {
    return this.#hub.maxAppendMany;
  }

  /** @internal */
  _setStatus(status: BackplaneStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    for (const listener of this.#listeners) listener(status);
  }

  /** @internal */
  _deliver(channel: string, data: Uint8Array, offset: number, prev: number): void {
    if (this.#status === "down") return;
    try {
      this.#handlers.get(channel)?.(data, offset, prev);
    } catch {
      // The handler's own failure (ChannelHandler): later messages still reach it.
    }
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

  /**
   * Publishes to a channel.
   *
   * @param channel Channel name.
   * @param data Bytes.
   * @returns Resolves once published.
   */
  publish(channel: string, data: Uint8Array): Promise<void> {
    return this.#run(() => this.#hub._publish(channel, data, 0, 0));
  }

  /**
   * Subscribes to a channel. Subscriptions survive a hub stop and start.
   *
   * @param channel Channel name.
   * @param handler Receives each message.
   * @returns Resolves once subscribed.
   */
  subscribe(channel: string, handler: ChannelHandler): Promise<void> {
    return this.#run(() => {
      this.#handlers.set(channel, handler);
      this.#hub._sub(this, channel, true);
    });
  }

  /**
   * Unsubscribes from a channel.
   *
   * @param channel Channel name.
   * @returns Resolves once unsubscribed.
   */
  unsubscribe(channel: string): Promise<void> {
    this.#handlers.delete(channel);
    this.#hub._sub(this, channel, false);
    return Promise.resolve();
  }

  /**
   * Appends to a log and publishes the entry.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes.
   * @returns The entry's offset.
   */
  append(log: string, channel: string, data: Uint8Array): Promise<number> {
    return this.#run(() => this.#hub._append(log, channel, data));
  }

  /**
   * Appends entries in order and publishes each, in one step.
   *
   * @param log Log name.
   * @param channel Channel name.
   * @param data Bytes of each entry.
   * @returns The entries' offsets.
   */
  appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]> {
    return this.#run(() => this.#hub._appendMany(log, channel, data));
  }

  /**
   * Reads a log after an offset.
   *
   * @param log Log name.
   * @param after Offset already seen.
   * @param limit Most entries.
   * @returns Entries, gap and head.
   */
  read(log: string, after: number, limit: number): Promise<LogRead> {
    return this.#run(() => this.#hub._read(log, after, limit));
  }

  /**
   * Announces a node.
   *
   * @param node Node id.
   * @param info What to announce.
   * @param ttlMs Lifetime.
   * @returns Resolves once recorded.
   */
  heartbeat(node: string, info: string, ttlMs: number): Promise<void> {
    return this.#run(() => this.#hub._heartbeat(node, info, ttlMs));
  }

  /**
   * Lists live nodes.
   *
   * @returns The nodes.
   */
  nodes(): Promise<NodeEntry[]> {
    return this.#run(() => this.#hub._nodes());
  }

  /**
   * Forgets a node and its sessions.
   *
   * @param node Node id.
   * @returns Resolves once forgotten.
   */
  removeNode(node: string): Promise<void> {
    return this.#run(() => this.#hub._removeNode(node));
  }

  /**
   * Forgets expired nodes and their sessions.
   *
   * @returns Ids forgotten.
   */
  reap(): Promise<string[]> {
    return this.#run(() => this.#hub._reap());
  }

  /**
   * Records a session.
   *
   * @param entry The entry.
   * @returns Resolves once recorded.
   */
  setSession(entry: SessionEntry): Promise<void> {
    return this.#run(() => this.#hub._setSession(entry));
  }

  /**
   * Removes a session.
   *
   * @param node Its node.
   * @param id Session id.
   * @returns Resolves once removed.
   */
  deleteSession(node: string, id: string): Promise<void> {
    return this.#run(() => this.#hub._deleteSession(node, id));
  }

  /**
   * Looks a session up.
   *
   * @param id Session id.
   * @returns Its entry while its node lives.
   */
  session(id: string): Promise<SessionEntry | undefined> {
    return this.#run(() => this.#hub._session(id));
  }

  /**
   * Lists sessions of live nodes.
   *
   * @param node Only this node's.
   * @returns Entries.
   */
  sessions(node?: string): Promise<SessionEntry[]> {
    return this.#run(() => this.#hub._sessionList(node));
  }

  /**
   * Leaves the hub.
   *
   * @returns Resolves at once.
   */
  close(): Promise<void> {
    this.#handlers.clear();
    this.#hub._leave(this);
    this._setStatus("down");
    return Promise.resolve();
  }

  #run<T>(fn: () => T): Promise<T> {
    try {
      this.#hub._check(this);
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
