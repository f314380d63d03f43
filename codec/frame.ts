/**
 * The frame model shared by every stage of the decode and encode chains.
 *
 * @module
 */

/**
 * One frame of PROTOCOL.md 1: the header fields and the body as bytes.
 *
 * Frames produced by {@linkcode DeframerStream} keep `header` and `checksum`
 * so that {@linkcode ChecksumStream} can verify them; `body` is then a view
 * into the read buffer, never a copy.
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
  /** The CRC-32 field of a received frame. */
  checksum?: number;
  /** The 17 header bytes of a received frame, as read. */
  header?: Uint8Array;
}
