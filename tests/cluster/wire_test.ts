// Frames nodes forward: a broadcast to all has no extension block for each
// client to parse; a topic message has a fixed-width offset entry that
// receivers patch, with the CRC-32 recomputed.

import assert from "node:assert/strict";
import { decodeMessage } from "../../codec/message.ts";
import { DeframerStream } from "../../codec/deframer_stream.ts";
import { broadcastTemplate, frameOf, withOffset } from "../../cluster/_wire.ts";

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
