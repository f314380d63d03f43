// `streamwire encode` and `streamwire decode`: NDJSON messages to frames and
// back (docs/CLI_FRAMES.md), streaming in bounded memory.

import { verifyChecksum } from "../codec/checksum_stream.ts";
import { compress } from "../codec/compression.ts";
import { decompressFrame } from "../codec/compression_stream.ts";
import {
  COMPRESSION_NAMES,
  type CompressionName,
  DEFAULT_MAX_FRAME,
  Status,
} from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import { decodeMessage, type Message, splitBody } from "../codec/message.ts";
import { encodedBodySize } from "../codec/message_encode.ts";
import { encodeMessages } from "../codec/message_stream.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import { badInput, choiceFlag, type CliIo, type Command, type Flags, intFlag } from "./_command.ts";
import { chunksOf, type FrameAt, linesOf, OffsetDeframer } from "./_frames_read.ts";
import { messageFromJson, messageToJson } from "./frames.ts";

/** Codecs a payload can be given or printed as a JSON value with. */
const CODECS = ["json", "msgpack", "cbor"] as const;
const COMPRESSIONS = ["zlib", "lz4", "zstd"] as const;

/** The `--codec` flag: a payload codec, or undefined for hex. */
export function codecFlag(flags: Flags): PayloadCodec | undefined {
  if (flags.codec === undefined) return undefined;
  return getCodec(choiceFlag(flags, "codec", CODECS, "json"));
}

/** The `--max-frame` flag: the largest frame body read or written. */
export function maxFrameFlag(flags: Flags): number {
  return intFlag(flags, "max-frame", { min: 0, max: 0xffffffff, default: DEFAULT_MAX_FRAME });
}

const MAX_FRAME_HELP =
  "  --max-frame BYTES  largest frame body (default 16777216, PROTOCOL.md 1.3)";

/**
 * Longest input line: hex doubles a payload and a JSON array of small
 * numbers takes up to four bytes per byte, so four frames' worth bounds
 * any line that encodes to one frame (at least 1 MiB).
 */
function maxLineOf(maxFrame: number): number {
  return Math.max(1024 * 1024, 4 * maxFrame);
}

export const encodeCommand: Command = {
  name: "encode",
  summary: "NDJSON messages on stdin to frames on stdout",
  usage: "streamwire encode [--codec json|msgpack|cbor] [--compress zlib|lz4|zstd] [options]",
  help: [
    "Reads one JSON message per line (the form 'decode' prints, see docs/CLI_FRAMES.md) and",
    "writes one frame per line. Blank lines are skipped; the capture annotations conn, dir",
    "and offset are ignored, so that 'capture --json' output replays. The first invalid",
    "line stops the command with exit 2, naming the line; the frames of the lines before it",
    "are written.",
    "",
    "Options:",
    "  --codec NAME       params, data and results are JSON values, encoded with this codec",
    "                     (without it, bytes are hex under paramsHex, dataHex, payloadHex)",
    "  --compress NAME    compress every non-empty payload and set the flag",
    MAX_FRAME_HELP,
    "",
    "Examples:",
    `  echo '{"type":"REQUEST","seq":1,"method":"add","params":[2,40]}' |`,
    "    streamwire encode --codec msgpack | streamwire inspect",
    "  streamwire encode --compress zstd < calls.ndjson | streamwire decode",
  ].join("\n"),
  flags: {
    codec: { type: "string" },
    compress: { type: "string" },
    "max-frame": { type: "string" },
  },
  positionals: [0, 0],
  async run({ flags }, io) {
    const codec = codecFlag(flags);
    const algorithm = flags.compress === undefined
      ? undefined
      : choiceFlag(flags, "compress", COMPRESSIONS, "zstd");
    const maxFrame = maxFrameFlag(flags);
    const messages: Message[] = [];
    const sizes: number[] = [];
    for await (
      const { lines, first } of linesOf(chunksOf(io.stdin, io.signal), maxLineOf(maxFrame))
    ) {
      let failure: LineFailure | undefined;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (isBlank(line)) continue;
        try {
          const message = messageFromJson(parseLine(line), { codec });
          const size = encodedBodySize(message);
          if (size > maxFrame) throw tooLarge(size, maxFrame);
          messages.push(message);
          sizes.push(size);
        } catch (error) {
          failure = { where: `line ${first + i}`, error };
          break;
        }
      }
      let bytes: Uint8Array | undefined;
      if (messages.length > 0) {
        let frames = encodeMessages(messages, sizes);
        if (algorithm !== undefined) {
          for (let i = 0; i < frames.length; i++) {
            try {
              frames[i] = compressPayload(frames[i], algorithm, maxFrame);
            } catch (error) {
              // Only the frames before the one that failed are written.
              frames = frames.slice(0, i);
              failure = { where: `line ${lineOf(lines, first, i)}`, error };
              break;
            }
          }
        }
        bytes = encodeFrames(frames);
        messages.length = 0;
        sizes.length = 0;
      }
      if (bytes !== undefined) await io.stdout.write(bytes);
      if (failure !== undefined) throw badInput(failure.where, failure.error);
      if (io.stdout.closed) return;
    }
    // Interrupted: main exits 130 (a closed stdout: quietly, 0).
    io.signal.throwIfAborted();
  },
};

