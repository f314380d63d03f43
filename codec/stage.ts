/**
 * Stages: WHATWG `Transformer` objects composed into one transformer, so a
 * chain of them costs one `TransformStream` (or none, when a read loop drives
 * it directly) instead of a stream and a pipe per stage.
 *
 * @module
 */

import { CONNECT, isConnectable } from "./_stage_input.ts";
import { StreamwireError } from "./error.ts";

/**
 * A stage of a chain: a standard WHATWG `Transformer`. Its `transform` may
 * enqueue any number of chunks and may return a promise; later chunks then
 * wait for it, so order is kept.
 */
export type Stage<I, O> = Transformer<I, O>;

type TransformFn<I, O> = (
  this: Stage<I, O>,
  chunk: I,
  controller: TransformStreamDefaultController<O>,
) => void | PromiseLike<void>;

/** The controller a composed stage hands an inner stage: it runs the next one. */
class Link<T> implements TransformStreamDefaultController<T> {
  /** The next stage. */
  #next: Stage<T, unknown>;
  /**
   * The next stage's `transform`, read once as a `TransformStream` does:
   * reading it per chunk from stages of many classes is a megamorphic load.
   */
  #transform: TransformFn<T, unknown> | undefined;
  /** The controller the next stage enqueues into. */
  next: TransformStreamDefaultController<unknown>;
  outer: TransformStreamDefaultController<unknown> | undefined;
  /** Work of the next stage still running for earlier chunks. */
  tail: Promise<void> | undefined;

  constructor(next: Stage<T, unknown>, nextController: TransformStreamDefaultController<unknown>) {
    this.#next = next;
    this.#transform = next.transform;
    this.next = nextController;
  }

  get desiredSize(): number | null {
    return this.outer?.desiredSize ?? 1;
  }

  enqueue(chunk: T): void {
    const transform = this.#transform;
    if (transform === undefined) {
      // A stage without transform passes chunks through (WHATWG default).
      (this.next as TransformStreamDefaultController<T>).enqueue(chunk);
      return;
    }
    if (this.tail !== undefined) {
      // An earlier chunk is still in an asynchronous stage: queue behind it.
      const next = this.#next;
      this.#wait(this.tail.then(() => transform.call(next, chunk, this.next)));
      return;
    }
    const result = transform.call(this.#next, chunk, this.next);
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

/** Stands for the composed stage's controller until a call brings it. */
const UNSET: TransformStreamDefaultController<unknown> = {
  desiredSize: null,
  enqueue() {
    throw new TypeError("A composed stage enqueued before it was called");
  },
  error(reason?: unknown) {
    throw reason;
  },
  terminate() {},
};

/** Waits for the links' asynchronous work, in order; undefined if there is none. */
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
 * The codec's own stages take their input through a controller of their
 * own class, so the calls between them are ones the JavaScript engine can
 * inline.
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
  return new Composed<I, O>(stages);
}

/**
 * The stage {@linkcode composeStages} returns. Its methods live on the
 * prototype: a session holds one for its whole life, so per-instance
 * closures would be memory held by every idle connection.
 */
class Composed<I, O> implements Stage<I, O> {
  #stages: Stage<unknown, unknown>[];
  /**
   * controllers[i] is the controller stage i enqueues into: the direct input
   * of stage i + 1 if it has one, else a Link that runs it. The last stage
   * enqueues straight into the composed stage's own controller, set (with
   * `next` of the hop into the last stage) when a call brings a new one.
   */
  #controllers: TransformStreamDefaultController<unknown>[];
  #links: Link<unknown>[] = [];
  #intoLast: TransformStreamDefaultController<unknown> & {
    next: TransformStreamDefaultController<unknown>;
  };

  constructor(stages: Stage<unknown, unknown>[]) {
    const n = stages.length;
    this.#stages = stages;
    const controllers: TransformStreamDefaultController<unknown>[] = new Array(n);
    controllers[n - 1] = UNSET;
    for (let i = n - 1; i >= 1; i--) {
      const stage = stages[i];
      const input = isConnectable<unknown, unknown>(stage)
        ? stage[CONNECT](controllers[i])
        : undefined;
      if (input !== undefined) {
        controllers[i - 1] = input;
      } else {
        const link = new Link<unknown>(stage, controllers[i]);
        this.#links.unshift(link);
        controllers[i - 1] = link;
      }
    }
    this.#controllers = controllers;
    this.#intoLast = controllers[n - 2] as TransformStreamDefaultController<unknown> & {
      next: TransformStreamDefaultController<unknown>;
    };
  }

