/**
 * Stages: WHATWG `Transformer` objects composed into one transformer, so a
 * chain of them costs one `TransformStream` (or none, when a read loop drives
 * it directly) instead of a stream and a pipe per stage.
 *
 * @module
 */

/**
 * A stage of a chain: a standard WHATWG `Transformer`. Its `transform` may
 * enqueue any number of chunks and may return a promise; later chunks then
 * wait for it, so order is kept.
 */
export type Stage<I, O> = Transformer<I, O>;

/** The controller a composed stage hands each inner stage: it feeds the next one. */
class Link<T> implements TransformStreamDefaultController<T> {
  /** The next stage, or undefined for the last link, which feeds `outer`. */
  #next: Stage<T, unknown> | undefined;
  #nextController: TransformStreamDefaultController<unknown> | undefined;
  outer: TransformStreamDefaultController<unknown> | undefined;
  /** Work of the next stage still running for earlier chunks. */
  tail: Promise<void> | undefined;

  constructor(
    next?: Stage<T, unknown>,
    nextController?: TransformStreamDefaultController<unknown>,
  ) {
    this.#next = next;
    this.#nextController = nextController;
  }

  get desiredSize(): number | null {
    return this.outer?.desiredSize ?? 1;
  }

  enqueue(chunk: T): void {
    const next = this.#next;
    if (next === undefined) {
      this.outer!.enqueue(chunk);
      return;
    }
    const transform = next.transform;
    if (transform === undefined) {
      // A stage without transform passes chunks through (WHATWG default).
      (this.#nextController as TransformStreamDefaultController<T>).enqueue(chunk);
      return;
    }
    if (this.tail !== undefined) {
      // An earlier chunk is still in an asynchronous stage: queue behind it.
      const controller = this.#nextController!;
      this.#wait(this.tail.then(() => transform.call(next, chunk, controller)));
      return;
    }
    const result = transform.call(next, chunk, this.#nextController!);
    if (result !== undefined) this.#wait(Promise.resolve(result));
  }

  /** Makes later chunks wait for `work`; back to the synchronous path once it is done. */
  #wait(work: Promise<unknown>): void {
    const tail: Promise<void> = work.then(() => {
      if (this.tail === tail) this.tail = undefined;
    });
    this.tail = tail;
  }

  error(reason?: unknown): void {
    throw reason;
  }

  terminate(): void {
    this.outer?.terminate();
  }
}

/** Runs `fn` on each link in order, waiting where a stage is asynchronous. */
function settleTails(links: Link<unknown>[]): Promise<void> | undefined {
  for (let i = 0; i < links.length; i++) {
    const tail = links[i].tail;
    if (tail !== undefined) {
      // Later links may gain work while this one finishes: check them again after.
      return tail.then(() => settleTails(links));
    }
  }
  return undefined;
}

/**
 * Composes stages into one: what the first enqueues goes straight into the
 * second's `transform`, synchronously, and so on. The result is itself a
 * `Transformer`, for `new TransformStream(stage)` or for a loop that calls
 * `transform` directly with a controller of its own.
 *
 * Chunks flow through the whole chain one at a time, so a later stage sees
 * (and may change the state of an earlier one for) each chunk before the
 * next is produced. A stage that returns a promise delays the chunks after
 * it, in order; the composed `transform` then returns a promise too. A stage
 * that throws, or calls `controller.error`, fails the composed call after
 * the chunks before it were passed on. `flush` runs each stage's flush in
 * order, so what one flushes goes through the rest.
 *
 * @param stages The stages, first to last.
 * @returns One stage doing the work of all of them.
 *
 * @example Two stages, one stream
 * ```ts
 * import { composeStages } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const split = {
 *   transform(line: string, c: TransformStreamDefaultController<string>) {
 *     for (const word of line.split(" ")) c.enqueue(word);
 *   },
 * };
 * const upper = {
 *   transform(word: string, c: TransformStreamDefaultController<string>) {
 *     c.enqueue(word.toUpperCase());
 *   },
 * };
 * const words = await Array.fromAsync(
 *   ReadableStream.from(["a b", "c"]).pipeThrough(new TransformStream(composeStages(split, upper))),
 * );
 * assert.deepEqual(words, ["A", "B", "C"]);
 * ```
 */
export function composeStages<I, O>(
  // deno-lint-ignore no-explicit-any
  ...stages: Stage<any, any>[]
): Stage<I, O> {
  if (stages.length === 0) {
    return { transform: (chunk, controller) => controller.enqueue(chunk as unknown as O) };
  }
  if (stages.length === 1) return stages[0];
  // links[i] is the controller stage i enqueues into.
  const links: Link<unknown>[] = new Array(stages.length);
  links[stages.length - 1] = new Link<unknown>();
  for (let i = stages.length - 2; i >= 0; i--) {
    links[i] = new Link<unknown>(stages[i + 1], links[i + 1]);
  }
  const last = links[stages.length - 1];
  const first = stages[0];
  const setOuter = (controller: TransformStreamDefaultController<O>) => {
    const outer = controller as TransformStreamDefaultController<unknown>;
    if (last.outer === outer) return;
    for (let i = 0; i < links.length; i++) links[i].outer = outer;
  };
  return {
    start(controller) {
      setOuter(controller);
      let chain: Promise<unknown> | undefined;
      for (let i = 0; i < stages.length; i++) {
        const start = stages[i].start;
        if (start === undefined) continue;
        const link = links[i];
        chain = chain === undefined
          ? toPromise(start.call(stages[i], link))
          : chain.then(() => start.call(stages[i], link));
      }
      return chain;
    },
    transform(chunk, controller) {
      setOuter(controller);
      const transform = first.transform;
      if (transform === undefined) links[0].enqueue(chunk);
      else {
        const result = transform.call(first, chunk, links[0]);
        if (result !== undefined) {
          return Promise.resolve(result).then(() => settleTails(links));
        }
      }
      return settleTails(links);
    },
    flush(controller) {
      setOuter(controller);
      const step = (i: number): Promise<void> | undefined => {
        for (; i < stages.length; i++) {
          const pending = settleTails(links);
          if (pending !== undefined) return pending.then(() => step(i));
          const flush = stages[i].flush;
          if (flush === undefined) continue;
          const result = flush.call(stages[i], links[i]);
          if (result !== undefined) {
            const at = i + 1;
            return Promise.resolve(result).then(() => step(at));
          }
        }
        return settleTails(links);
      };
      return step(0);
    },
  };
}

function toPromise(value: unknown): Promise<unknown> | undefined {
  return value === undefined ? undefined : Promise.resolve(value);
}

/**
 * A `TransformStream` over one stage that, when the stage fails, still hands
 * a reader the chunks it produced before failing: erroring a stream discards
 * what its readable still holds, so the error waits until those chunks were
 * read.
 *
 * @example A failing stage keeps what it produced
 * ```ts
 * import { StageStream } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const stream = new StageStream<number, number>({
 *   transform(n, c) {
 *     c.enqueue(n);
 *     if (n === 2) throw new Error("bad input");
 *   },
 * });
 * const seen: number[] = [];
 * await assert.rejects(async () => {
 *   for await (const n of ReadableStream.from([1, 2, 3]).pipeThrough(stream)) seen.push(n);
 * });
 * assert.deepEqual(seen, [1, 2]);
 * ```
 */
export class StageStream<I, O> extends TransformStream<I, O> {
  /**
   * Creates the stream.
   *
   * @param stage The stage, such as one from {@linkcode composeStages}.
   * @param writableStrategy Queuing strategy of the writable side.
   * @param readableStrategy Queuing strategy of the readable side.
   */
  constructor(
    stage: Stage<I, O>,
    writableStrategy?: QueuingStrategy<I>,
    readableStrategy?: QueuingStrategy<O>,
  ) {
    const transform = stage.transform;
    const flush = stage.flush;
    super(
      {
        start: stage.start?.bind(stage),
        transform: (chunk, controller) => {
          try {
            const result = transform === undefined
              ? controller.enqueue(chunk as unknown as O)
              : transform.call(stage, chunk, controller);
            if (result !== undefined) {
              return Promise.resolve(result).catch((error) => failAfterReads(controller, error));
            }
          } catch (error) {
            return failAfterReads(controller, error);
          }
        },
        flush: flush === undefined ? undefined : (controller) => {
          try {
            const result = flush.call(stage, controller);
            if (result !== undefined) {
              return Promise.resolve(result).catch((error) => failAfterReads(controller, error));
            }
          } catch (error) {
            return failAfterReads(controller, error);
          }
        },
      },
      writableStrategy,
      readableStrategy,
    );
  }
}

/** Longest wait between checks of whether the reader took the queued chunks, in ms. */
const MAX_POLL_MS = 50;

/**
 * Rejects with `error` once the readable's queue is empty, so the chunks
 * enqueued before the failure reach a reader first.
 */
async function failAfterReads(
  controller: TransformStreamDefaultController<unknown>,
  error: unknown,
): Promise<never> {
  let delay = 0;
  while ((controller.desiredSize ?? 0) < 0) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(MAX_POLL_MS, delay * 2 + 1);
  }
  throw error;
}
