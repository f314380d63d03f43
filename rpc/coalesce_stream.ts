/**
 * Groups the chunks written in one event-loop turn into one array.
 *
 * @module
 */

import { afterTurn } from "../codec/_platform.ts";

/** Options of {@linkcode CoalesceStream}. */
export interface CoalesceOptions {
  /**
   * Largest group; a full group is emitted at once.
   *
   * @default {1024}
   */
  maxBatch?: number;
}

/**
 * Collects the chunks that arrive before the event loop moves on (everything
 * written synchronously, plus the microtasks that follow) and emits them as
 * one array. Grouping waits for `setImmediate`, not a timer: `setTimeout(0)`
 * costs about 2 ms in Deno, `setImmediate` only the rest of the turn (in a
 * browser, which has no `setImmediate`, a `MessageChannel` message).
 *
 * @example Usage
 * ```ts
 * import { CoalesceStream } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const batches = await Array.fromAsync(
 *   ReadableStream.from([1, 2, 3]).pipeThrough(new CoalesceStream<number>()),
 * );
 * assert.deepEqual(batches.flat(), [1, 2, 3]);
 * ```
 */
export class CoalesceStream<T> extends TransformStream<T, T[]> {
  /**
   * Creates the stream.
   *
   * @param options Group size bound.
   */
  constructor(options: CoalesceOptions = {}) {
    const max = options.maxBatch ?? 1024;
    let group: T[] = [];
    let scheduled = false;
    let controllerRef: TransformStreamDefaultController<T[]> | undefined;
    const emit = () => {
      scheduled = false;
      if (group.length === 0) return;
      const out = group;
      group = [];
      try {
        controllerRef?.enqueue(out);
      } catch { /* stream already closed or errored */ }
    };
    super({
      start(controller) {
        controllerRef = controller;
      },
      transform(chunk) {
        group.push(chunk);
        if (group.length >= max) emit();
        else if (!scheduled) {
          scheduled = true;
          afterTurn(emit);
        }
      },
      flush() {
        emit();
      },
    });
  }
}
