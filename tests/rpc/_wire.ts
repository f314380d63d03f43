// Frames built and parsed by hand from the protocol as docs/PROTOCOL.md states
// it, without the project's codec: a big-endian writer, node:zlib's CRC-32 and
// a header parser. Used to test interoperability and misbehaving peers.

import { crc32 } from "node:zlib";
import { guard, SAFETY_NET_MS } from "../transport/_helpers.ts";

/** Frame types of PROTOCOL.md 2, restated here on purpose. */
export const T = {
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  GOAWAY: 0x05,
  REQUEST: 0x10,
  RESPONSE: 0x11,
  NOTIFY: 0x12,
  BROADCAST: 0x13,
  BATCH: 0x14,
  BATCH_RESULT: 0x15,
  OPEN: 0x20,
  DATA: 0x21,
  END: 0x22,
  CANCEL: 0x23,
  CREDIT: 0x24,
  ERROR: 0xff,
} as const;

const HEADER = 17;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A growable big-endian byte writer. */
export class Writer {
  #bytes: number[] = [];
  u8(v: number): this {
    this.#bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u8(v >>> 24).u8(v >>> 16).u8(v >>> 8).u8(v);
  }
  raw(bytes: Uint8Array): this {
    for (const b of bytes) this.#bytes.push(b);
    return this;
  }
  utf8(text: string): this {
    return this.raw(utf8.encode(text));
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

/** UTF-8 JSON bytes of a value. */
export function json(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}

/** Parses UTF-8 JSON bytes. */
export function parseJson(bytes: Uint8Array): unknown {
  return JSON.parse(fromUtf8.decode(bytes));
}

/** One complete frame: header with CRC-32 over header[0..13) then the body. */
export function frame(
  type: number,
  seq: number,
  body: Uint8Array = new Uint8Array(0),
  flags = 0,
): Uint8Array {
  const head = new Writer().u16(0xcafe).u8(1).u8(flags).u8(type).u32(body.length).u32(seq).done();
  const crc = crc32(body, crc32(head));
  const out = new Uint8Array(HEADER + body.length);
  out.set(head, 0);
  new DataView(out.buffer).setUint32(13, crc >>> 0);
  out.set(body, HEADER);
  return out;
}

/** Recomputes the CRC of a complete frame after its header or body was changed. */
export function reseal(f: Uint8Array): Uint8Array {
  const crc = crc32(f.subarray(17), crc32(f.subarray(0, 13)));
  new DataView(f.buffer, f.byteOffset).setUint32(13, crc >>> 0);
  return f;
}

/** A call entry (2.1). */
export function callEntry(method: string, params: Uint8Array): Uint8Array {
  const name = utf8.encode(method);
  return new Writer().u16(name.length).raw(name).u32(params.length).raw(params).done();
}

/** A BATCH body (2): u32 count, then call entries. */
export function batchBody(entries: [string, Uint8Array][]): Uint8Array {
  const w = new Writer().u32(entries.length);
  for (const [m, p] of entries) w.raw(callEntry(m, p));
  return w.done();
}

/** A CREDIT body: u32 n. */
export function creditBody(n: number): Uint8Array {
  return new Writer().u32(n).done();
}

/** A frame parsed by hand. */
export interface RawFrame {
  magic: number;
  version: number;
  flags: number;
  type: number;
  length: number;
  seq: number;
  crc: number;
  /** Whether the CRC field matches crc32(body, crc32(header[0..13))). */
  crcOk: boolean;
  body: Uint8Array;
}

/** Splits complete frames off the front of `buffer`; returns them and the rest. */
export function parseFrames(buffer: Uint8Array): { frames: RawFrame[]; rest: Uint8Array } {
  const frames: RawFrame[] = [];
  let o = 0;
  while (buffer.length - o >= HEADER) {
    const v = new DataView(buffer.buffer, buffer.byteOffset + o);
    const length = v.getUint32(5);
    if (buffer.length - o < HEADER + length) break;
    const head = buffer.subarray(o, o + 13);
    const body = buffer.slice(o + HEADER, o + HEADER + length);
    const crc = v.getUint32(13);
    frames.push({
      magic: v.getUint16(0),
      version: v.getUint8(2),
      flags: v.getUint8(3),
      type: v.getUint8(4),
      length,
      seq: v.getUint32(9),
      crc,
      crcOk: (crc32(body, crc32(head)) >>> 0) === crc,
      body,
    });
    o += HEADER + length;
  }
  return { frames, rest: buffer.slice(o) };
}

/** Reads the body of an ERROR or CANCEL: u16 code, UTF-8 message. */
export function statusOf(body: Uint8Array): { code: number; message: string } {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { code: v.getUint16(0), message: fromUtf8.decode(body.subarray(2)) };
}

/** Reads a BATCH_RESULT body (2.2). */
export function batchResults(body: Uint8Array): { code: number; data: Uint8Array }[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = v.getUint32(0);
  const out = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    const code = v.getUint16(o);
    const len = v.getUint32(o + 2);
    out.push({ code, data: body.slice(o + 6, o + 6 + len) });
    o += 6 + len;
  }
  return out;
}

/**
 * A peer speaking frames by hand over any byte streams: writes frames,
 * reads and parses them. Reads await the next frame however long it takes
 * (up to the safety net, which only turns a hang into a failure).
 */
export class RawPeer {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);
  #frames: RawFrame[] = [];
  #read: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  #close: () => void;
  #syncs = 0;
  eof = false;

