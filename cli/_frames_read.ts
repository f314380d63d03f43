// Reading what the frame commands take: chunks of a stream that stop when
// the command's signal aborts, NDJSON lines with their numbers, and frames
// with the byte offset each starts at (so that an error can name it).

import { Flag, HEADER_SIZE, isFrameType, MAGIC, VERSION } from "../codec/constants.ts";
import { Deframer } from "../codec/deframer_stream.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import { concat } from "../codec/_bytes.ts";

/** Bytes asked for per read when reading into a buffer of our own. */
const READ_SIZE = 64 * 1024;

/**
 * The chunks of `stream` until it ends or `signal` aborts; an abort cancels
 * a pending read, so a command whose stdout closed does not wait for input.
 *
 * With `reuse`, a byte stream (stdin is one) is read into one buffer over
 * and over: each chunk is valid only until the next is asked for, and a
 * gigabyte read costs no allocation per read. Other streams yield their own
 * chunks.
 */
export async function* chunksOf(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  options: { reuse?: boolean } = {},
): AsyncGenerator<Uint8Array> {
  let byob: ReadableStreamBYOBReader | undefined;
  if (options.reuse) {
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream.
    }
  }
  const reader = byob ?? stream.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  let buffer: ArrayBuffer = new ArrayBuffer(byob === undefined ? 0 : READ_SIZE);
  try {
    while (!signal.aborted) {
      const { value, done } = byob === undefined
        ? await (reader as ReadableStreamDefaultReader<Uint8Array>).read()
        : await byob.read(new Uint8Array(buffer));
      if (done || signal.aborted || value === undefined) return;
      yield value;
      // A BYOB read hands the buffer back in `value` (the one passed in is detached).
      if (byob !== undefined) buffer = value.buffer as ArrayBuffer;
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    // Stops the source if the consumer stopped early (an error, an abort).
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Lines of text read at once, numbered from 1. */
export interface LineBatch {
  /** The lines, without their line ends (`\n` or `\r\n`). */
  lines: string[];
  /** Number of the first line. */
  first: number;
}

const NEWLINE = 0x0a;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * NDJSON input as batches of whole lines: one batch per read, each line
 * decoded as strict UTF-8. A line longer than `maxLine` bytes fails before
 * more of it is buffered, so memory stays within about `maxLine` plus a read.
 *
 * @throws {StreamwireError} `invalid_argument` naming the line (`line 3: ...`)
 *   for invalid UTF-8 or a line too long.
 */
export async function* linesOf(
  chunks: AsyncIterable<Uint8Array>,
  maxLine: number,
): AsyncGenerator<LineBatch> {
  // Bytes of the unfinished last line: a list, joined once its end arrives,
  // so that a long line costs one copy rather than one per read.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let line = 1;
  for await (const chunk of chunks) {
    const last = chunk.lastIndexOf(NEWLINE);
    if (last < 0) {
      pendingBytes += chunk.length;
      if (pendingBytes > maxLine) throw tooLong(line, maxLine);
      pending.push(chunk);
      continue;
    }
    let head = chunk.subarray(0, last);
    if (pending.length > 0) {
      pending.push(head);
      head = join(pending);
      pending = [];
    }
    const lines = decodeLines(head, line);
    for (const text of lines) {
      if (text.length > maxLine) throw tooLong(line, maxLine);
    }
    yield { lines, first: line };
    line += lines.length;
    const rest = chunk.subarray(last + 1);
    pendingBytes = rest.length;
    if (pendingBytes > maxLine) throw tooLong(line, maxLine);
    if (pendingBytes > 0) pending.push(rest);
  }
  if (pendingBytes > 0) {
    yield { lines: decodeLines(join(pending), line), first: line };
  }
}

function join(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0] : concat(parts);
}

/** The lines of `bytes` (which holds no final newline), `\r` before a newline dropped. */
function decodeLines(bytes: Uint8Array, first: number): string[] {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw badUtf8(bytes, first);
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.length > 0 && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
  }
  return lines;
}

