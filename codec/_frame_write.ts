// Frame headers written in place, and messages written straight to wire
// bytes. Private: encodeFrames and FrameEncoderStage write headers with
// these, and a session's outbound queue encodes its messages with
// encodeWire when no stage of its own needs them as frames.

import { Flag, HEADER_SIZE, MAGIC, VERSION } from "./constants.ts";
import { crc32 } from "./crc32.ts";
import type { Message } from "./message.ts";
import { writeMessageBody } from "./message_encode.ts";
import { crc32Header, crc32JsRange } from "./_crc32_js.ts";

/**
 * Bodies shorter than this are checksummed in JavaScript: below about 110
 * bytes the slicing-by-8 loop beats a native call and the view it needs
 * (35 ns against 143 ns at 32 bytes, 87 against 107 at 96, 110 against 65
 * at 128; Deno 2.9.6, codec/crc32_bench.ts).
 */
const SHORT_BODY = 112;

/**
 * Writes the 17-byte header of a frame with the given body length at
 * `offset` in `target`, the body being already in place right after it, and
 * fills in the CRC-32 (PROTOCOL.md 1).
 *
 * @param target Buffer holding header space and body.
 * @param offset Where the header starts.
 * @param type Frame type.
 * @param flags Flags as sent (reserved bits already cleared).
 * @param seq Call id.
 * @param length Body length.
 * @returns The offset just past the body.
 */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  seq: number,
  length: number,
): number {
  const o = offset;
  target[o] = MAGIC >>> 8;
  target[o + 1] = MAGIC & 0xff;
  target[o + 2] = VERSION;
  target[o + 3] = flags;
  target[o + 4] = type;
  target[o + 5] = length >>> 24;
  target[o + 6] = length >>> 16;
  target[o + 7] = length >>> 8;
  target[o + 8] = length;
  target[o + 9] = seq >>> 24;
  target[o + 10] = seq >>> 16;
  target[o + 11] = seq >>> 8;
  target[o + 12] = seq;
  const end = o + HEADER_SIZE + length;
  // The 13 header bytes from the field values (magic and version are
  // constants), and short bodies in JavaScript: less than a native call and
  // a view (codec/crc32_bench.ts).
  const headerCrc = crc32Header(flags, type, length, seq);
  const crc = length < SHORT_BODY
    ? crc32JsRange(target, o + HEADER_SIZE, end, headerCrc)
    : crc32(target.subarray(o + HEADER_SIZE, end), headerCrc);
  target[o + 13] = crc >>> 24;
  target[o + 14] = crc >>> 16;
  target[o + 15] = crc >>> 8;
  target[o + 16] = crc;
  return end;
}

/**
 * The wire bytes of uncompressed messages, as `encodeFrames(encodeMessages(...))`
 * makes them, without a frame object and a body view per message in between.
 *
 * @param messages Messages already measured (and so validated).
 * @param bodySizes Their encoded body sizes.
 * @returns One buffer holding every frame, in order.
 */
export function encodeWire(messages: readonly Message[], bodySizes: readonly number[]): Uint8Array {
  let total = 0;
  for (let i = 0; i < bodySizes.length; i++) total += HEADER_SIZE + bodySizes[i];
  const out = new Uint8Array(total);
  let o = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const start = o + HEADER_SIZE;
    const end = writeMessageBody(m, out, start);
    o = writeHeader(out, o, m.type, m.ext ? Flag.EXT : 0, m.seq, end - start);
  }
  return out;
}