/** The first bad line of a batch and what is wrong with it. */
interface LineFailure {
  where: string;
  error: unknown;
}

function isBlank(line: string): boolean {
  // A message line starts with "{": only other lines need a look at their spaces.
  return line.length === 0 || (line.charCodeAt(0) !== 0x7b && line.trim().length === 0);
}

/** The number of the `index`th non-blank line of a batch. */
function lineOf(lines: string[], first: number, index: number): number {
  let seen = -1;
  for (let i = 0; i < lines.length; i++) {
    if (!isBlank(lines[i]) && ++seen === index) return first + i;
  }
  return first + lines.length - 1;
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new StreamwireError(Status.INVALID_ARGUMENT, `Not JSON: ${(error as Error).message}`);
  }
}

function tooLarge(size: number, maxFrame: number): StreamwireError {
  return new StreamwireError(
    Status.RESOURCE_EXHAUSTED,
    `Frame length '${size}' exceeds maxFrame '${maxFrame}'`,
  );
}

/**
 * Compresses the payload of a frame, whatever the gain: the user asked for
 * compressed frames. An empty payload has nothing to compress and stays plain.
 */
function compressPayload(frame: Frame, algorithm: CompressionName, maxFrame: number): Frame {
  const { ext, payload } = splitBody(frame.flags, frame.body);
  if (payload.length === 0) return frame;
  const packed = compress(COMPRESSION_NAMES[algorithm], payload);
  const extBytes = ext === undefined ? 0 : 2 + ext.length;
  const body = new Uint8Array(extBytes + packed.length);
  body.set(frame.body.subarray(0, extBytes), 0);
  body.set(packed, extBytes);
  if (body.length > maxFrame) throw tooLarge(body.length, maxFrame);
  return {
    type: frame.type,
    flags: frame.flags | COMPRESSION_NAMES[algorithm],
    seq: frame.seq,
    body,
  };
}

export const decodeCommand: Command = {
  name: "decode",
  summary: "frames on stdin to NDJSON messages on stdout",
  usage: "streamwire decode [--codec json|msgpack|cbor] [options]",
  help: [
    "Reads frames (a capture, the output of 'encode') and prints one JSON message per",
    "frame in the canonical form of docs/CLI_FRAMES.md. Compressed payloads are",
    "decompressed, up to --max-frame bytes. A malformed frame (bad magic, version or",
    "checksum, a length over --max-frame, a stream cut inside a frame, a body that does",
    "not decode) stops the command with exit 2, naming its byte offset; the frames",
    "before it are printed.",
    "",
    "Options:",
    "  --codec NAME       print params, data and results as JSON values decoded with this",
    "                     codec (payloads it cannot decode stay hex)",
    MAX_FRAME_HELP,
    "",
    "Examples:",
    "  streamwire decode --codec msgpack < capture.bin",
    "  streamwire encode --compress zstd < calls.ndjson | streamwire decode",
  ].join("\n"),
  flags: {
    codec: { type: "string" },
    "max-frame": { type: "string" },
  },
  positionals: [0, 0],
  async run({ flags }, io) {
    const options = { codec: codecFlag(flags) };
    const maxFrame = maxFrameFlag(flags);
    await readFrames(io, maxFrame, async (frames) => {
      for (let i = 0; i < frames.length; i++) {
        const { frame, offset } = frames[i];
        let message: Message;
        try {
          message = frameMessage(frame, maxFrame);
        } catch (error) {
          throw badInput(`offset ${offset}`, error);
        }
        const wait = io.stdout.line(JSON.stringify(messageToJson(message, options)));
        if (wait !== undefined) await wait;
      }
    });
  },
};

/** The message of a received frame: checksum verified, payload decompressed within `maxFrame`. */
export function frameMessage(frame: Frame, maxFrame: number): Message {
  verifyChecksum(frame);
  return decodeMessage(decompressFrame(frame, { maxFrame }));
}

/**
 * Reads frames from stdin and hands them to `each`, a read's worth at a time,
 * until the input ends, stdout closes or the signal aborts. A malformed
 * header or a stream cut inside a frame fails with its offset after the
 * frames before it were handled.
 */
export async function readFrames(
  io: CliIo,
  maxFrame: number,
  each: (frames: FrameAt[]) => Promise<void>,
): Promise<void> {
  const deframer = new OffsetDeframer(maxFrame);
  const frames: FrameAt[] = [];
  for await (const chunk of chunksOf(io.stdin, io.signal, { reuse: true })) {
    frames.length = 0;
    const failure = deframer.push(chunk, frames);
    if (frames.length > 0) await each(frames);
    if (failure !== undefined) throw badInput(`offset ${deframer.position}`, failure);
    if (io.stdout.closed) return;
  }
  // Interrupted: main exits 130 (a closed stdout: quietly, 0).
  io.signal.throwIfAborted();
  const failure = deframer.end();
  if (failure !== undefined) throw badInput(`offset ${deframer.position}`, failure);
}
