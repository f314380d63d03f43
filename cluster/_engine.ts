// What the network engines (Redis, NATS) share: their reconnection backoff
// and the URL they name in messages.

/** Delay before reconnection attempt `n`: `min(base * 2^n, max)` ms plus up to 20% jitter. */
export function backoffMs(n: number, baseMs: number, maxMs: number): number {
  return Math.round(Math.min(baseMs * 2 ** Math.min(n, 20), maxMs) * (1 + Math.random() * 0.2));
}

/** {@linkcode backoffMs} counting its own attempts; `reset` after a success. */
export class Backoff {
  #n = 0;
  constructor(readonly baseMs: number, readonly maxMs: number) {}
  next(): number {
    return backoffMs(this.#n++, this.baseMs, this.maxMs);
  }
  reset(): void {
    this.#n = 0;
  }
}

/** The URL without its passwords, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/g, "//$1:***@");
}