  #setOuter(controller: TransformStreamDefaultController<O>): void {
    const outer = controller as TransformStreamDefaultController<unknown>;
    const controllers = this.#controllers;
    if (controllers[controllers.length - 1] === outer) return;
    controllers[controllers.length - 1] = outer;
    this.#intoLast.next = outer;
    const links = this.#links;
    for (let i = 0; i < links.length; i++) links[i].outer = outer;
  }

  start(controller: TransformStreamDefaultController<O>): Promise<unknown> | undefined {
    this.#setOuter(controller);
    const stages = this.#stages;
    let chain: Promise<unknown> | undefined;
    for (let i = 0; i < stages.length; i++) {
      const start = stages[i].start;
      if (start === undefined) continue;
      const into = this.#controllers[i];
      chain = chain === undefined
        ? toPromise(start.call(stages[i], into))
        : chain.then(() => start.call(stages[i], into));
    }
    return chain;
  }

  transform(chunk: I, controller: TransformStreamDefaultController<O>): Promise<void> | undefined {
    this.#setOuter(controller);
    const first = this.#stages[0];
    const transform = first.transform;
    const links = this.#links;
    if (transform === undefined) this.#controllers[0].enqueue(chunk);
    else {
      const result = transform.call(first, chunk, this.#controllers[0]);
      if (result !== undefined) {
        return Promise.resolve(result).then(() => settleTails(links));
      }
    }
    return settleTails(links);
  }

  flush(controller: TransformStreamDefaultController<O>): Promise<void> | undefined {
    this.#setOuter(controller);
    return this.#flushFrom(0);
  }

  #flushFrom(from: number): Promise<void> | undefined {
    const stages = this.#stages;
    const links = this.#links;
    for (let i = from; i < stages.length; i++) {
      const pending = settleTails(links);
      if (pending !== undefined) return pending.then(() => this.#flushFrom(i));
      const flush = stages[i].flush;
      if (flush === undefined) continue;
      const result = flush.call(stages[i], this.#controllers[i]);
      if (result !== undefined) {
        const at = i + 1;
        return Promise.resolve(result).then(() => this.#flushFrom(at));
      }
    }
    return settleTails(links);
  }
}

function toPromise(value: unknown): Promise<unknown> | undefined {
  return value === undefined ? undefined : Promise.resolve(value);
}

/**
 * A `TransformStream` over one stage that, when the stage fails, still hands
 * a reader the chunks it produced before failing: erroring a stream discards
 * what its readable still holds, so the error waits until those chunks were
 * read (for at most 30 s: a reader that never reads gets the error then).
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
 * Longest wait for a reader to take the chunks queued before a failure, in
 * ms. A reader that went away without cancelling would otherwise keep the
 * stream, and a timer, alive for good; past this the error comes anyway.
 */
const MAX_WAIT_MS = 30_000;

/**
 * Rejects with `error` once the readable's queue is empty (or after
 * `MAX_WAIT_MS`), so the chunks enqueued before the failure reach a reader first.
 */
async function failAfterReads(
  controller: TransformStreamDefaultController<unknown>,
  error: unknown,
): Promise<never> {
  let delay = 0;
  let waited = 0;
  while ((controller.desiredSize ?? 0) < 0 && waited < MAX_WAIT_MS) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    waited += delay;
    delay = Math.min(MAX_POLL_MS, delay * 2 + 1);
  }
  throw error;
}

/**
 * The controller a caught stage writes into: passes chunks on, and turns
 * `error()` into a throw, so that every failure of the stage is caught.
 */
class Catching<O> implements TransformStreamDefaultController<O> {
  outer: TransformStreamDefaultController<O | StreamwireError> | undefined;

  get desiredSize(): number | null {
    return this.outer?.desiredSize ?? 1;
  }

  enqueue(chunk: O): void {
    this.outer!.enqueue(chunk);
  }

  error(reason?: unknown): void {
    throw reason;
  }

  terminate(): void {
    this.outer?.terminate();
  }
}

/**
 * Makes a stage's failure its last chunk: when `stage` throws, rejects or
 * calls `controller.error` in `start`, `transform` or `flush`, the error is
 * enqueued as a `StreamwireError` (through {@linkcode StreamwireError.from}),
 * after the chunks the stage produced before it, and the output ends there
 * (`controller.terminate()`); later input is ignored. A stage downstream can
 * then answer the failure, such as with a connection ERROR (PROTOCOL.md
 * 1.3), instead of seeing the stream error.
 *
 * Terminating a `TransformStream` cancels what feeds it: a socket's
 * readable piped in should be piped with `preventCancel: true` when the
 * answer to the failure still has to be written to that socket.
 *
 * @param stage Any stage, such as one from {@linkcode createDecodeStage}.
 * @returns A stage with the same output, ending with the error if `stage` fails.
 *
 * @example Garbage after a frame becomes an error chunk
 * ```ts
 * import {
 *   catchStage,
 *   createDecodeStage,
 *   encodeFrames,
 *   encodeMessages,
 *   FrameType,
 *   StageStream,
 *   StreamwireError,
 * } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const ping = encodeFrames(encodeMessages([{ type: FrameType.PING, seq: 1, payload: Uint8Array.of(7) }]));
 * const garbage = new Uint8Array(20);
 * const out = await Array.fromAsync(
 *   ReadableStream.from([ping, garbage, ping])
 *     .pipeThrough(new StageStream(catchStage(createDecodeStage()))),
 * );
 * assert.equal(out.length, 2);
 * assert.ok(!(out[0] instanceof StreamwireError) && out[0].type === FrameType.PING);
 * assert.ok(out[1] instanceof StreamwireError);
 * assert.equal(out[1].codeName, "invalid_argument");
 * ```
 */
export function catchStage<I, O>(stage: Stage<I, O>): Stage<I, O | StreamwireError> {
  const inner = new Catching<O>();
  const { start, transform, flush } = stage;
  let failed = false;
  const fail = (error: unknown, terminate: boolean): void => {
    if (failed) return;
    failed = true;
    const outer = inner.outer!;
    try {
      outer.enqueue(StreamwireError.from(error));
      // In flush the output ends anyway.
      if (terminate) outer.terminate();
    } catch { /* the output was already closed by the reader */ }
  };
  const run = (
    step: () => void | PromiseLike<void>,
    controller: TransformStreamDefaultController<O | StreamwireError>,
    terminate: boolean,
  ): void | Promise<void> => {
    if (failed) return;
    inner.outer = controller;
    try {
      const result = step();
      if (result !== undefined) {
        return Promise.resolve(result).then(undefined, (error) => fail(error, terminate));
      }
    } catch (error) {
      fail(error, terminate);
    }
  };
  return {
    start: start === undefined
      ? undefined
      : (controller) => run(() => start.call(stage, inner), controller, true),
    transform: (chunk, controller) =>
      run(
        () =>
          transform === undefined
            ? inner.enqueue(chunk as unknown as O)
            : transform.call(stage, chunk, inner),
        controller,
        true,
      ),
    flush: flush === undefined
      ? undefined
      : (controller) => run(() => flush.call(stage, inner), controller, false),
  };
}
