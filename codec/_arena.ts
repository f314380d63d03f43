// Frames whose bodies an encoder allocated with a header's room before them.
// encodeFrames and FrameEncoderStage write headers in place only into these:
// the bytes before a caller's own body view belong to the caller.

import { HEADER_SIZE } from "./constants.ts";
import type { Frame } from "./frame.ts";

/** Buffers of encodeMessages: one per batch, every body with room before it. */
const arenas = new WeakSet<ArrayBufferLike>();

/** Records that `buffer` was allocated by an encoder, header room included. */
export function markArena(buffer: ArrayBufferLike): void {
  arenas.add(buffer);
}

/** Whether `buffer` was allocated by an encoder with header room. */
export function isArena(buffer: ArrayBufferLike): boolean {
  return arenas.has(buffer);
}

/**
 * A frame of MessageEncoderStage, whose body was allocated with room for
 * its header: cheaper to recognise than a buffer recorded in a WeakSet,
 * which costs as much as the allocation itself when done per message.
 */
export class RoomyFrame implements Frame {
  type: number;
  flags: number;
  seq: number;
  body: Uint8Array;
  /** The buffer allocated for this frame, to tell it from a body replaced later. */
  #own: ArrayBufferLike;

  constructor(type: number, flags: number, seq: number, body: Uint8Array) {
    this.type = type;
    this.flags = flags;
    this.seq = seq;
    this.body = body;
    this.#own = body.buffer;
  }

  /** Whether the header of `frame` may be written in the 17 bytes before its body. */
  static hasRoom(frame: Frame): boolean {
    return #own in frame && frame.body.buffer === frame.#own &&
      frame.body.byteOffset >= HEADER_SIZE;
  }
}
