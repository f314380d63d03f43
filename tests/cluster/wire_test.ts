// Frames nodes forward: a broadcast to all has no extension block for each
// client to parse; a topic message has a fixed-width offset entry that
// receivers patch, with the CRC-32 recomputed; backplane messages and
// batches keep their text fields, ASCII or not, short or long.

import assert from "node:assert/strict";
import { decodeMessage } from "../../codec/message.ts";
import { DeframerStream } from "../../codec/deframer_stream.ts";
import {
  broadcastTemplate,
  decodeBatch,
  decodeNodeMessage,
  encodeBatch,
  encodeNodeMessage,
  frameOf,
  Kind,
  withOffset,
} from "../../cluster/_wire.ts";

const params = new Uint8Array([1, 2, 3]);

Deno.test("a broadcast to all is a plain BROADCAST; a topic message carries a patchable offset", async () => {
  const plain = decodeMessage(frameOf(broadcastTemplate("news", params, false)));
  assert.equal(plain.ext, undefined);
  const template = broadcastTemplate("room", params, true);
  const patched = withOffset(template, 1_234_567);
  // The patched frame passes the deframer's CRC check.
  const [frame] = await Array.fromAsync(
    ReadableStream.from([patched]).pipeThrough(new DeframerStream()),
  );
  const m = decodeMessage(frame);
  assert.deepEqual(m.ext?.metadata, [["offset", "0000000001234567"]]);
  assert.equal(patched.length, template.length);
});

Deno.test("backplane messages and batches round-trip ASCII, non-ASCII and long text fields", () => {
  for (
    const [origin, target, reason] of [
      ["n0", "", ""],
      ["nœud-é", "session-ü", "raison: trop lent 🚫"],
      ["n".repeat(300), "s".repeat(65), "x".repeat(1000)],
    ]
  ) {
    const frames = new Map([["msgpack", params], ["ünicode-codec", new Uint8Array([9])]]);
    const bytes = encodeNodeMessage({ kind: Kind.TOPIC, origin, target, frames, reason });
    const m = decodeNodeMessage(bytes);
    assert.deepEqual([m.kind, m.origin, m.target, m.reason], [Kind.TOPIC, origin, target, reason]);
    assert.deepEqual([...m.frames].map(([k, v]) => [k, [...v]]), [
      ["msgpack", [1, 2, 3]],
      ["ünicode-codec", [9]],
    ]);
    const batch = decodeBatch(encodeBatch(origin, [bytes, params]));
    assert.equal(batch.origin, origin);
    assert.deepEqual(batch.messages.map((x) => [...x]), [[...bytes], [1, 2, 3]]);
  }
});
