// zlib inflation (RFC 1950) through the web platform's DecompressionStream,
// for runtimes without node:zlib (a web page): asynchronous, with the same
// hard cap on the output as the synchronous decompressor.

import { Status } from "./constants.ts";
import { concat } from "./_bytes.ts";
import { StreamwireError } from "./error.ts";
import { payloadTooLarge } from "./_lz4.ts";

/**
 * Inflates one zlib stream, counting the output as it comes and cancelling
 * the decompressor as soon as it passes `maxOutput`, so a small hostile
 * payload costs at most about the cap (plus one output chunk) in memory.
 * Trailing bytes after the stream and a truncated stream are refused, as
 * the Compression Streams standard requires (section 6, "decompress and
 * enqueue a chunk" and "decompress flush and enqueue").
 */
export async function inflateAsync(data: Uint8Array, maxOutput: number): Promise<Uint8Array> {
  if (data.length === 0) throw corrupt("empty payload");
  const inflater = new DecompressionStream("deflate");
  const writer = inflater.writable.getWriter();
  // The reader below reports any failure; these only must not go unhandled.
  writer.write(data as Uint8Array<ArrayBuffer>).catch(() => {});
  writer.close().catch(() => {});
  const reader = inflater.readable.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxOutput) {
        reader.cancel().catch(() => {});
        throw payloadTooLarge(maxOutput);
      }
      parts.push(value);
    }
  } catch (error) {
    if (error instanceof StreamwireError) throw error;
    throw corrupt(error instanceof Error ? error.message : String(error), error);
  }
  return parts.length === 1 ? parts[0] : concat(parts);
}

function corrupt(message: string, cause?: unknown): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, `Invalid zlib payload: ${message}`, {
    cause,
  });
}
