// UTF-8 lengths of the strings that repeat on the encode side (method names,
// trace context, metadata names), so that sizing a frame does not scan them
// again. Bounded: when full the cache is emptied and refills with the names
// in use, so a connection that sees its hot names only after many others
// still gets them cached, and memory stays within the limit whatever a
// caller sends.

import { utf8Length } from "./_bytes.ts";

/** Most strings kept at once. */
export const LENGTH_CACHE_LIMIT = 1024;
/** Longer strings are not kept: they are rarely names, and would pin memory. */
const MAX_CACHED_LENGTH = 256;

const cache = new Map<string, number>();

/** Number of bytes of the UTF-8 encoding of `s`, from the cache when it is there. */
export function strLength(s: string): number {
  let n = cache.get(s);
  if (n === undefined) {
    n = utf8Length(s);
    if (s.length <= MAX_CACHED_LENGTH) {
      if (cache.size >= LENGTH_CACHE_LIMIT) cache.clear();
      cache.set(s, n);
    }
  }
  return n;
}

/** Whether `s` is in the cache (for tests). */
export function isLengthCached(s: string): boolean {
  return cache.has(s);
}

/** Number of strings in the cache (for tests). */
export function lengthCacheSize(): number {
  return cache.size;
}
