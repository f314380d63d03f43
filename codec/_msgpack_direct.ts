// MessagePack written and read directly for the commonest payloads, byte
// for byte as msgpackr does, without its general path. Private: the msgpack
// codec of payload_codec.ts tries these first.

/**
 * Byte arrays are the most common RPC payload and msgpackr's general path
 * costs about 270 ns for one (codec/payload_codec_bench.ts): they are
 * written here directly, as `bin 8/16/32` exactly as msgpackr writes them,
 * into a shared slab like msgpackr's own, so a small value costs no
 * allocation of its own. Values of 1 KiB or more get a buffer of their own.
 */
const SLAB_SIZE = 8192;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

export function packBytes(value: Uint8Array): Uint8Array {
  const n = value.length;
  const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const size = head + n;
  let out: Uint8Array;
  if (size >= 1024) out = new Uint8Array(size);
  else out = slabTake(size);
  if (head === 2) {
    out[0] = 0xc4;
    out[1] = n;
  } else if (head === 3) {
    out[0] = 0xc5;
    out[1] = n >>> 8;
    out[2] = n;
  } else {
    out[0] = 0xc6;
    out[1] = n >>> 24;
    out[2] = n >>> 16;
    out[3] = n >>> 8;
    out[4] = n;
  }
  out.set(value, head);
  return out;
}

/** Takes `size` bytes of the slab. */
function slabTake(size: number): Uint8Array {
  if (slabUsed + size > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  return out;
}

const utf8Into = new TextEncoder();

/**
 * Scalars and short strings, written directly with the same encodings
 * msgpackr picks (the shortest integer of 32 bits or fewer; `fixstr`/`str 8`),
 * or undefined for anything else, which msgpackr then encodes.
 */
export function packScalar(value: unknown): Uint8Array | undefined {
  switch (typeof value) {
    case "number": {
      const n = value;
      if (n >>> 0 === n) {
        if (n < 0x80) return slabTake(1).fill(n);
        if (n < 0x100) return write2(0xcc, n);
        if (n < 0x10000) return write3(0xcd, n);
        const out = slabTake(5);
        out[0] = 0xce;
        out[1] = n >>> 24;
        out[2] = n >>> 16;
        out[3] = n >>> 8;
        out[4] = n;
        return out;
      }
      if (n >> 0 === n) {
        if (n >= -32) return slabTake(1).fill(n & 0xff);
        if (n >= -128) return write2(0xd0, n & 0xff);
        if (n >= -32768) return write3(0xd1, n & 0xffff);
        const out = slabTake(5);
        out[0] = 0xd2;
        out[1] = n >>> 24;
        out[2] = n >>> 16;
        out[3] = n >>> 8;
        out[4] = n;
        return out;
      }
      return undefined;
    }
    case "boolean":
      return slabTake(1).fill(value ? 0xc3 : 0xc2);
    case "string": {
      // Up to 3 UTF-8 bytes per UTF-16 unit: room for any string of 85 units.
      if (value.length > 85) return undefined;
      const room = slabTake(2 + 3 * value.length);
      const { written } = utf8Into.encodeInto(value, room.subarray(2));
      slabUsed -= 3 * value.length - written;
      if (written < 32) {
        room[1] = 0xa0 | written;
        return room.subarray(1, 2 + written);
      }
      room[0] = 0xd9;
      room[1] = written;
      return room.subarray(0, 2 + written);
    }
    case "object":
      if (value === null) return slabTake(1).fill(0xc0);
  }
  return undefined;
}

function write2(tag: number, n: number): Uint8Array {
  const out = slabTake(2);
  out[0] = tag;
  out[1] = n;
  return out;
}

function write3(tag: number, n: number): Uint8Array {
  const out = slabTake(3);
  out[0] = tag;
  out[1] = n >>> 8;
  out[2] = n;
  return out;
}

/** A `bin 8/16/32` that is the whole payload, as a view; undefined for anything else. */
export function unpackBytes(bytes: Uint8Array): Uint8Array | undefined {
  const tag = bytes[0];
  let head: number, n: number;
  if (tag === 0xc4) {
    head = 2;
    n = bytes[1];
  } else if (tag === 0xc5) {
    head = 3;
    n = (bytes[1] << 8) | bytes[2];
  } else if (tag === 0xc6) {
    head = 5;
    n = bytes[1] * 0x1000000 + ((bytes[2] << 16) | (bytes[3] << 8) | bytes[4]);
  } else return undefined;
  if (bytes.length !== head + n) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset + head, n);
}
