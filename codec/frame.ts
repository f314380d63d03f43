/**
 * The frame model shared by every stage of the decode and encode chains.
 *
 * @module
 */

/**
 * One frame of PROTOCOL.md 1: the header fields and the body as bytes.
 *
 * Frames produced by {@linkcode Deframer} keep `checksum` so that
 * {@linkcode verifyChecksum} can check them; `body` is then a view into the
 * read buffer (never a copy). The verifier rebuilds the checksummed header
 * bytes from `flags`, `type`, the body length and `seq`, so a received frame
 * carries no header view.
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
   * The CRC-32 field of a received frame. Without `header`, the checksummed
   * header bytes are rebuilt from the other fields (magic and version being
   * those of v1).
   */
  checksum?: number;
  /**
   * The 17 header bytes of a received frame, checked as they are instead of
   * rebuilt from the fields; the Deframer leaves it out.
   */
  header?: Uint8Array;
}
