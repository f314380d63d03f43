// Broadcasts to all leave a node through a bounded pipeline: with nothing in
// flight a message is published at once (no added latency); while
// publishes are in flight, later messages gather and go out together as one
// batch when a slot frees, so a busy node makes one backplane call and
// every other node one delivery per batch rather than per message.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Backplane } from "./backplane.ts";
import { encodeBatch } from "./_wire.ts";

/** Bounds of a {@linkcode Batcher}. */
export interface BatcherLimits {
  /** Publishes in flight at once. */
  depth: number;
  /** Messages in one batch; also bounded by the batch format's u16 count. */
  maxBatch: number;
  /** Bytes of messages in one batch, so that one backplane message stays small. */
  maxBatchBytes: number;
  /**
   * Messages waiting for a slot; a broadcast past it fails with
   * `resource_exhausted` instead of growing the queue.
   */
  maxQueued: number;
}

/** Defaults: two in flight, 256 messages or 256 KiB a batch, 8,192 waiting. */
export const BATCHER_LIMITS: BatcherLimits = {
  depth: 2,
  maxBatch: 256,
  maxBatchBytes: 256 * 1024,
  maxQueued: 8192,
};

/** Publishes one node's messages to a channel in order, batched under load. */
export class Batcher {
  #backplane: Backplane;
  #channel: string;
  #origin: string;
  #limits: BatcherLimits;
  #queue: Uint8Array[] = [];
  #waiting: PromiseWithResolvers<void>[] = [];
  #inFlight = 0;

  constructor(
    backplane: Backplane,
    options: { channel: string; origin: string; limits?: BatcherLimits },
  ) {
    this.#backplane = backplane;
    this.#channel = options.channel;
    this.#origin = options.origin;
    this.#limits = options.limits ?? BATCHER_LIMITS;
  }

  /** Messages waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Queues a message.
   *
   * @returns Resolves once the backplane took the batch holding it; rejects
   *   if it did not, or at once with `resource_exhausted` when the queue is full.
   */
  publish(message: Uint8Array): Promise<void> {
    if (this.queued >= this.#limits.maxQueued) {
      return Promise.reject(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Cluster publish queue holds maxQueued '${this.#limits.maxQueued}' messages`,
        ),
      );
    }
    const done = Promise.withResolvers<void>();
    this.#queue.push(message);
    this.#waiting.push(done);
    this.#pump();
    return done.promise;
  }

  #pump(): void {
    const { depth, maxBatch, maxBatchBytes } = this.#limits;
    while (this.#inFlight < depth && this.queued > 0) {
      let end = 0, bytes = 0;
      while (
        end < this.#queue.length && end < maxBatch &&
        (end === 0 || bytes + this.#queue[end].length <= maxBatchBytes)
      ) {
        bytes += this.#queue[end++].length;
      }
      const messages = this.#queue.splice(0, end);
      const waiting = this.#waiting.splice(0, end);
      const data = messages.length === 1 ? messages[0] : encodeBatch(this.#origin, messages);
      this.#inFlight++;
      // The slot frees, and the next batch leaves, before the callers hear of this one.
      const settled = () => {
        this.#inFlight--;
        this.#pump();
      };
      this.#backplane.publish(this.#channel, data).then(
        () => {
          settled();
          for (const w of waiting) w.resolve();
        },
        (error) => {
          settled();
          for (const w of waiting) w.reject(error);
        },
      );
    }
  }
}
