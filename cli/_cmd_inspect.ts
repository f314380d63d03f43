// `streamwire inspect`: frames on stdin as a listing a person reads, one row
// per frame (offset, type, seq, flags, length, checksum verdict, payload
// preview), extensions and an optional hex dump under it.

import { verifyChecksum } from "../codec/checksum_stream.ts";
import { decompressFrame } from "../codec/compression_stream.ts";
import { Flag, FrameType } from "../codec/constants.ts";
import { statusName, StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import { decodeMessage, type Extensions, type Message } from "../codec/message.ts";
import { getCodec, isCodecName, type PayloadCodec } from "../codec/payload_codec.ts";
import { choiceFlag, CliError, type Command, Exit, intFlag } from "./_command.ts";
import { maxFrameFlag, readFrames } from "./_cmd_frames.ts";
import { frameBytes } from "./_frames_read.ts";

const TYPE_NAMES = new Map<number, string>(
  Object.entries(FrameType).map(([name, code]) => [code, name]),
);
const CODEC_CHOICES = ["auto", "json", "msgpack", "cbor", "raw"] as const;
type CodecChoice = typeof CODEC_CHOICES[number];

/** Default width of the payload preview, in characters. */
const DEFAULT_WIDTH = 72;
/** Indent of the lines under a row (extensions, checks, hex dump). */
const INDENT = "    ";

export const inspectCommand: Command = {
  name: "inspect",
  summary: "frames on stdin as a readable listing",
  usage: "streamwire inspect [--codec auto|json|msgpack|cbor|raw] [--hex] [options]",
  help: [
    "Lists the frames on stdin (a capture, the output of 'encode'), one row per frame:",
    "",
    "  OFFSET   byte offset of the frame in the input",
    "  TYPE     frame type; SEQ the call id",
    "  FLAGS    compression (zlib, lz4, zstd) and EXT, or -",
    "  LENGTH   body bytes on the wire",
    "  CRC      ok, or BAD (the expected and computed values follow under the row)",
    "  PAYLOAD  a preview: method and params, result, status and message...",
    "",
    "Extensions (timeout, traceparent, tracestate, metadata) follow under their row. A bad",
    "checksum or a body that does not decode is listed and the listing goes on; the",
    "command then exits 2. A frame whose boundary is lost (bad magic or version, a length",
    "over --max-frame, input cut inside a frame) stops it with exit 2 and its offset.",
    "",
    "Options:",
    "  --codec NAME       payload codec of the preview; auto (default) tries the codec of",
    "                     the last HELLO_ACK, then msgpack, then JSON, else shows hex",
    "  --hex              add a hex dump of each frame",
    `  --width N          cut previews to N characters (default ${DEFAULT_WIDTH}, 0: no limit)`,
    "  --max-frame BYTES  largest frame body (default 16777216)",
    "  --json             one JSON object per frame instead of the table",
    "",
    "Examples:",
    "  streamwire inspect < capture.bin",
    `  echo '{"type":"REQUEST","seq":1,"method":"add","params":[2,40]}' |`,
    "    streamwire encode --codec msgpack | streamwire inspect --hex",
  ].join("\n"),
  flags: {
    codec: { type: "string" },
    hex: { type: "boolean" },
    width: { type: "string" },
    "max-frame": { type: "string" },
  },
  positionals: [0, 0],
  async run({ flags }, io) {
    const choice = choiceFlag(flags, "codec", CODEC_CHOICES, "auto");
    const width = intFlag(flags, "width", { min: 0, max: 1 << 20, default: DEFAULT_WIDTH });
    const maxFrame = maxFrameFlag(flags);
    const json = flags.json === true;
    const preview = new Preview(choice, width);
    let frames = 0;
    let failed = 0;
    let firstFailure: { offset: number; error: StreamwireError } | undefined;
    if (!json) io.stdout.line(HEADER);
    await readFrames(io, maxFrame, async (batch) => {
      for (const { frame, offset } of batch) {
        frames++;
        const row = inspectFrame(frame, offset, maxFrame, preview);
        if (row.failure !== undefined) {
          failed++;
          firstFailure ??= { offset, error: row.failure };
        }
        const lines = json ? [JSON.stringify(rowJson(row, flags.hex === true))] : rowLines(row);
        if (!json && flags.hex === true) lines.push(...hexDump(frameBytes(frame), offset));
        for (const line of lines) {
          const wait = io.stdout.line(line);
          if (wait !== undefined) await wait;
        }
      }
    });
    if (firstFailure !== undefined && !io.stdout.closed) {
      const { offset, error } = firstFailure;
      throw new CliError(
        error.codeName,
        `${failed} of ${frames} frames failed their checks, the first at offset ${offset}: ` +
          error.message,
        Exit.USAGE,
      );
    }
  },
};

const HEADER = `${"OFFSET".padStart(8)}  ${"TYPE".padEnd(12)}  ${"SEQ".padStart(10)}  ${
  "FLAGS".padEnd(8)
}  ${"LENGTH".padStart(8)}  CRC  PAYLOAD`;

/** What inspect found in one frame. */
interface Row {
  offset: number;
  frame: Frame;
  crc: "ok" | "BAD";
  /** The CRC error, the decompression or decoding error. */
  notes: string[];
  failure: StreamwireError | undefined;
  ext: Extensions | undefined;
  preview: string;
}

function inspectFrame(frame: Frame, offset: number, maxFrame: number, preview: Preview): Row {
  const row: Row = {
    offset,
    frame,
    crc: "ok",
    notes: [],
    failure: undefined,
    ext: undefined,
    preview: "",
  };
  try {
    verifyChecksum(frame);
  } catch (error) {
    row.crc = "BAD";
    row.failure = StreamwireError.from(error);
    row.notes.push(row.failure.message);
  }
  try {
    const message = decodeMessage(decompressFrame(frame, { maxFrame }));
    row.ext = message.ext;
    row.preview = preview.message(message);
  } catch (error) {
    const e = StreamwireError.from(error);
    row.failure ??= e;
    row.notes.push(`${e.codeName}: ${e.message}`);
    row.preview = "(does not decode)";
  }
  return row;
}

function rowLines(row: Row): string[] {
  const { frame } = row;
  const lines = [
    `${String(row.offset).padStart(8)}  ${(TYPE_NAMES.get(frame.type) ?? "?").padEnd(12)}  ${
      String(frame.seq).padStart(10)
    }  ${flagNames(frame.flags).padEnd(8)}  ${String(frame.body.length).padStart(8)}  ${
      row.crc.padEnd(3)
    }  ${row.preview}`.trimEnd(),
  ];
  const ext = extText(row.ext);
  if (ext !== "") lines.push(`${INDENT}ext: ${ext}`);
  for (const note of row.notes) lines.push(`${INDENT}!! ${note}`);
  return lines;
}

function rowJson(row: Row, hex: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    offset: row.offset,
    type: TYPE_NAMES.get(row.frame.type),
    seq: row.frame.seq,
    flags: flagNames(row.frame.flags),
    length: row.frame.body.length,
    crc: row.crc,
  };
  if (row.ext !== undefined) out.ext = row.ext;
  out.preview = row.preview;
  if (row.notes.length > 0) out.errors = row.notes;
  if (hex) out.hex = frameBytes(row.frame).toHex();
  return out;
}

