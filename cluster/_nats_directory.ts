// The node list and session directory of the NATS backplane engine, on two
// JetStream streams that keep one message per subject:
//
// - `<p>_nodes` on `<p>.node.<node>`: each node's last heartbeat, its info as
//   the body and its lifetime in ms in the `Sw-Ttl` header. A node lives
//   until the server's timestamp of that message plus its lifetime.
// - `<p>_sessions` on `<p>.sess.<node>.<id>`: each session's entry. Purging
//   `<p>.sess.<node>.*` forgets a node's sessions in one request, and a
//   lookup by id is a direct get of the last message on `<p>.sess.*.<id>`.
//
// Expiry is judged on the server's clock: each heartbeat reads back the
// timestamp the server gave it and keeps the difference with this host's.

import { DiscardPolicy, headers, type JetStreamClient, type JetStreamManager } from "nats";
import type { PubAck, StorageType, StoredMsg } from "nats";
import type { NodeEntry, SessionEntry } from "./backplane.ts";
import {
  apiErrorCode,
  type Direct,
  directGet,
  errorCode,
  inBatches,
  STREAM_EXISTS,
  token,
  untoken,
} from "./_nats.ts";

/** Header of a heartbeat: its lifetime in ms. */
const TTL_HEADER = "Sw-Ttl";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface NodeState {
  id: string;
  info: string;
  seq: number;
  expires: number;
}

/** What the directory needs of the engine. */
export interface DirectoryOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  direct: Direct;
  /** Prefix token. */
  prefix: string;
  storage: StorageType;
  /** Entries the session stream keeps; the oldest are dropped past it. */
  maxSessions: number;
}

/** Nodes and sessions on JetStream; every method may reject with the client's errors. */
export class NatsDirectory {
  #o: DirectoryOptions;
  #nodes: string;
  #sessions: string;
  /** Server clock minus this host's, from the last heartbeat. */
  #skew = 0;

  constructor(options: DirectoryOptions) {
    this.#o = options;
    this.#nodes = `${options.prefix}_nodes`;
    this.#sessions = `${options.prefix}_sessions`;
  }

  /** The server's clock in ms, as last seen. */
  now(): number {
    return Date.now() + this.#skew;
  }

  /** Makes the node and session streams if they are missing. */
  async ensure(): Promise<void> {
    const p = this.#o.prefix;
    const common = {
      storage: this.#o.storage,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.Old,
      allow_direct: true,
    };
    const configs = [
      { ...common, name: this.#nodes, subjects: [`${p}.node.*`] },
      {
        ...common,
        name: this.#sessions,
        subjects: [`${p}.sess.*.*`],
        max_msgs: this.#o.maxSessions,
      },
    ];
    for (const config of configs) {
      try {
        await this.#o.jsm.streams.add(config);
      } catch (error) {
        if (apiErrorCode(error) !== STREAM_EXISTS) throw error; // other settings: keep them
      }
    }
  }

  /** A publish to a directory stream, made again if the server lost it. */
  async #store(subject: string, data: Uint8Array, ttlMs?: number): Promise<PubAck> {
    const h = headers();
    if (ttlMs !== undefined) h.set(TTL_HEADER, String(ttlMs));
    try {
      return await this.#o.js.publish(subject, data, { headers: h });
    } catch (error) {
      if (errorCode(error) !== "503") throw error; // 503: no stream listens
      await this.ensure();
      return await this.#o.js.publish(subject, data, { headers: h });
    }
  }

  async heartbeat(node: string, info: string, ttlMs: number): Promise<void> {
    const sent = Date.now();
    const subject = `${this.#o.prefix}.node.${token(node)}`;
    const ack = await this.#store(subject, encoder.encode(info), ttlMs);
    const acked = Date.now();
    const stored = await directGet(this.#o.direct, this.#nodes, { seq: ack.seq });
    if (stored !== undefined) this.#skew = stored.time.getTime() - (sent + acked) / 2;
  }

  /** Every node's last heartbeat, live or expired. */
  async #states(): Promise<NodeState[]> {
    const subjects = await this.#subjects(this.#nodes, `${this.#o.prefix}.node.*`);
    const got = await inBatches(
      subjects,
      (s) => directGet(this.#o.direct, this.#nodes, { last_by_subj: s }),
    );
    return got.filter((m) => m !== undefined).map((m) => ({
      id: untoken(m.subject.slice(m.subject.lastIndexOf(".") + 1)),
      info: decoder.decode(m.data),
      seq: m.seq,
      expires: expiry(m),
    }));
  }

  async #subjects(stream: string, filter: string): Promise<string[]> {
    try {
      const info = await this.#o.jsm.streams.info(stream, { subjects_filter: filter });
      return Object.keys(info.state.subjects ?? {});
    } catch (error) {
      if (errorCode(error) === "404") return [];
      throw error;
    }
  }

