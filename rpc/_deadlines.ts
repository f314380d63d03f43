// Deadlines of many calls on one timer. A setTimeout per call costs about a
// third of a pipelined unary call in Deno; here each call costs a Set insert
// and delete, and one timer fires per resolution tick while calls wait.

/** Expiry granularity in ms: deadlines fire up to this much late. */
export const DEADLINE_RESOLUTION_MS = 5;

/**
 * Bucket keys count from here, not from 1970: keys from the epoch exceed a
 * small integer, and each one would be a boxed number, allocated per call
 * and slower to hash. From the process start they stay small for 124 days.
 */
const ORIGIN = Date.now();

/** Lets a timer not keep the process alive, where the runtime can (Deno). */
function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno;
  deno?.unrefTimer?.(timer as unknown as number);
}

export class Deadlines<T> {
  /** Bucket key (deadline / resolution, rounded up) to the items expiring then. */
  /** Made on first use: a peer that never times a call holds no map. */
  #map: Map<number, Set<T>> | undefined;

  get #buckets(): Map<number, Set<T>> {
    return this.#map ??= new Map();
  }
  /**
   * Bucket keys in ascending order. Deadlines mostly grow, so inserts are
   * appends; keys of buckets emptied by remove() stay until the next tick or
   * compaction, and are never more than the live ones plus 32.
   */
  #keys: number[] = [];
  #count = 0;
  #lastKey = -1;
  /** The bucket of `#lastKey`; stale once emptied (a size of 0 sends add() to the map). */
  #lastBucket: Set<T> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bucket key the timer is set for. */
  #timerKey = 0;
  #expire: (item: T) => void;

  constructor(expire: (item: T) => void) {
    this.#expire = expire;
  }

  /** Number of items waiting. */
  get size(): number {
    return this.#count;
  }

  /** Bucket keys held, live or emptied (bounded: see `#keys`). */
  get keyCount(): number {
    return this.#keys.length;
  }

  /** Schedules `item` to expire at `deadline` (ms since epoch); returns a key for {@linkcode remove}. */
  add(item: T, deadline: number): number {
    const key = Math.ceil((deadline - ORIGIN) / DEADLINE_RESOLUTION_MS);
    // Calls made together share a bucket: the last one is kept at hand.
    let bucket = key === this.#lastKey ? this.#lastBucket : undefined;
    if (bucket === undefined || bucket.size === 0) bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(key, bucket);
      let keys = this.#keys;
      if (keys.length > 2 * this.#buckets.size + 32) {
        keys = this.#keys = keys.filter((k) => this.#buckets.has(k));
      }
      let i = keys.length;
      while (i > 0 && keys[i - 1] > key) i--;
      if (keys[i - 1] !== key) keys.splice(i, 0, key);
      if (i === 0 || this.#timer === undefined) this.#arm();
    }
    bucket.add(item);
    this.#lastKey = key;
    this.#lastBucket = bucket;
    this.#count++;
    return key;
  }

  /** Cancels an item's expiry. */
  remove(item: T, key: number): void {
    const bucket = this.#map?.get(key);
    if (bucket === undefined || !bucket.delete(item)) return;
    if (--this.#count === 0) {
      // Nothing waits: drop the buckets, so an idle peer holds nothing. The
      // timer stays (unreferenced, it keeps no process alive) and stops at
      // its next tick: a call after call, one at a time, would otherwise
      // clear and set a timer per call.
      this.#buckets.clear();
      this.#keys = [];
      return;
    }
    if (bucket.size === 0) this.#buckets.delete(key);
  }

  /** Drops everything without expiring it. */
  clear(): void {
    this.#lastBucket = undefined;
    this.#map?.clear();
    this.#keys = [];
    this.#count = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const keys = this.#keys;
    while (keys.length > 0 && !this.#map?.has(keys[0])) keys.shift();
    const first = keys[0];
    // A timer already due no later than the first bucket re-arms when it fires.
    if (this.#timer !== undefined && first !== undefined && this.#timerKey <= first) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (first === undefined) return;
    const delay = Math.max(0, ORIGIN + first * DEADLINE_RESOLUTION_MS - Date.now());
    this.#timerKey = first;
    this.#timer = setTimeout(() => this.#tick(), delay);
    unrefTimer(this.#timer);
  }

  #tick(): void {
    this.#timer = undefined;
    // Its bucket may be taken out below, items and all.
    this.#lastBucket = undefined;
    const now = Date.now();
    const keys = this.#keys;
    let i = 0;
    const due: Set<T>[] = [];
    for (; i < keys.length && ORIGIN + keys[i] * DEADLINE_RESOLUTION_MS <= now; i++) {
      const bucket = this.#buckets.get(keys[i]);
      if (bucket === undefined) continue;
      this.#buckets.delete(keys[i]);
      this.#count -= bucket.size;
      due.push(bucket);
    }
    keys.splice(0, i);
    this.#arm();
    for (const bucket of due) for (const item of bucket) this.#expire(item);
  }
}
