// NDJSON on stdin: one JSON value per line, blank lines skipped, each line
// bounded so a stream without newlines cannot grow a buffer without end.

import { usage } from "./_command.ts";

/** Longest line read, in UTF-16 units: a bound on memory, far above any sane value. */
export const MAX_LINE = 16 * 1024 * 1024;

/**
 * The values of NDJSON text, in order, as a stream pulled on demand (so a
 * call sending them is paced by its credit). A line that is not JSON, or is
 * longer than {@linkcode MAX_LINE}, or that `check` throws for, fails the
 * stream with a usage error naming the line; `check` may also convert.
 */
export function ndjsonValues(
  bytes: ReadableStream<Uint8Array>,
  check?: (value: unknown) => unknown,
  what = "stdin",
): ReadableStream<unknown> {
  let number = 0;
  let rest = "";
  // Values of the last read, taken from `next` on: no shift() per value.
  let values: unknown[] = [];
  let next = 0;
  const text = bytes.pipeThrough(new TextDecoderStream()).getReader();
  const take = (line: string) => {
    number++;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw usage(`${what} line ${number}: not JSON: ${(error as Error).message}`);
    }
    if (check !== undefined) {
      try {
        value = check(value);
      } catch (error) {
        throw usage(`${what} line ${number}: ${(error as Error).message}`);
      }
    }
    values.push(value);
  };
  // A bad line fails the stream only after the values before it were read.
  let failure: unknown;
  const takeAll = (lines: string[]) => {
    try {
      for (const line of lines) take(line);
    } catch (error) {
      failure = error;
    }
  };
  return new ReadableStream<unknown>({
    async pull(controller) {
      while (next === values.length) {
        values = [];
        next = 0;
        if (failure !== undefined) {
          text.cancel().catch(() => {});
          throw failure;
        }
        const { value, done } = await text.read();
        if (done) {
          if (rest !== "") takeAll([rest]);
          rest = "";
          if (values.length === 0 && failure === undefined) {
            controller.close();
            return;
          }
          continue;
        }
        // Only the new text is scanned: a long line is not split again per read.
        const parts = value.split("\n");
        parts[0] = rest + parts[0];
        rest = parts.pop()!;
        takeAll(parts);
        if (rest.length > MAX_LINE && failure === undefined) {
          failure = usage(`${what} line ${number + 1}: longer than ${MAX_LINE} characters`);
        }
      }
      controller.enqueue(values[next]);
      values[next++] = undefined;
    },
    cancel(reason) {
      return text.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
