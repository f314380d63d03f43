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

/** Slots of an empty table, a power of two: an idle peer holds no more. */
const MIN_SLOTS = 16;

/** Calls in flight by id; ids are non-zero 32-bit integers, values are never undefined. */
export class IdTable<T> {
  /** Ids by slot; 0 marks a free slot (0 is never a call id). */
  #ids = new Uint32Array(MIN_SLOTS);
  #values: (T | undefined)[] = new Array(MIN_SLOTS).fill(undefined);
  #mask = MIN_SLOTS - 1;
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The value of `id`, if present. */
  get(id: number): T | undefined {
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = (id >>> 1) & mask;; i = (i + 1) & mask) {
      const at = ids[i];
      if (at === id) return this.#values[i];
      if (at === 0) return undefined;
    }
  }

  /** Whether `id` is present. */
  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** Adds or replaces the value of `id`. */
  set(id: number, value: T): void {
    let i = this.#find(id);
    if (i < 0) {
      if (2 * (this.#size + 1) > this.#ids.length) this.#resize(2 * this.#ids.length);
      const ids = this.#ids;
      const mask = this.#mask;
      for (i = (id >>> 1) & mask; ids[i] !== 0; i = (i + 1) & mask);
      ids[i] = id;
      this.#size++;
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
    const value = this.#values[i];
    const ids = this.#ids;
    const values = this.#values;
    const mask = this.#mask;
    // Backward-shift deletion: later entries of the probe run move into the
    // hole if their home slot allows, so lookups never need tombstones.
    for (let j = (i + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = (ids[j] >>> 1) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      ids[i] = ids[j];
      values[i] = values[j];
      i = j;
    }
    ids[i] = 0;
    values[i] = undefined;
    // A burst's room is given back once the calls are down to an eighth of it.
    if (--this.#size * 8 < ids.length && ids.length > MIN_SLOTS) this.#resize(ids.length / 2);
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
    this.#values.fill(undefined);
    this.#ids = new Uint32Array(MIN_SLOTS);
    this.#values = new Array(MIN_SLOTS).fill(undefined);
    this.#mask = MIN_SLOTS - 1;
    this.#size = 0;
  }

  #find(id: number): number {
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = (id >>> 1) & mask;; i = (i + 1) & mask) {
      const at = ids[i];
      if (at === id) return i;
      if (at === 0) return -1;
    }
  }

  #resize(size: number): void {
    const ids = this.#ids;
    const values = this.#values;
    const mask = size - 1;
    const nextIds = new Uint32Array(size);
    const nextValues: (T | undefined)[] = new Array(size).fill(undefined);
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (id === 0) continue;
      let i = (id >>> 1) & mask;
      while (nextIds[i] !== 0) i = (i + 1) & mask;
      nextIds[i] = id;
      nextValues[i] = values[k];
    }
    // The old array is garbage now; emptied, it keeps nothing alive meanwhile.
    values.fill(undefined);
    this.#ids = nextIds;
    this.#values = nextValues;
    this.#mask = mask;
  }
}