/** Finds the line that is not UTF-8, for the error. */
function badUtf8(bytes: Uint8Array, first: number): StreamwireError {
  let start = 0;
  for (let line = first;; line++) {
    const end = bytes.indexOf(NEWLINE, start);
    try {
      UTF8.decode(bytes.subarray(start, end < 0 ? bytes.length : end));
    } catch {
      return new StreamwireError(3, `line ${line}: Not valid UTF-8`);
    }
    if (end < 0) return new StreamwireError(3, `line ${first}: Not valid UTF-8`);
    start = end + 1;
  }
}

function tooLong(line: number, maxLine: number): StreamwireError {
  return new StreamwireError(3, `line ${line}: Longer than '${maxLine}' bytes`);
}

/** A frame and the byte offset of its header in the stream it was read from. */
export interface FrameAt {
  frame: Frame;
  offset: number;
}

/** First size of the buffer that holds a frame split across reads. */
const CARRY_SIZE = 64 * 1024;

/**
 * Bytes to frames with the byte offset each starts at, handing out whole
 * frames only: a frame split across reads is gathered in a buffer of its
 * own, reused from one frame to the next (sized by the largest frame seen,
 * at most `maxFrame`). Frames are views of the chunk pushed or of that
 * buffer, valid until the next push, so a caller may reuse its read buffer
 * once it has handled them: reading costs no allocation per read.
 *
 * Headers are checked by {@linkcode Deframer}: a malformed one, or a stream
 * cut inside a frame, is returned (not thrown) with the offset of the frame
 * it hit, after the frames before it.
 */
export class OffsetDeframer {
  #deframer: Deframer;
  #maxFrame: number;
  #position = 0;
  #carry = new Uint8Array(0);
  /** The other carry buffer: it may hold the frame handed out by the last push. */
  #spare = new Uint8Array(0);
  #carried = 0;
  #sink: { out: FrameAt[]; push(frame: Frame): void };

