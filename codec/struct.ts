/**
 * A zero-copy struct encoding in the spirit of Cap'n Proto: fixed-width
 * big-endian fields and length-prefixed strings and bytes, written into one
 * growing buffer by {@linkcode StructBuilder} and read back in the same order
 * by {@linkcode StructReader} without copying.
 *
 * Layout: fields follow each other with no padding and no tags. Integers and
 * floats are big-endian like the frame header (PROTOCOL.md 1); `bool` is one
 * byte, 0 or 1; `string` and `bytes` are a u32 byte length followed by the
 * bytes (UTF-8 for strings). Both sides must agree on the field order.
 *
 * Malformed input (a read past the end, a length prefix larger than what
 * remains, a bool byte other than 0 or 1, invalid UTF-8) throws a
 * {@linkcode StreamwireError} with code `INVALID_ARGUMENT` (3): PROTOCOL.md 6
 * uses 3 for a malformed payload, while `OUT_OF_RANGE` (11) is kept for
 * iterating past a valid end.
 *
 * @module
 */

export * from "./struct_builder.ts";
export * from "./struct_reader.ts";
