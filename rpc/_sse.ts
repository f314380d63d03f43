// A Server-Sent Events response body (HTML Living Standard 9.2, the
// `text/event-stream` format) with a bounded queue: a reader that falls
// behind loses the oldest events, counted, and never makes the server hold
// more. Private to the admin API's dashboard and wire tap.

const encoder = new TextEncoder();

/** What a queued item becomes on the wire: its event name and JSON data. */
export type SseEncode<T> = (item: T, dropped: number) => { event: string; data: unknown };

/** Options of {@linkcode SseStream}. */
export interface SseStreamOptions<T> {
  /** Items held for a reader that is behind; past it the oldest is dropped. */
  limit: number;
  /** Turns an item into an event when the reader takes it, with the drops so far. */
  encode: SseEncode<T>;
  /** Called once when the stream ends, by {@linkcode SseStream.end} or by the client going away. */
  onEnd: () => void;
}

/**
 * The body of one event-stream response. Items are queued by
 * {@linkcode SseStream.push} and written when the HTTP server reads the
 * body (the stream's high-water mark is 0, so nothing else buffers them):
 * a client that stops reading holds at most `limit` items.
 */
export class SseStream<T> {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  /** Items dropped because the reader was behind. */
  dropped = 0;
  #queue: T[] = [];
  #limit: number;
  #encode: SseEncode<T>;
  #onEnd: () => void;
  #wake: (() => void) | undefined;
  /** No more items: the queue is written, then the body closes. */
  #ending = false;
  #ended = false;

  constructor(options: SseStreamOptions<T>) {
    this.#limit = Math.max(1, options.limit);
    this.#encode = options.encode;
    this.#onEnd = options.onEnd;
    this.body = new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: () => this.#finish(),
    }, { highWaterMark: 0 });
  }

  /** Whether the stream still takes items. */
  get open(): boolean {
    return !this.#ending;
  }

  /** Queues an item, dropping the oldest when `limit` are waiting. */
  push(item: T): void {
    if (this.#ending) return;
    if (this.#queue.length >= this.#limit) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#queue.push(item);
    this.#wakeReader();
  }

  /** Ends the stream once what is queued (and `last`, if given) is written. */
  end(last?: T): void {
    if (this.#ending) return;
    if (last !== undefined) this.push(last);
    this.#ending = true;
    this.#wakeReader();
  }

  /** A response carrying the stream. */
  response(): Response {
    return new Response(this.body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        // Proxies such as nginx would otherwise hold the events back.
        "x-accel-buffering": "no",
      },
    });
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    while (this.#queue.length === 0 && !this.#ending) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    // Cancelled by the client while waiting: the body is gone.
    if (this.#ended) return;
    if (this.#queue.length > 0) {
      const items = this.#queue;
      this.#queue = [];
      let text = "";
      for (const item of items) {
        const { event, data } = this.#encode(item, this.dropped);
        text += `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
      }
      controller.enqueue(encoder.encode(text));
      return;
    }
    controller.close();
    this.#finish();
  }

  #finish(): void {
    this.#ending = true;
    this.#queue = [];
    this.#wakeReader();
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
  }
}
