// Calls in flight by call id: an open-addressing table on the id's own bits.
//
// Not a Map because of what a Map does under churn. Every call is added and
// deleted once, so a Map of 128 calls in flight rehashes about every 128
// calls, and a rehashed table keeps a link to its successor and the entries
// it held. Once one table of the chain is in the old generation, each
// scavenge keeps every later table and every call they held alive until the
// next full collection: with pipelined calls about a quarter of the young
// generation survived each scavenge, most of it finished calls. Here the
// arrays live as long as the table and a deleted slot holds nothing.
//
// Ids of one side share their parity and mostly grow by 2, so `id >>> 1`
// spreads them over the slots without hashing.

/** Slots of a table once it holds an entry, a power of two; it never shrinks below. */
const MIN_SLOTS = 16;

/**
 * The one free slot of every table that never held an entry, shared and
 * never written (`set` resizes first): an idle peer's tables cost no arrays.
 */
const NO_IDS = new Uint32Array(1);
const NO_VALUES: undefined[] = [undefined];

/** Calls in flight by id; ids are non-zero 32-bit integers, values are never undefined. */
export class IdTable<T> {
  /** Ids by slot; 0 marks a free slot (0 is never a call id). */
  #ids: Uint32Array = NO_IDS;
  #values: (T | undefined)[] = NO_VALUES;
  #mask = 0;
  #size = 0;
  /**
   * No entry sits farther than this from its home slot. Sequential ids fill
   * one long run of slots, each id at home: bounding probes by the farthest
   * shift, not by the end of the run, keeps a miss and a deletion O(1).
   */
  #shift = 0;
  /** Deletions since the table was last more than an eighth full. */
  #low = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The value of `id`, if present. */
  get(id: number): T | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : this.#values[i];
  }

  /** Whether `id` is present. */
  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** Adds or replaces the value of `id`. */
  set(id: number, value: T): void {
    let i = this.#find(id);
    if (i < 0) {
      const slots = this.#ids.length;
      if (2 * (this.#size + 1) > slots) this.#resize(Math.max(MIN_SLOTS, 2 * slots));
      i = this.#place(id);
      if (++this.#size * 8 >= this.#ids.length) this.#low = 0;
    }
    this.#values[i] = value;
  }

  /** Removes `id`; returns whether it was present. */
  delete(id: number): boolean {
    return this.take(id) !== undefined;
  }

  /** Removes `id` and returns its value, if present. */
  take(id: number): T | undefined {
    let i = this.#find(id);
    if (i < 0) return undefined;
    const ids = this.#ids;
    const values = this.#values;
    const value = values[i];
    const mask = this.#mask;
    const shift = this.#shift;
    // Backward-shift deletion, so lookups need no tombstones: an entry of
    // the run after the hole moves into it if its home is not after the
    // hole. Only entries within `shift` of the hole can have such a home.
    for (let j = (i + 1) & mask, d = 1; d <= shift && ids[j] !== 0; j = (j + 1) & mask, d++) {
      const home = (ids[j] >>> 1) & mask;
      if (((j - home) & mask) < d) continue;
      ids[i] = ids[j];
      values[i] = values[j];
      i = j;
      d = 0;
    }
    ids[i] = 0;
    values[i] = undefined;
    // A burst's room is given back once the calls have stayed under an
    // eighth of it for as many calls as it has slots: calls pipelined in
    // rounds (all answered, then all sent again) do not shrink and regrow
    // it every round, and the copies cost O(1) per call.
    if (--this.#size * 8 < ids.length && ids.length > MIN_SLOTS) {
      if (++this.#low >= ids.length) this.#resize(ids.length / 2);
    }
    return value;
  }

  /** The values, in no particular order. */
  values(): T[] {
    const out: T[] = [];
    const ids = this.#ids;
    const values = this.#values;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) out.push(values[i]!);
    return out;
  }

  /** Removes everything. */
  clear(): void {
    if (this.#ids !== NO_IDS) this.#values.fill(undefined);
    this.#ids = NO_IDS;
    this.#values = NO_VALUES;
    this.#mask = 0;
    this.#size = this.#shift = this.#low = 0;
  }

  #find(id: number): number {
    const ids = this.#ids;
    const mask = this.#mask;
    const shift = this.#shift;
    let i = (id >>> 1) & mask;
    for (let d = 0; d <= shift; d++, i = (i + 1) & mask) {
      const at = ids[i];
      if (at === id) return i;
      if (at === 0) return -1;
    }
    return -1;
  }

  /** Puts `id` in the first free slot from its home; returns the slot. */
  #place(id: number): number {
    const ids = this.#ids;
    const mask = this.#mask;
    const home = (id >>> 1) & mask;
    let i = home;
    while (ids[i] !== 0) i = (i + 1) & mask;
    ids[i] = id;
    const d = (i - home) & mask;
    if (d > this.#shift) this.#shift = d;
    return i;
  }

  #resize(size: number): void {
    const ids = this.#ids;
    const values = this.#values;
    this.#ids = new Uint32Array(size);
    this.#values = new Array(size).fill(undefined);
    this.#mask = size - 1;
    this.#shift = this.#low = 0;
    for (let k = 0; k < ids.length; k++) {
      if (ids[k] !== 0) this.#values[this.#place(ids[k])] = values[k];
    }
    // The old array is garbage now; emptied, it keeps nothing alive meanwhile.
    values.fill(undefined);
  }
}