  constructor(maxFrame: number) {
    this.#deframer = new Deframer({ maxFrame });
    this.#maxFrame = maxFrame;
    this.#sink = {
      out: [],
      push: (frame: Frame) => {
        this.#sink.out.push({ frame, offset: this.#position });
        this.#position += HEADER_SIZE + frame.body.length;
      },
    };
  }

  /** Offset of the first byte not yet handed out in a frame. */
  get position(): number {
    return this.#position;
  }

  /**
   * Adds the frames completed by `chunk` to `out`.
   *
   * @returns The error of a malformed header at {@linkcode OffsetDeframer.position}, if any;
   *   the stream is then unusable.
   */
  push(chunk: Uint8Array, out: FrameAt[]): StreamwireError | undefined {
    this.#sink.out = out;
    let at = 0;
    if (this.#carried > 0) {
      at = this.#fill(chunk);
      const need = this.#need();
      if (need === undefined || this.#carried < need) {
        // Still incomplete, unless the header is one the deframer refuses.
        return need === Infinity
          ? this.#refuse(this.#carry.subarray(0, this.#carried), 0)
          : undefined;
      }
      const failure = this.#deframe(this.#carry.subarray(0, need));
      this.#carried = 0;
      if (failure !== undefined) return failure;
      // The frame just handed out is a view of the carry: a tail goes to the other buffer.
      [this.#carry, this.#spare] = [this.#spare, this.#carry];
    }
    // Whole frames go to the deframer as they are; the tail is carried.
    let end = at;
    while (end < chunk.length) {
      const length = this.#length(chunk, end, chunk.length - end);
      if (length === Infinity) return this.#refuse(chunk.subarray(at), end - at);
      if (length < 0 || end + HEADER_SIZE + length > chunk.length) break;
      end += HEADER_SIZE + length;
    }
    const failure = end > at ? this.#deframe(chunk.subarray(at, end)) : undefined;
    if (failure !== undefined) return failure;
    if (end < chunk.length) {
      this.#fill(chunk.subarray(end));
      if (this.#need() === Infinity) return this.#refuse(this.#carry.subarray(0, this.#carried), 0);
    }
    return undefined;
  }

  /** The error of a stream that ended inside a frame, if it did. */
  end(): StreamwireError | undefined {
    if (this.#carried > 0) {
      const failure = this.#deframe(this.#carry.subarray(0, this.#carried));
      if (failure !== undefined) return failure;
    }
    try {
      this.#deframer.end();
      return undefined;
    } catch (error) {
      return StreamwireError.from(error);
    }
  }

  /**
   * Size of the carried frame: undefined while its header is incomplete,
   * Infinity as soon as the header bytes carried are ones the deframer
   * refuses (it then says why at once, rather than after bytes that never
   * come).
   */
  #need(): number | undefined {
    const length = this.#length(this.#carry, 0, this.#carried);
    return length < 0 ? undefined : HEADER_SIZE + length;
  }

  /**
   * Body length of the header at `at`, of which `available` bytes are
   * there: Infinity if what is there would be refused, -1 if it is fine so
   * far but incomplete.
   */
  #length(bytes: Uint8Array, at: number, available: number): number {
    if (available < 1) return -1;
    if (bytes[at] !== MAGIC >>> 8) return Infinity;
    if (available < 2) return -1;
    if (bytes[at + 1] !== (MAGIC & 0xff)) return Infinity;
    if (available < 3) return -1;
    if (bytes[at + 2] !== VERSION) return Infinity;
    if (available < 4) return -1;
    if ((bytes[at + 3] & (Flag.RESERVED_MASK | Flag.ENCRYPTED)) !== 0) return Infinity;
    if (available < 5) return -1;
    if (!isFrameType(bytes[at + 4])) return Infinity;
    if (available < HEADER_SIZE) return -1;
    const length = u32(bytes, at + 5);
    return length > this.#maxFrame ? Infinity : length;
  }

  /** Moves what the carried frame lacks from `bytes` into the carry; returns bytes taken. */
  #fill(bytes: Uint8Array): number {
    const need = this.#need() ?? HEADER_SIZE;
    const take = Math.min(bytes.length, (need === Infinity ? HEADER_SIZE : need) - this.#carried);
    let carry = this.#carry;
    const size = this.#carried + take;
    if (carry.length < size) {
      // Sized for the whole frame once its header is known (at most maxFrame + 17).
      const grown = new Uint8Array(Math.max(size, CARRY_SIZE, need === Infinity ? 0 : need));
      grown.set(carry.subarray(0, this.#carried));
      carry = this.#carry = grown;
    }
    const before = this.#carried;
    carry.set(bytes.subarray(0, take), before);
    this.#carried = size;
    if (before < HEADER_SIZE && size === HEADER_SIZE && take < bytes.length) {
      // The header just completed: now the body can be taken too.
      return take + this.#fill(bytes.subarray(take));
    }
    return take;
  }

  /**
   * Hands the deframer `bytes`, whose header at `bad` is refused, for the
   * frames before it and its error. A header cut short is padded for the
   * deframer to check: the bytes it would fail on are there already.
   */
  #refuse(bytes: Uint8Array, bad: number): StreamwireError {
    let input = bytes;
    if (bytes.length - bad < HEADER_SIZE) {
      input = new Uint8Array(bad + HEADER_SIZE);
      input.set(bytes);
    }
    return this.#deframe(input) ?? new StreamwireError(3, `Malformed frame header`);
  }

  #deframe(bytes: Uint8Array): StreamwireError | undefined {
    try {
      this.#deframer.push(bytes, this.#sink);
      return undefined;
    } catch (error) {
      return StreamwireError.from(error);
    }
  }
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at] * 0x1000000) + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
}

/**
 * The bytes of a received frame exactly as they were on the wire: the
 * deframer checked magic and version, and kept every other header field.
 */
export function frameBytes(frame: Frame): Uint8Array {
  const n = frame.body.length;
  const out = new Uint8Array(HEADER_SIZE + n);
  const view = new DataView(out.buffer);
  view.setUint16(0, MAGIC);
  out[2] = VERSION;
  out[3] = frame.flags;
  out[4] = frame.type;
  view.setUint32(5, n);
  view.setUint32(9, frame.seq);
  view.setUint32(13, frame.checksum ?? 0);
  out.set(frame.body, HEADER_SIZE);
  return out;
}
