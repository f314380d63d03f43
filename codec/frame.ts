/**
 * The frame model shared by every stage of the decode and encode chains.
 *
 * @module
 */

/**
 * One frame of PROTOCOL.md 1: the header fields and the body as bytes.
 *
 * Frames produced by {@linkcode DeframerStream} keep `checksum` so that
 * {@linkcode ChecksumStream} can verify them; `body` is then a view into the
 * read buffer (never a copy) with the frame's 17 header bytes right before it,
 * which the verifier reads in place rather than through a view per frame.
 */
export interface Frame {
  /** Frame type (PROTOCOL.md 2). */
  type: number;
  /** Flags byte: compression bits, EXT bit (PROTOCOL.md 1.1). */
  flags: number;
  /** Call id, or 0 for connection-level frames. */
  seq: number;
  /** Extension block (if flags has EXT) followed by the payload. */
  body: Uint8Array;
  /**
   * The CRC-32 field of a received frame. Without `header`, the 17 header
   * bytes must lie right before `body` in `body.buffer`, as the Deframer
   * leaves them.
   */
  checksum?: number;
  /**
   * The 17 header bytes of a received frame, for frames whose header does
   * not lie right before `body`; the Deframer leaves it out.
   */
  header?: Uint8Array;
}
