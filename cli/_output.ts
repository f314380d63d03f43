// Buffered output for the command line: lines and bytes are gathered and
// written in batches (one write per 64 KiB, or once the event loop turns),
// and a closed pipe (`| head`) ends the command quietly instead of failing it.

const ENCODER = new TextEncoder();

/** Bytes gathered before a write is forced; also the most a writer waits behind. */
export const OUTPUT_BATCH_BYTES = 64 * 1024;

/** Writes all of `chunk` or throws. */
export type WriteAll = (chunk: Uint8Array) => Promise<void>;

/** A batching writer over stdout or stderr. */
export class Output {
  #sink: WriteAll;
  #onClosed: () => void;
  #parts: (string | Uint8Array)[] = [];
  #size = 0;
  #writing: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #failure: unknown;

  /**
   * @param sink Writes one chunk whole.
   * @param onClosed Called once when the reader went away (a broken pipe).
   */
  constructor(sink: WriteAll, onClosed: () => void = () => {}) {
    this.#sink = sink;
    this.#onClosed = onClosed;
  }

  /** The reader went away: what is written from now on is dropped. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues `text` and a newline.
   *
   * @returns A promise to await before writing more when the batch is full, else undefined.
   */
  line(text: string): Promise<void> | undefined {
    return this.write(text + "\n");
  }

  /**
   * Queues text or bytes (bytes are copied only when the batch is written,
   * so they must not change until then).
   *
   * @returns A promise to await before writing more when the batch is full, else undefined.
   */
  write(chunk: string | Uint8Array): Promise<void> | undefined {
    if (this.#closed) return undefined;
    if (this.#failure !== undefined) throw this.#failure;
    this.#parts.push(chunk);
    // Strings are counted in UTF-16 units: close enough for a batch bound.
    this.#size += chunk.length;
    if (this.#size >= OUTPUT_BATCH_BYTES) return this.flush();
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => {});
    }, 0);
    return undefined;
  }

  /**
   * Writes what is queued.
   *
   * @returns Resolves once written (or dropped, if the reader went away).
   * @throws The write's error, other than a broken pipe.
   */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#parts.length > 0 && !this.#closed) {
      const bytes = join(this.#parts);
      this.#parts = [];
      this.#size = 0;
      this.#writing = this.#writing.then(() => this.#closed ? undefined : this.#write(bytes));
    }
    return this.#writing;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      await this.#sink(bytes);
    } catch (error) {
      if (isBrokenPipe(error)) {
        this.#close();
        return;
      }
      this.#failure = error;
      throw error;
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parts = [];
    this.#size = 0;
    this.#onClosed();
  }
}

function join(parts: (string | Uint8Array)[]): Uint8Array {
  if (parts.length === 1) {
    const only = parts[0];
    return typeof only === "string" ? ENCODER.encode(only) : only.slice();
  }
  let allText = true;
  let bound = 0;
  for (const part of parts) {
    if (typeof part === "string") {
      // Three bytes per UTF-16 unit is the most UTF-8 needs.
      bound += part.length * 3;
    } else {
      allText = false;
      bound += part.length;
    }
  }
  if (allText) return ENCODER.encode(parts.join(""));
  const out = new Uint8Array(bound);
  let offset = 0;
  for (const part of parts) {
    if (typeof part === "string") {
      offset += ENCODER.encodeInto(part, out.subarray(offset)).written;
    } else {
      out.set(part, offset);
      offset += part.length;
    }
  }
  return out.subarray(0, offset);
}

/** True for the error a write gets once the reading end of a pipe closed. */
export function isBrokenPipe(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    (error instanceof Error && /broken pipe|EPIPE/i.test(error.message));
}

/** A {@linkcode WriteAll} over a Deno writer such as `Deno.stdout`. */
export function writerSink(writer: { write(p: Uint8Array): Promise<number> }): WriteAll {
  return async (chunk) => {
    let offset = 0;
    while (offset < chunk.length) offset += await writer.write(chunk.subarray(offset));
  };
}