/** The flag bits by name, for listings: `EXT|zstd`, or `-` for none. */
function flagNames(flags: number): string {
  const names: string[] = [];
  const algorithm = flags & Flag.COMPRESSION_MASK;
  if (algorithm !== 0) names.push(["", "zlib", "lz4", "zstd"][algorithm]);
  if (flags & Flag.EXT) names.push("EXT");
  if (flags & Flag.ENCRYPTED) names.push("ENCRYPTED");
  if (flags & Flag.RESERVED_MASK) names.push(`reserved:0x${(flags & 0xf0).toString(16)}`);
  return names.length === 0 ? "-" : names.join("|");
}

function extText(ext: Extensions | undefined): string {
  if (ext === undefined) return "";
  const parts: string[] = [];
  if (ext.timeoutMs !== undefined) parts.push(`timeout=${ext.timeoutMs}ms`);
  if (ext.traceparent !== undefined) parts.push(`traceparent=${ext.traceparent}`);
  if (ext.tracestate !== undefined) parts.push(`tracestate=${ext.tracestate}`);
  for (const [name, value] of ext.metadata ?? []) {
    parts.push(`metadata ${name}=${JSON.stringify(value)}`);
  }
  return parts.length === 0 ? "(empty block)" : parts.join(" ");
}

/** `xxd`-style lines: offset, 16 bytes in two groups of 8, the printable ASCII. */
function hexDump(bytes: Uint8Array, base: number): string[] {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    let hex = "";
    let ascii = "";
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += " ";
      if (i < row.length) {
        hex += row[i].toString(16).padStart(2, "0") + " ";
        ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
      } else hex += "   ";
    }
    lines.push(`${INDENT}${(base + at).toString(16).padStart(8, "0")}  ${hex} |${ascii}|`);
  }
  return lines;
}

