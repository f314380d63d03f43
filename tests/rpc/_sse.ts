// Reads a text/event-stream response event by event, for the admin
// dashboard tests.

/** One event: its name and parsed JSON data. */
export interface SseEvent {
  event: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** A reader of one event stream. */
export class SseReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #queue: SseEvent[] = [];

  constructor(response: Response) {
    this.#reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event, or undefined once the stream ended. */
  async next(): Promise<SseEvent | undefined> {
    while (this.#queue.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += value;
      let end;
      while ((end = this.#buffer.indexOf("\n\n")) >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        this.#queue.push({ event, data: JSON.parse(data) });
      }
    }
    return this.#queue.shift();
  }

  /** The next event named `event`, skipping others; throws if the stream ends first. */
  async nextOf(event: string): Promise<SseEvent> {
    for (;;) {
      const next = await this.next();
      if (next === undefined) throw new Error(`The stream ended before a '${event}' event`);
      if (next.event === event) return next;
    }
  }

  /** Events until `done(event)` holds, that one included. */
  async until(done: (event: SseEvent) => boolean): Promise<SseEvent[]> {
    const seen: SseEvent[] = [];
    for (;;) {
      const next = await this.next();
      if (next === undefined) throw new Error("The stream ended first");
      seen.push(next);
      if (done(next)) return seen;
    }
  }

  /** Stops reading: the server sees the client go away. */
  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}
