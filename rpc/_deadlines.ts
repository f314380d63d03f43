// Deadlines of many calls on one timer. A setTimeout per call costs about a
// third of a pipelined unary call in Deno; here each call costs a Set insert
// and delete, and one timer fires per resolution tick while calls wait.

/** Expiry granularity in ms: deadlines fire up to this much late. */
export const DEADLINE_RESOLUTION_MS = 5;

export class Deadlines<T> {
  /** Bucket key (deadline / resolution, rounded up) to the items expiring then. */
  #buckets = new Map<number, Set<T>>();
  /** Bucket keys in ascending order. Deadlines mostly grow, so inserts are appends. */
  #keys: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expire: (item: T) => void;

  constructor(expire: (item: T) => void) {
    this.#expire = expire;
  }

  /** Number of items waiting. */
  get size(): number {
    let n = 0;
    for (const bucket of this.#buckets.values()) n += bucket.size;
    return n;
  }

  /** Schedules `item` to expire at `deadline` (ms since epoch); returns a key for {@linkcode remove}. */
  add(item: T, deadline: number): number {
    const key = Math.ceil(deadline / DEADLINE_RESOLUTION_MS);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(key, bucket);
      const keys = this.#keys;
      let i = keys.length;
      while (i > 0 && keys[i - 1] > key) i--;
      keys.splice(i, 0, key);
      if (i === 0) this.#arm();
    }
    bucket.add(item);
    return key;
  }

  /** Cancels an item's expiry. */
  remove(item: T, key: number): void {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) return;
    bucket.delete(item);
    // Empty buckets are left for the next tick to drop: cheaper than a splice.
  }

  /** Drops everything without expiring it. */
  clear(): void {
    this.#buckets.clear();
    this.#keys = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const first = this.#keys[0];
    if (first === undefined) return;
    const delay = Math.max(0, first * DEADLINE_RESOLUTION_MS - Date.now());
    this.#timer = setTimeout(() => this.#tick(), delay);
  }

  #tick(): void {
    this.#timer = undefined;
    const now = Date.now();
    const keys = this.#keys;
    let i = 0;
    for (; i < keys.length && keys[i] * DEADLINE_RESOLUTION_MS <= now; i++) {
      const bucket = this.#buckets.get(keys[i]);
      this.#buckets.delete(keys[i]);
      if (bucket !== undefined) { for (const item of bucket) this.#expire(item); }
    }
    keys.splice(0, i);
    // Skip leading buckets that were emptied by remove().
    while (keys.length > 0 && (this.#buckets.get(keys[0])?.size ?? 0) === 0) {
      this.#buckets.delete(keys[0]);
      keys.shift();
    }
    this.#arm();
  }
}
