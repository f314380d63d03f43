/**
 * Payload encodings of one small record: JSON (baseline), the msgpack and
 * cbor codecs, and a hand-written struct layout. Run with
 * `deno bench -A codec/payload_codec_bench.ts`; targets: struct at least 4x
 * JSON both ways, msgpack at least 2x.
 *
 * Measured on the 2-vCPU dev VM (Deno 2.9.6), in ns per record, encode /
 * decode: JSON 776 / 601, msgpack 327 / 244, cbor 414 / 410, struct 77 / 114.
 * Much of JSON's encode time is `TextEncoder.encode` allocating a fresh
 * `ArrayBuffer` (hundreds of ns each in this VM), which the slab-backed
 * msgpack and cbor outputs and the reused struct builder avoid.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cborCodec, msgpackCodec } from "./payload_codec.ts";
import { StructBuilder, StructReader } from "./struct.ts";

interface SeedRecord {
  id: number;
  timestamp: number;
  value: number;
  status: string;
  message: string;
  tags: string[];
}

const SEED: SeedRecord = {
  id: 12345,
  timestamp: 1700000000000,
  value: 3.14159,
  status: "active",
  message: "Hello, World!",
  tags: ["alpha", "beta", "gamma"],
};

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

const builder = new StructBuilder();

/** Struct layout: u32 id, f64 timestamp, f64 value, status, message, u32 count, tags. */
function encodeStruct(record: SeedRecord): Uint8Array {
  builder.reset()
    .u32(record.id)
    .f64(record.timestamp)
    .f64(record.value)
    .string(record.status)
    .string(record.message)
    .u32(record.tags.length);
  for (const tag of record.tags) builder.string(tag);
  return builder.finish();
}

function decodeStruct(bytes: Uint8Array): SeedRecord {
  const reader = new StructReader(bytes);
  const id = reader.u32();
  const timestamp = reader.f64();
  const value = reader.f64();
  const status = reader.string();
  const message = reader.string();
  const count = reader.u32();
  const tags = new Array<string>(count);
  for (let i = 0; i < count; i++) tags[i] = reader.string();
  reader.assertEnd();
  return { id, timestamp, value, status, message, tags };
}

const jsonBytes = textEncoder.encode(JSON.stringify(SEED));
const msgpackBytes = msgpackCodec.encode(SEED).slice();
const cborBytes = cborCodec.encode(SEED).slice();
const structBytes = encodeStruct(SEED).slice();

// Every candidate decodes to the same record.
for (const decoded of [msgpackCodec.decode(msgpackBytes), cborCodec.decode(cborBytes)]) {
  assert.deepEqual(decoded, SEED);
}
assert.deepEqual(decodeStruct(structBytes), SEED);

// Encoded sizes of the record: JSON 130 bytes, msgpack 100, cbor 100, struct 77.

Deno.bench({
  group: "encode",
  name: "JSON.stringify + TextEncoder",
  baseline: true,
  fn() {
    textEncoder.encode(JSON.stringify(SEED));
  },
});

Deno.bench({
  group: "encode",
  name: "msgpackCodec",
  fn() {
    msgpackCodec.encode(SEED);
  },
});

Deno.bench({
  group: "encode",
  name: "cborCodec",
  fn() {
    cborCodec.encode(SEED);
  },
});

Deno.bench({
  group: "encode",
  name: "StructBuilder (reused)",
  fn() {
    encodeStruct(SEED);
  },
});

Deno.bench({
  group: "decode",
  name: "TextDecoder + JSON.parse",
  baseline: true,
  fn() {
    JSON.parse(textDecoder.decode(jsonBytes));
  },
});

Deno.bench({
  group: "decode",
  name: "msgpackCodec",
  fn() {
    msgpackCodec.decode(msgpackBytes);
  },
});

Deno.bench({
  group: "decode",
  name: "cborCodec",
  fn() {
    cborCodec.decode(cborBytes);
  },
});

Deno.bench({
  group: "decode",
  name: "StructReader (new per record)",
  fn() {
    decodeStruct(structBytes);
  },
});
