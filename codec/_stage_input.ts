// Direct input of the codec's own stages, for composeStages.
//
// A composed stage hands each stage a controller whose enqueue runs the next
// stage. Written once for all stages, that enqueue is one call site that
// dispatches to every stage class in the program, which the JavaScript
// engine cannot inline (about 12% of the decode chain's time on small
// frames, codec/chain_bench.ts). A stage that has a method under CONNECT
// returns a controller of its own class instead, so each hop is a call site
// that sees one or two classes and is inlined.

/** Key of the method that returns a stage's direct input (see {@linkcode Connectable}). */
export const CONNECT: unique symbol = Symbol("streamwire.stage.connect");

/** A stage that can run on chunks enqueued straight into a controller it returns. */
export interface Connectable<I, O> {
  /**
   * Returns a controller whose `enqueue(chunk)` runs the stage on `chunk` at
   * once and synchronously, enqueueing what it produces into `next`; or
   * `undefined` when the stage may be asynchronous in this runtime, so that
   * composeStages runs its `transform` and holds later chunks behind it.
   */
  [CONNECT](
    next: TransformStreamDefaultController<O>,
  ): TransformStreamDefaultController<I> | undefined;
}

/** Whether `stage` has a direct input. */
export function isConnectable<I, O>(stage: object): stage is Connectable<I, O> {
  return typeof (stage as Partial<Connectable<I, O>>)[CONNECT] === "function";
}

/**
 * Base of the direct inputs: each stage's subclass defines `enqueue`; the
 * rest forwards to the next controller.
 */
export abstract class StageInput<I, O> implements TransformStreamDefaultController<I> {
  /** Where the stage's output goes; composeStages sets it for the last stage. */
  next: TransformStreamDefaultController<O>;

  constructor(next: TransformStreamDefaultController<O>) {
    this.next = next;
  }

  get desiredSize(): number | null {
    return this.next.desiredSize;
  }

  abstract enqueue(chunk: I): void;

  error(reason?: unknown): void {
    this.next.error(reason);
  }

  terminate(): void {
    this.next.terminate();
  }
}
