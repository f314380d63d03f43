// The streams of a streaming call, handed out before the call is sent:
// `stream()` and `duplex()` return at once, while interceptors run and a
// reconnecting client waits for its connection. They attach to the call's
// own streams once the innermost interceptor opens it.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { ignore } from "./_flow.ts";

/** Streams that stand in for a call's until it is opened. */
export class StreamPort {
  #attached = Promise.withResolvers<void>();
  #settled = false;
  #readable: ReadableStream<unknown> | undefined;
  #writable: WritableStream<unknown> | undefined;
  #reader: ReadableStreamDefaultReader<unknown> | undefined;
  #writer: WritableStreamDefaultWriter<unknown> | undefined;
  #giveUp = new AbortController();

  constructor() {
    this.#attached.promise.catch(ignore);
  }

  /** Fires when the user cancels the readable or aborts the writable before the call is opened. */
  get signal(): AbortSignal {
    return this.#giveUp.signal;
  }

  /** The call is open: these are its streams. */
  attach(readable: ReadableStream<unknown>, writable: WritableStream<unknown> | undefined): void {
    if (this.#settled) {
      readable.cancel().catch(ignore);
      writable?.abort().catch(ignore);
      return;
    }
    this.#settled = true;
    this.#readable = readable;
    this.#writable = writable;
    if (this.#giveUp.signal.aborted) {
      const reason = this.#giveUp.signal.reason;
      readable.cancel(reason).catch(ignore);
      writable?.abort(reason).catch(ignore);
    }
    this.#attached.resolve();
  }

  /** The call could not be opened: both streams fail with `error`. */
  fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#attached.reject(error);
  }

  /**
   * The streams to hand out: the call's own if it is open already,
   * otherwise stand-ins that attach to them later.
   */
  streams(): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> } {
    if (this.#readable !== undefined && this.#writable !== undefined) {
      return { readable: this.#readable, writable: this.#writable };
    }
    return { readable: this.readable(), writable: this.#proxyWritable() };
  }

  /** The readable to hand out, for a call that sends nothing after its OPEN. */
  readable(): ReadableStream<unknown> {
    if (this.#readable !== undefined) return this.#readable;
    const attached = this.#attached.promise;
    return new ReadableStream<unknown>({
      pull: async (controller) => {
        await attached;
        const reader = this.#reader ??= this.#readable!.getReader();
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: async (reason) => {
        if (this.#readable === undefined) return this.#stop("Stream cancelled by its reader");
        await (this.#reader ?? this.#readable).cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  #proxyWritable(): WritableStream<unknown> {
    const attached = this.#attached.promise;
    return new WritableStream<unknown>({
      write: async (value) => {
        await attached;
        await this.#writerOf().write(value);
      },
      close: async () => {
        await attached;
        await this.#writerOf().close();
      },
      abort: async (reason) => {
        if (this.#readable === undefined) return this.#stop(`Upload aborted: ${String(reason)}`);
        await this.#writerOf().abort(reason);
      },
    }, { highWaterMark: 1 });
  }

  #writerOf(): WritableStreamDefaultWriter<unknown> {
    return this.#writer ??= this.#writable!.getWriter();
  }

  #stop(message: string): void {
    this.#giveUp.abort(new StreamwireError(Status.CANCELLED, message));
  }
}
