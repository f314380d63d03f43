/**
 * The backplane: the one small interface the cluster layer talks to, so that
 * an engine (Redis, in-memory) can be swapped without touching the cluster.
 *
 * It offers five things, each with its own guarantee:
 *
 * - **Channels**: `publish` bytes to a channel, `subscribe` and
 *   `unsubscribe` a handler; at most once, in publish order from one
 *   publisher.
 * - **Logs**: `append` bytes to a per-topic log and publish them, with their
 *   offset, to a channel, as one atomic step; `appendMany` does so for
 *   several entries in one round trip, in order; `read` from an offset. Offsets
 *   are increasing integers; each entry names the offset before it (`prev`)
 *   so a reader can tell a contiguous read from one with a gap (entries
 *   trimmed by the retention, or lost with the engine's data).
 * - **Nodes**: `heartbeat` announces a node with an expiry; `nodes` lists
 *   live ones; `reap` forgets expired ones and their sessions.
 * - **Session directory**: `setSession` and `session` map a session id to
 *   its node; an entry lives as long as its node does.
 * - **Status**: `up` or `down`, with a listener; while down every call
 *   rejects at once (nothing is queued), and the engine reconnects by itself.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";

/** Whether the engine is reachable. */
export type BackplaneStatus = "up" | "down";

/**
 * Receives a channel's messages. `offset` and `prev` are those of a log
 * entry for messages published by {@linkcode Backplane.append}, and 0 for
 * plain {@linkcode Backplane.publish}. What it throws is dropped: the
 * subscription and the connection go on.
 */
export type ChannelHandler = (data: Uint8Array, offset: number, prev: number) => void;

/** One entry of a topic log. */
export interface LogEntry {
  /** The entry's offset, an integer above 0, increasing within a log. */
  offset: number;
  /** The offset of the entry before it when it was appended; 0 for the first. */
  prev: number;
  /** The bytes appended. */
  data: Uint8Array;
}

/** What {@linkcode Backplane.read} returns. */
export interface LogRead {
  /** Entries after the requested offset, oldest first, at most `limit` of them. */
  entries: LogEntry[];
  /**
   * Whether entries between the requested offset and the first one returned
   * (or the head, when none is returned) are no longer in the log.
   */
  gap: boolean;
  /** The latest offset of the log, 0 if it is empty. */
  head: number;
}

/** A live node. */
export interface NodeEntry {
  /** Node id. */
  id: string;
  /** What the node announced in its last heartbeat (JSON text, by convention). */
  info: string;
}

/** A session directory entry. */
export interface SessionEntry {
  /** Session id. */
  id: string;
  /** Node the session is on. */
  node: string;
  /** What the node registered (JSON text, by convention). */
  info: string;
}

/** A backplane engine; see the module documentation for its guarantees. */
export interface Backplane {
  /** Current status. */
  readonly status: BackplaneStatus;
  /**
   * Calls `listener` on every status change.
   *
   * @param listener Receives the new status.
   * @returns A function that removes the listener.
   */
  onStatus(listener: (status: BackplaneStatus) => void): () => void;
  /**
   * Publishes bytes to a channel's subscribers on every node.
   *
   * @param channel Channel name.
   * @param data Bytes, delivered as they are.
   * @returns Resolves once the engine took the message.
   */
  publish(channel: string, data: Uint8Array): Promise<void>;
  /**
   * Subscribes to a channel; one handler per channel and backplane.
   *
   * @param channel Channel name.
   * @param handler Receives each message.
   * @returns Resolves once messages published afterwards are delivered.
   */
  subscribe(channel: string, handler: ChannelHandler): Promise<void>;
  /**
   * Unsubscribes from a channel.
   *
   * @param channel Channel name.
   * @returns Resolves once the engine stopped delivering it.
   */
  unsubscribe(channel: string): Promise<void>;
  /**
   * Appends bytes to a log and publishes them to a channel with their
   * offset, atomically: subscribers see entries of one log in offset order.
   *
   * @param log Log name (one per topic).
   * @param channel Channel the entry is published to.
   * @param data Bytes.
   * @returns The entry's offset.
   */
  append(log: string, channel: string, data: Uint8Array): Promise<number>;
  /**
   * Most entries one {@linkcode Backplane.appendMany} takes
   * ({@linkcode BackplaneOptions.maxAppendMany}).
   */
  readonly maxAppendMany: number;
  /**
   * Appends several entries to a log and publishes them, in one round trip
   * to the engine: offsets increase in array order, each entry's `prev` is
   * the offset before it in the log, and subscribers see them in offset
   * order, as if appended one by one. Entries of other publishers may fall
   * between them (NATS); on Redis and in memory they are contiguous. A
   * rejection may follow a partial append (at least once, as with
   * {@linkcode Backplane.append}).
   *
   * @param log Log name (one per topic).
   * @param channel Channel the entries are published to.
   * @param data Bytes of each entry, at most `maxAppendMany` of them.
   * @returns The entries' offsets, in order.
   * @throws {StreamwireError} `resource_exhausted` past `maxAppendMany`
   *   entries, before anything is appended.
   */
  appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]>;
  /**
   * Reads a log after an offset.
   *
   * @param log Log name.
   * @param after Offset already seen; 0 for none.
   * @param limit Most entries returned.
   * @returns Entries, whether some are missing, and the head.
   */
  read(log: string, after: number, limit: number): Promise<LogRead>;
  /**
   * Announces a node alive until `ttlMs` from now.
   *
   * @param node Node id.
   * @param info What to announce.
   * @param ttlMs Lifetime of the announcement.
   * @returns Resolves once recorded.
   */
  heartbeat(node: string, info: string, ttlMs: number): Promise<void>;
  /**
   * Lists the live nodes.
   *
   * @returns Nodes whose last heartbeat has not expired.
   */
  nodes(): Promise<NodeEntry[]>;
  /**
   * Forgets a node at once, with its sessions (a node leaving).
   *
   * @param node Node id.
   * @returns Resolves once forgotten.
   */
  removeNode(node: string): Promise<void>;
  /**
   * Forgets every node whose heartbeat expired, with its sessions.
   *
   * @returns The ids forgotten.
   */
  reap(): Promise<string[]>;
  /**
   * Records a session in the directory.
   *
   * @param entry Session id, its node and what to record.
   * @returns Resolves once recorded.
   */
  setSession(entry: SessionEntry): Promise<void>;
  /**
   * Removes a session from the directory.
   *
   * @param node The session's node.
   * @param id Session id.
   * @returns Resolves once removed.
   */
  deleteSession(node: string, id: string): Promise<void>;
  /**
   * Looks a session up.
   *
   * @param id Session id.
   * @returns Its entry, if it exists and its node is alive.
   */
  session(id: string): Promise<SessionEntry | undefined>;
  /**
   * Lists sessions of live nodes.
   *
   * @param node Only this node's.
   * @returns Directory entries.
   */
  sessions(node?: string): Promise<SessionEntry[]>;
  /**
   * Closes the engine's connections; later calls reject.
   *
   * @returns Resolves once closed.
   */
  close(): Promise<void>;
}

