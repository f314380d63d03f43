// A latency histogram of bounded size for `streamwire bench`: log-linear
// buckets in the manner of HdrHistogram. Values below 2^SUB_BITS ns are
// exact; above, each power of two is split into 2^(SUB_BITS - 1) equal
// buckets, so a reported value is within 1/128 (0.8%) of the true one.
// Recording is a few integer operations and one array increment.

/** Bits of the exact range: values under 256 ns have a bucket each. */
const SUB_BITS = 8;
const SUB_COUNT = 1 << SUB_BITS;
const HALF = SUB_COUNT >> 1;
/**
 * Highest tracked power of two: 2^44 ns is about 4.9 hours. Longer values
 * land in the last bucket (the exact maximum is kept apart), so no input
 * can grow the histogram.
 */
const TOP_BIT = 44;
const BUCKETS = SUB_COUNT + (TOP_BIT - SUB_BITS + 1) * HALF;
const TWO_32 = 2 ** 32;

/** Position of the highest set bit of a positive integer below 2^53. */
function topBit(v: number): number {
  return v < TWO_32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO_32));
}

/** Bucket of a value in ns. */
function bucketOf(ns: number): number {
  if (ns < SUB_COUNT) return ns;
  const bit = topBit(ns);
  if (bit > TOP_BIT) return BUCKETS - 1;
  const shift = bit - SUB_BITS + 1;
  // ns / 2^shift lies in [HALF, SUB_COUNT): its offset in the octave.
  return SUB_COUNT + (bit - SUB_BITS) * HALF + (Math.floor(ns / 2 ** shift) - HALF);
}

/** The middle of a bucket, in ns. */
function valueOf(bucket: number): number {
  if (bucket < SUB_COUNT) return bucket;
  const octave = Math.floor((bucket - SUB_COUNT) / HALF);
  const shift = octave + 1;
  const low = (HALF + (bucket - SUB_COUNT) % HALF) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}

/** Latencies in ns, counted in a fixed set of buckets. */
export class Histogram {
  #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  /** Values recorded. */
  get count(): number {
    return this.#count;
  }

  /** Smallest value recorded, in ns (0 when empty). */
  get min(): number {
    return this.#count === 0 ? 0 : this.#min;
  }

  /** Largest value recorded, in ns (exact). */
  get max(): number {
    return this.#max;
  }

  /** Mean in ns (0 when empty). */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /**
   * Records one value.
   *
   * @param ns A duration in ns; negative values (a clock step) count as 0.
   */
  record(ns: number): void {
    const v = ns > 0 ? Math.round(ns) : 0;
    this.#counts[bucketOf(v)]++;
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /**
   * The value under which a fraction `q` of the recorded values lie.
   *
   * @param q A fraction within 0..1.
   * @returns ns, within the recorded minimum and maximum; 0 when empty.
   */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    const counts = this.#counts;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i];
      if (seen >= rank) return Math.min(this.#max, Math.max(this.#min, valueOf(i)));
    }
    return this.#max;
  }

  /** Forgets every value (after a warm-up). */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#min = Infinity;
    this.#max = 0;
  }
}