  constructor(
    streams: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> },
    close: () => void,
  ) {
    this.#writer = streams.writable.getWriter();
    this.#reader = streams.readable.getReader();
    this.#close = close;
  }

  /** Opens a TCP connection to `addr` (`tcp://host:port`). */
  static async tcp(addr: string): Promise<RawPeer> {
    const url = new URL(addr);
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
    return new RawPeer(conn, () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    });
  }

  async send(...frames: Uint8Array[]): Promise<void> {
    let total = 0;
    for (const f of frames) total += f.length;
    const all = new Uint8Array(total);
    let o = 0;
    for (const f of frames) {
      all.set(f, o);
      o += f.length;
    }
    await this.#writer.write(all);
  }

  /** The next frame; rejects with "EOF before the next frame" at the end of the stream. */
  async next(safetyNetMs = SAFETY_NET_MS): Promise<RawFrame> {
    while (this.#frames.length === 0) {
      if (this.eof) throw new Error("EOF before the next frame");
      this.#read ??= this.#reader.read();
      const result = await guard(this.#read, "the next frame", safetyNetMs);
      this.#read = undefined;
      if (result.done) {
        this.eof = true;
        continue;
      }
      const joined = new Uint8Array(this.#buffer.length + result.value.length);
      joined.set(this.#buffer);
      joined.set(result.value, this.#buffer.length);
      const { frames, rest } = parseFrames(joined);
      this.#buffer = rest;
      this.#frames.push(...frames);
    }
    return this.#frames.shift()!;
  }

  /** Frames until one matches `pred` (the others are returned too). */
  async until(pred: (f: RawFrame) => boolean): Promise<RawFrame[]> {
    const out: RawFrame[] = [];
    for (;;) {
      const f = await this.next();
      out.push(f);
      if (pred(f)) return out;
    }
  }

  /**
   * Sends a PING and reads until its PONG; returns the frames that came
   * before it. The other side reads frames in order and answers a PING when
   * it reads it, so what it sent before reading this PING is in the result:
   * a frame not in it was not sent before.
   */
  async sync(): Promise<RawFrame[]> {
    const payload = Uint8Array.of(0x5a, 0x5a, 0x5a, ++this.#syncs & 0xff);
    await this.send(frame(T.PING, 0, payload));
    const before: RawFrame[] = [];
    for (;;) {
      const f = await this.next();
      const pong = f.type === T.PONG && f.body.length === payload.length &&
        f.body.every((b, i) => b === payload[i]);
      if (pong) return before;
      before.push(f);
    }
  }

  async close(): Promise<void> {
    this.#close();
    await this.#read?.catch(() => {});
    await this.#reader.cancel().catch(() => {});
    await this.#writer.abort().catch(() => {});
  }
}
