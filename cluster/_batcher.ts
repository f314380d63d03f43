// Broadcasts leave a node through a bounded pipeline with one lane per key
// (the "all" channel, or a topic): with nothing in flight on a lane a
// message leaves at once (no added latency); while batches are in flight,
// later messages gather and leave together when a slot frees, so a busy
// node makes one backplane call, and every other node handles one
// delivery, per batch rather than per message. A lane's batches are sent
// in order over the engine's one connection, which keeps their order.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";

/** Bounds of a {@linkcode Batcher}. */
export interface BatcherLimits {
  /** Batches in flight at once on one lane. */
  depth: number;
  /** Batches in flight at once over all lanes; a lane past it waits its turn. */
  maxInFlight: number;
  /** Messages in one batch. */
  maxBatch: number;
  /** Bytes of messages in one batch, so that one backplane call stays small. */
  maxBatchBytes: number;
  /**
   * Messages waiting for a slot over all lanes; a broadcast past it fails
   * with `resource_exhausted` instead of growing the queue.
   */
  maxQueued: number;
}

/**
 * Defaults: two batches in flight per lane and 64 over all lanes, 256
 * messages or 256 KiB a batch, 8,192 messages waiting.
 */
export const BATCHER_LIMITS: BatcherLimits = {
  depth: 2,
  maxInFlight: 64,
  maxBatch: 256,
  maxBatchBytes: 256 * 1024,
  maxQueued: 8192,
};

/** Sends one batch of a lane; resolves with one result per message, in order. */
export type SendBatch<R> = (key: string, messages: Uint8Array[]) => Promise<R[]>;

interface Lane<R> {
  key: string;
  queue: Uint8Array[];
  waiting: PromiseWithResolvers<R>[];
  inFlight: number;
  /** Waits in the turn list for a slot over all lanes. */
  blocked: boolean;
}

/** Sends one node's messages per key in order, batched under load. */
export class Batcher<R> {
  #send: SendBatch<R>;
  #limits: BatcherLimits;
  /** Lanes with messages queued or in flight; an idle lane is dropped. */
  #lanes = new Map<string, Lane<R>>();
  /** Lanes waiting for a slot over all lanes, in turn. */
  #turns: Lane<R>[] = [];
  #queued = 0;
  #inFlight = 0;

  constructor(send: SendBatch<R>, limits: BatcherLimits = BATCHER_LIMITS) {
    this.#send = send;
    this.#limits = limits;
  }

  /** Messages waiting for a slot, over all lanes. */
  get queued(): number {
    return this.#queued;
  }

  /** Lanes with messages queued or in flight. */
  get lanes(): number {
    return this.#lanes.size;
  }

  /**
   * Queues a message on a key's lane.
   *
   * @returns Its result once the batch holding it was sent; rejects if the
   *   batch failed, or at once with `resource_exhausted` when the queue is full.
   */
  publish(key: string, message: Uint8Array): Promise<R> {
    if (this.#queued >= this.#limits.maxQueued) {
      return Promise.reject(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Cluster publish queue holds maxQueued '${this.#limits.maxQueued}' messages`,
        ),
      );
    }
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      lane = { key, queue: [], waiting: [], inFlight: 0, blocked: false };
      this.#lanes.set(key, lane);
    }
    const done = Promise.withResolvers<R>();
    lane.queue.push(message);
    lane.waiting.push(done);
    this.#queued++;
    this.#pump(lane);
    return done.promise;
  }

  #pump(lane: Lane<R>): void {
    const { depth, maxInFlight, maxBatch, maxBatchBytes } = this.#limits;
    while (lane.inFlight < depth && lane.queue.length > 0) {
      if (this.#inFlight >= maxInFlight) {
        if (!lane.blocked) {
          lane.blocked = true;
          this.#turns.push(lane);
        }
        return;
      }
      let end = 0, bytes = 0;
      while (
        end < lane.queue.length && end < maxBatch &&
        (end === 0 || bytes + lane.queue[end].length <= maxBatchBytes)
      ) {
        bytes += lane.queue[end++].length;
      }
      const messages = lane.queue.splice(0, end);
      const waiting = lane.waiting.splice(0, end);
      this.#queued -= end;
      lane.inFlight++;
      this.#inFlight++;
      // The slot frees, and the next batch leaves, before the callers hear of this one.
      const settled = () => {
        lane.inFlight--;
        this.#inFlight--;
        this.#pump(lane);
        while (this.#turns.length > 0 && this.#inFlight < maxInFlight) {
          const next = this.#turns.shift()!;
          next.blocked = false;
          this.#pump(next);
        }
      };
      this.#send(lane.key, messages).then(
        (results) => {
          settled();
          for (let i = 0; i < waiting.length; i++) waiting[i].resolve(results[i]);
        },
        (error) => {
          settled();
          for (const w of waiting) w.reject(error);
        },
      );
    }
    if (lane.inFlight === 0 && lane.queue.length === 0 && !lane.blocked) {
      this.#lanes.delete(lane.key);
    }
  }
}