/** Payload previews, with the codec choice and what the stream negotiated. */
class Preview {
  #choice: CodecChoice;
  #width: number;
  /** The codec of the last HELLO_ACK seen, tried first in auto mode. */
  #negotiated: PayloadCodec | undefined;

  constructor(choice: CodecChoice, width: number) {
    this.#choice = choice;
    this.#width = width;
  }

  message(message: Message): string {
    return this.#cut(this.#text(message));
  }

  #text(m: Message): string {
    switch (m.type) {
      case FrameType.HELLO:
        return JSON.stringify(m.hello);
      case FrameType.HELLO_ACK: {
        const codec = m.ack.codec;
        if (typeof codec === "string" && isCodecName(codec)) this.#negotiated = getCodec(codec);
        return JSON.stringify(m.ack);
      }
      case FrameType.PING:
      case FrameType.PONG:
        return m.payload.length === 0 ? "" : `<hex ${m.payload.toHex()}>`;
      case FrameType.GOAWAY:
        return `${statusName(m.code)} lastId=${m.lastId} ${JSON.stringify(m.reason)}`;
      case FrameType.REQUEST:
      case FrameType.NOTIFY:
      case FrameType.BROADCAST:
      case FrameType.OPEN:
        return `${m.method} ${this.#value(m.params)}`.trimEnd();
      case FrameType.RESPONSE:
      case FrameType.DATA:
        return this.#value(m.data);
      case FrameType.BATCH:
        return `${m.entries.length} call${m.entries.length === 1 ? "" : "s"}: ` +
          m.entries.map((e) => `${e.method} ${this.#value(e.params)}`.trimEnd()).join("; ");
      case FrameType.BATCH_RESULT:
        return `${m.results.length} result${m.results.length === 1 ? "" : "s"}: ` +
          m.results.map((r) =>
            r.code === 0
              ? `ok ${this.#value(r.data)}`.trimEnd()
              : `${statusName(r.code)} ${JSON.stringify(new TextDecoder().decode(r.data))}`
          ).join("; ");
      case FrameType.END:
        return "";
      case FrameType.CANCEL:
      case FrameType.ERROR:
        return `${statusName(m.code)} ${JSON.stringify(m.message)}`;
      case FrameType.CREDIT:
        return `+${m.credit}`;
    }
  }

  /** A payload as JSON text if a codec decodes it, else hex; empty for no value. */
  #value(bytes: Uint8Array): string {
    if (bytes.length === 0) return "";
    for (const codec of this.#codecs()) {
      if (codec.name === "raw") break;
      try {
        return valueText(codec.decode(bytes));
      } catch {
        // Not this codec's bytes: try the next.
      }
    }
    // Hex of what the preview can show, not of a whole 16 MiB payload.
    const shown = this.#width === 0 ? bytes : bytes.subarray(0, this.#width);
    return `<hex ${shown.toHex()}${shown.length < bytes.length ? "..." : ""}>`;
  }

  #codecs(): PayloadCodec[] {
    if (this.#choice !== "auto") return [getCodec(this.#choice)];
    const order = [getCodec("msgpack"), getCodec("json")];
    const negotiated = this.#negotiated;
    return negotiated === undefined
      ? order
      : [negotiated, ...order.filter((c) => c !== negotiated)];
  }

  #cut(text: string): string {
    const width = this.#width;
    if (width === 0 || text.length <= width) return text;
    return text.slice(0, Math.max(0, width - 3)) + "...";
  }
}

/** JSON text of a decoded value; bytes, big integers and undefined shown their own way. */
function valueText(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") return `${v}n`;
    if (v instanceof Uint8Array) return `<bin ${v.toHex()}>`;
    if (v === undefined) return null;
    return v;
  });
  return text ?? "null";
}
