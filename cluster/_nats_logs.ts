// Topic logs of the NATS backplane engine: one JetStream stream per log,
// `<p>_log_<log>` on `<p>.log.<log>.*` (the last token names the channel),
// keeping `retention` messages. Its republish rule sends each stored entry
// to `<p>.ch.<channel>.<base>` with `Nats-Sequence` and `Nats-Last-Sequence`
// headers, in sequence order; an entry's offset is `base + sequence`, where
// `base` is the server clock in microseconds when the stream was made.

import { createHash } from "node:crypto";
import { DiscardPolicy, type JetStreamClient, type JetStreamManager } from "nats";
import type { StorageType, StoredMsg, StreamConfig } from "nats";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { hasGap, type LogEntry, type LogRead } from "./backplane.ts";
import {
  apiErrorCode,
  type Direct,
  directGet,
  errorCode,
  inBatches,
  STREAM_EXISTS,
  token,
} from "./_nats.ts";

/** Logs whose base is remembered; the least recently used is forgotten past it. */
const LOG_CACHE = 10_000;
/** Longest escaped log name used as is in a stream name (a directory name on the server). */
const MAX_NAME = 200;

/** What the logs need of the engine. */
export interface LogsOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  direct: Direct;
  /** Prefix token. */
  prefix: string;
  storage: StorageType;
  /** Entries a log keeps. */
  retention: number;
  /** The server's clock in ms. */
  now: () => number;
}

/** Appends and reads; every method may reject with the client's errors. */
export class NatsLogs {
  #o: LogsOptions;
  #bases = new Map<string, number>();
  /** Per log whose base is not known yet, the calls on it, one after the other. */
  #opening = new Map<string, Promise<void>>();

  constructor(options: LogsOptions) {
    this.#o = options;
  }

  /** Forgets every base: a server that comes back may have lost its streams. */
  forget(): void {
    this.#bases.clear();
  }

  /**
   * Appends entries in order, pipelined: every publish is sent before the
   * first answer is awaited, and one connection keeps their order. While a
   * log's base is unknown here (its first use, or after a reconnection),
   * calls on it run one after the other and the first entry goes alone, so
   * that a stream made meanwhile cannot take later entries before earlier ones.
   */
  appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]> {
    const opening = this.#opening.get(log);
    if (opening === undefined && this.#bases.has(log)) return this.#appendMany(log, channel, data);
    const run = (opening ?? Promise.resolve()).then(() => this.#appendMany(log, channel, data));
    const settled = run.then(() => {}, () => {});
    this.#opening.set(log, settled);
    settled.then(() => {
      if (this.#opening.get(log) === settled) this.#opening.delete(log);
    });
    return run;
  }

  async #appendMany(log: string, channel: string, data: readonly Uint8Array[]): Promise<number[]> {
    if (data.length === 0) return [];
    const subject = `${this.#o.prefix}.log.${token(log)}.${token(channel)}`;
    const offsets: number[] = [];
    let rest = data;
    if (!this.#bases.has(log)) {
      offsets.push(await this.#appendFirst(log, subject, data[0]));
      rest = data.slice(1);
    }
    const acks = await Promise.all(rest.map((d) => this.#o.js.publish(subject, d)));
    const base = this.#bases.get(log) ?? await this.#base(log);
    for (const ack of acks) offsets.push(base + ack.seq);
    return offsets;
  }

  /** Appends one entry, making the log's stream when none listens; returns its offset. */
  async #appendFirst(log: string, subject: string, data: Uint8Array): Promise<number> {
    let base: number | undefined;
    let seq: number;
    try {
      seq = (await this.#o.js.publish(subject, data)).seq;
    } catch (error) {
      if (errorCode(error) !== "503") throw error; // 503: no stream listens
      base = await this.#make(log);
      seq = (await this.#o.js.publish(subject, data)).seq;
    }
    base ??= await this.#base(log);
    return base + seq;
  }

  #stream(log: string): string {
    const name = token(log);
    const short = name.length <= MAX_NAME ? name : createHash("sha256").update(log).digest("hex");
    return `${this.#o.prefix}_log_${short}`;
  }

  #remember(log: string, base: number): number {
    this.#bases.delete(log);
    this.#bases.set(log, base);
    if (this.#bases.size > LOG_CACHE) this.#bases.delete(this.#bases.keys().next().value!);
    return base;
  }

  /** Makes a log's stream with a base of the server clock in microseconds; returns the base. */
  async #make(log: string): Promise<number> {
    const p = this.#o.prefix;
    const source = `${p}.log.${token(log)}.*`;
    const base = Math.floor(this.#o.now() * 1000);
    const config: Partial<StreamConfig> = {
      name: this.#stream(log),
      description: `streamwire log '${log}'`,
      subjects: [source],
      storage: this.#o.storage,
      max_msgs: this.#o.retention,
      discard: DiscardPolicy.Old,
      allow_direct: true,
      republish: { src: source, dest: `${p}.ch.{{wildcard(1)}}.${base}` },
    };
    try {
      await this.#o.jsm.streams.add(config);
      return this.#remember(log, base);
    } catch (error) {
      // Another node made it first (with another base): use theirs.
      if (apiErrorCode(error) !== STREAM_EXISTS) throw error;
      return await this.#base(log);
    }
  }

  async #base(log: string): Promise<number> {
    const info = await this.#o.jsm.streams.info(this.#stream(log));
    return this.#remember(log, baseOf(info.config));
  }

  /** Reads after an offset with direct gets of the sequences that follow it. */
  async read(log: string, after: number, limit: number): Promise<LogRead> {
    const name = this.#stream(log);
    let info;
    try {
      info = await this.#o.jsm.streams.info(name);
    } catch (error) {
      if (errorCode(error) !== "404") throw error;
      return { entries: [], gap: hasGap(after, [], 0), head: 0 };
    }
    const base = this.#remember(log, baseOf(info.config));
    const { first_seq: first, last_seq: last, messages } = info.state;
    const head = last === 0 ? 0 : base + last;
    const from = Math.max(after > base ? after - base + 1 : 1, first);
    const to = Math.min(last, from + limit - 1);
    const seqs = messages === 0 ? [] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const got = await inBatches(seqs, (seq) => directGet(this.#o.direct, name, { seq }));
    // Entries trimmed while reading are missing at the front: keep what follows them.
    const kept = got.slice(got.findLastIndex((m) => m === undefined) + 1) as StoredMsg[];
    const entries: LogEntry[] = kept.map((m) => ({
      offset: base + m.seq,
      prev: m.seq > 1 ? base + m.seq - 1 : 0,
      // A copy: the client's bytes are Node Buffers viewing its read buffer.
      data: new Uint8Array(m.data),
    }));
    return { entries, gap: hasGap(after, entries, head), head };
  }
}

/** The base offset of a log stream: the last token of its republish subject. */
function baseOf(config: StreamConfig): number {
  const dest = config.republish?.dest ?? "";
  const base = Number(dest.slice(dest.lastIndexOf(".") + 1));
  if (!(base > 0)) {
    throw new StreamwireError(
      Status.FAILED_PRECONDITION,
      `Stream '${config.name}' is not a streamwire log (republish '${dest}')`,
    );
  }
  return base;
}
