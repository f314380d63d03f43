/**
 * Frames as JSON lines and back, for shell pipelines:
 *
 * ```sh
 * deno run -A cli/frames.ts decode < capture.bin      # one JSON object per frame
 * deno run -A cli/frames.ts encode < frames.jsonl > capture.bin
 * ```
 *
 * Byte fields are written as lowercase hex under a `Hex`-suffixed key
 * (`paramsHex`, `dataHex`, `payloadHex`).
 *
 * @module
 */

import { createDecodeChain, createEncodeChain } from "../codec/chain.ts";
import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import { fromHex, toHex } from "../codec/_bytes.ts";
import { LineStream } from "./_line_stream.ts";

const TYPE_NAMES = new Map<number, string>(
  Object.entries(FrameType).map(([name, code]) => [code, name]),
);

/**
 * A message as a JSON-friendly object: `type` by name, bytes as hex.
 *
 * @param message Any message.
 * @returns A plain object for `JSON.stringify`.
 *
 * @example Usage
 * ```ts
 * import { messageToJson } from "@streamwire/streamwire/cli";
 * import { FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const json = messageToJson({ type: FrameType.CREDIT, seq: 3, credit: 64 });
 * assert.deepEqual(json, { type: "CREDIT", seq: 3, credit: 64 });
 * ```
 */
export function messageToJson(message: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key === "type") out.type = TYPE_NAMES.get(value as number);
    else if (value instanceof Uint8Array) out[`${key}Hex`] = toHex(value);
    else if (key === "entries" || key === "results") {
      out[key] = (value as Record<string, unknown>[]).map((entry) => {
        const e: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(entry)) {
          if (v instanceof Uint8Array) e[`${k}Hex`] = toHex(v);
          else e[k] = v;
        }
        return e;
      });
    } else out[key] = value;
  }
  return out;
}

/**
 * The inverse of {@linkcode messageToJson}.
 *
 * @param json An object with `type` (name or number) and the message's fields.
 * @returns The message.
 * @throws {StreamwireError} `invalid_argument` for an unknown type.
 *
 * @example Usage
 * ```ts
 * import { messageFromJson } from "@streamwire/streamwire/cli";
 * import { FrameType } from "@streamwire/streamwire/codec";
 * import assert from "node:assert/strict";
 *
 * const message = messageFromJson({ type: "REQUEST", seq: 1, method: "echo", paramsHex: "c0" });
 * assert.equal(message.type, FrameType.REQUEST);
 * ```
 */
export function messageFromJson(json: Record<string, unknown>): Message {
  const type = typeof json.type === "number"
    ? json.type
    : FrameType[json.type as keyof typeof FrameType];
  if (type === undefined || !TYPE_NAMES.has(type)) {
    throw new StreamwireError(Status.INVALID_ARGUMENT, `Unknown frame type '${String(json.type)}'`);
  }
  const convert = (object: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(object)) {
      if (key.endsWith("Hex") && typeof value === "string") out[key.slice(0, -3)] = fromHex(value);
      else if ((key === "entries" || key === "results") && Array.isArray(value)) {
        out[key] = value.map((e) => convert(e as Record<string, unknown>));
      } else out[key] = value;
    }
    return out;
  };
  const message = convert(json);
  message.type = type;
  message.seq ??= 0;
  return message as unknown as Message;
}

async function main(args: string[]): Promise<number> {
  const [command] = args;
  if (command === "decode") {
    await Deno.stdin.readable
      .pipeThrough(createDecodeChain())
      .pipeThrough(
        new TransformStream<Message[], string>({
          transform(batch, controller) {
            controller.enqueue(batch.map((m) => JSON.stringify(messageToJson(m)) + "\n").join(""));
          },
        }),
      )
      .pipeThrough(new TextEncoderStream())
      .pipeTo(Deno.stdout.writable);
    return 0;
  }
  if (command === "encode") {
    await Deno.stdin.readable
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new LineStream())
      .pipeThrough(
        new TransformStream<string, Message[]>({
          transform(line, controller) {
            if (line.trim() !== "") controller.enqueue([messageFromJson(JSON.parse(line))]);
          },
        }),
      )
      .pipeThrough(createEncodeChain())
      .pipeTo(Deno.stdout.writable);
    return 0;
  }
  console.error("Usage: frames.ts decode|encode  (frames on stdin, JSON lines or bytes on stdout)");
  return 2;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    const e = StreamwireError.from(error);
    console.error(`frames: ${e.codeName}: ${e.message}`);
    Deno.exit(1);
  }
}