  async nodes(): Promise<NodeEntry[]> {
    const now = this.now();
    return (await this.#states()).filter((n) => n.expires > now)
      .map(({ id, info }) => ({ id, info }));
  }

  async #purge(stream: string, options: { filter: string; seq?: number }): Promise<number> {
    try {
      return (await this.#o.jsm.streams.purge(stream, options)).purged;
    } catch (error) {
      if (errorCode(error) === "404") return 0;
      throw error;
    }
  }

  async #forgetSessions(node: string): Promise<void> {
    await this.#purge(this.#sessions, { filter: `${this.#o.prefix}.sess.${token(node)}.*` });
  }

  async removeNode(node: string): Promise<void> {
    await this.#purge(this.#nodes, { filter: `${this.#o.prefix}.node.${token(node)}` });
    await this.#forgetSessions(node);
  }

  /**
   * Forgets expired nodes and their sessions. The purge stops at the expired
   * heartbeat's sequence, so a heartbeat stored after it is kept, and of
   * several nodes reaping at once only one reports each id.
   */
  async reap(): Promise<string[]> {
    const now = this.now();
    const gone: string[] = [];
    for (const n of await this.#states()) {
      if (n.expires > now) continue;
      const filter = `${this.#o.prefix}.node.${token(n.id)}`;
      if (await this.#purge(this.#nodes, { filter, seq: n.seq + 1 }) === 0) continue;
      await this.#forgetSessions(n.id);
      gone.push(n.id);
    }
    return gone;
  }

  async setSession(entry: SessionEntry): Promise<void> {
    const subject = `${this.#o.prefix}.sess.${token(entry.node)}.${token(entry.id)}`;
    await this.#store(subject, encoder.encode(entry.info));
  }

  /** Removes a session if it is recorded on `node`. */
  async deleteSession(node: string, id: string): Promise<void> {
    await this.#purge(this.#sessions, {
      filter: `${this.#o.prefix}.sess.${token(node)}.${token(id)}`,
    });
  }

  async session(id: string): Promise<SessionEntry | undefined> {
    const p = this.#o.prefix;
    const m = await directGet(this.#o.direct, this.#sessions, {
      last_by_subj: `${p}.sess.*.${token(id)}`,
    });
    if (m === undefined) return undefined;
    const entry = sessionEntry(m);
    const node = await directGet(this.#o.direct, this.#nodes, {
      last_by_subj: `${p}.node.${token(entry.node)}`,
    });
    return node !== undefined && expiry(node) > this.now() ? entry : undefined;
  }

  async sessions(node?: string): Promise<SessionEntry[]> {
    const now = this.now();
    const live = new Set((await this.#states()).filter((n) => n.expires > now).map((n) => n.id));
    const filter = `${this.#o.prefix}.sess.${node === undefined ? "*" : token(node)}.*`;
    const subjects = await this.#subjects(this.#sessions, filter);
    const got = await inBatches(
      subjects,
      (s) => directGet(this.#o.direct, this.#sessions, { last_by_subj: s }),
    );
    return got.filter((m) => m !== undefined).map(sessionEntry).filter((e) => live.has(e.node));
  }
}

/** When a heartbeat expires, on the server's clock. */
function expiry(m: StoredMsg): number {
  return m.time.getTime() + Number(m.header?.get(TTL_HEADER) ?? 0);
}

function sessionEntry(m: StoredMsg): SessionEntry {
  const [, , node, id] = m.subject.split(".");
  return { id: untoken(id), node: untoken(node), info: decoder.decode(m.data) };
}
