// Auto-batching of a client: unary calls made in one event-loop turn go out
// as one BATCH, grouped by a CoalesceStream.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { CoalesceStream } from "./coalesce_stream.ts";
import { ignore } from "./_flow.ts";
import type { Outgoing } from "./_outgoing.ts";
import type { Call } from "./interceptor.ts";

/** A unary call waiting to be batched. */
export interface Batched {
  call: Call;
  idempotent: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Collects calls per turn and hands each group to `send`, bounded by
 * `maxPending` calls not yet settled.
 */
export class AutoBatcher {
  #writer: WritableStreamDefaultWriter<Batched>;
  #count = 0;
  #maxPending: number;

  constructor(maxBatch: number, maxPending: number, send: (group: Batched[]) => void) {
    this.#maxPending = maxPending;
    const coalesce = new CoalesceStream<Batched>({ maxBatch });
    coalesce.readable.pipeTo(new WritableStream<Batched[]>({ write: send })).catch(ignore);
    this.#writer = coalesce.writable.getWriter();
  }

  /** Adds a call to the current turn's group; settles with the call. */
  add(call: Call, idempotent: boolean): Promise<unknown> {
    const limit = this.#maxPending;
    if (this.#count >= limit) {
      return Promise.reject(
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Too many calls waiting to be batched: maxPendingCalls '${limit}'`,
        ),
      );
    }
    this.#count++;
    return new Promise((resolve, reject) => {
      this.#writer.write({ call, idempotent, resolve, reject }).catch(reject);
    }).finally(() => this.#count--);
  }

  /** Sends what is collected and stops. */
  close(): Promise<void> {
    return this.#writer.close().catch(ignore);
  }
}

/**
 * Splits a turn's group by timeout: a call must not fail at a neighbour's
 * shorter deadline (a BATCH's results arrive in one frame).
 */
function byTimeout(group: Batched[]): Batched[][] {
  const first = group[0].call.timeout;
  if (group.every((b) => b.call.timeout === first)) return [group];
  const groups = new Map<number | undefined, Batched[]>();
  for (const b of group) {
    const same = groups.get(b.call.timeout);
    if (same) same.push(b);
    else groups.set(b.call.timeout, [b]);
  }
  return [...groups.values()];
}

/**
 * Sends a turn's calls on `direct` (no interceptors: they ran already), one
 * BATCH per timeout, or a plain REQUEST for a call alone.
 */
export function sendBatched(direct: Outgoing, group: Batched[]): void {
  for (const calls of byTimeout(group)) {
    const timeout = calls[0].call.timeout;
    if (calls.length === 1) {
      const [{ call, idempotent, resolve, reject }] = calls;
      direct.call(call.method, call.params, { timeout, idempotent }).then(resolve, reject);
      continue;
    }
    direct.batch(
      calls.map((b) => ({ method: b.call.method, params: b.call.params })),
      { timeout, idempotent: calls.every((b) => b.idempotent) },
    ).then(
      (outcomes) =>
        outcomes.forEach((o, i) => o.ok ? calls[i].resolve(o.value) : calls[i].reject(o.error)),
      (error) => calls.forEach((b) => b.reject(StreamwireError.from(error))),
    );
  }
}