/** Options every engine takes. */
export interface BackplaneOptions {
  /**
   * Prefix of every key and channel, so several clusters can share one
   * engine.
   *
   * @default {"sw"}
   */
  prefix?: string;
  /**
   * Entries a topic log keeps; older ones are trimmed. Bounds the memory of a busy topic; a
   * client whose offset is older than the retention is told of a gap.
   *
   * @default {10000}
   */
  retention?: number;
  /**
   * Entries one {@linkcode Backplane.appendMany} takes; past it the call is
   * refused. Bounds the time one batch holds the engine (a Redis script
   * blocks every other client while it runs) and the memory of one call.
   *
   * @default {1024}
   */
  maxAppendMany?: number;
}

/** Default of {@linkcode BackplaneOptions.retention}. */
export const DEFAULT_RETENTION = 10_000;

/** Default of {@linkcode BackplaneOptions.maxAppendMany}. */
export const DEFAULT_MAX_APPEND_MANY = 1024;

/**
 * Checks the size of an {@linkcode Backplane.appendMany} against its bound.
 *
 * @param count Entries asked for.
 * @param max The engine's `maxAppendMany`.
 * @throws {StreamwireError} `resource_exhausted` when `count` exceeds `max`.
 *
 * @example Past the bound
 * ```ts
 * import { checkAppendMany } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * checkAppendMany(3, 4);
 * assert.throws(() => checkAppendMany(5, 4), /exceeds maxAppendMany '4'/);
 * ```
 */
export function checkAppendMany(count: number, max: number): void {
  if (count > max) {
    throw new StreamwireError(
      Status.RESOURCE_EXHAUSTED,
      `appendMany of '${count}' entries exceeds maxAppendMany '${max}'`,
    );
  }
}

/**
 * The next offset of a log: the clock in microseconds, or one past the
 * previous offset when the clock has not moved on. Clock-based offsets keep
 * increasing across a restart of an engine that lost its data, so an old
 * offset is never mistaken for a new one.
 *
 * @param last The log's latest offset, 0 if none.
 * @param nowMs Milliseconds since the epoch.
 * @returns The offset of the next entry.
 *
 * @example Offsets increase
 * ```ts
 * import { nextOffset } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nextOffset(0, 1000), 1_000_000);
 * assert.equal(nextOffset(1_000_000, 1000), 1_000_001);
 * ```
 */
export function nextOffset(last: number, nowMs: number): number {
  const clock = Math.floor(nowMs * 1000);
  return clock > last ? clock : last + 1;
}

/**
 * Whether a read after `after` misses entries: the first entry returned
 * does not follow `after`, or nothing is returned and the head is not `after`.
 *
 * @param after Offset the reader has.
 * @param entries Entries returned.
 * @param head Latest offset of the log.
 * @returns Whether entries are missing.
 */
export function hasGap(after: number, entries: readonly LogEntry[], head: number): boolean {
  if (after === 0) return false;
  return entries.length > 0 ? entries[0].prev !== after : head !== after;
}
