import assert from "node:assert/strict";
import fc from "fast-check";
import { StructBuilder, StructReader } from "../../codec/struct.ts";
import { StreamwireError } from "../../codec/error.ts";

type Field =
  | { kind: "u8" | "u16" | "u32" | "i32" | "f64"; value: number }
  | { kind: "u64" | "i64"; value: bigint }
  | { kind: "bool"; value: boolean }
  | { kind: "string"; value: string }
  | { kind: "bytes"; value: Uint8Array };

function write(builder: StructBuilder, fields: readonly Field[]): Uint8Array {
  for (const field of fields) {
    switch (field.kind) {
      case "u64":
      case "i64":
        builder[field.kind](field.value);
        break;
      case "bool":
        builder.bool(field.value);
        break;
      case "string":
        builder.string(field.value);
        break;
      case "bytes":
        builder.bytes(field.value);
        break;
      default:
        builder[field.kind](field.value);
    }
  }
  return builder.finish();
}

function read(reader: StructReader, fields: readonly Field[]): unknown[] {
  return fields.map((field) => reader[field.kind]());
}

const ALL_KINDS: Field[] = [
  { kind: "u8", value: 0 },
  { kind: "u8", value: 255 },
  { kind: "u16", value: 65535 },
  { kind: "u32", value: 0xffff_ffff },
  { kind: "i32", value: -2147483648 },
  { kind: "i32", value: 2147483647 },
  { kind: "f64", value: 3.14159 },
  { kind: "f64", value: -0 },
  { kind: "f64", value: NaN },
  { kind: "f64", value: -Infinity },
  { kind: "f64", value: 1700000000000 },
  { kind: "u64", value: 2n ** 64n - 1n },
  { kind: "i64", value: -(2n ** 63n) },
  { kind: "i64", value: 2n ** 63n - 1n },
  { kind: "bool", value: true },
  { kind: "bool", value: false },
  { kind: "string", value: "" },
  { kind: "string", value: "active" },
  { kind: "string", value: "Hello, World! This ASCII line is longer than 32 bytes." },
  { kind: "string", value: "héllo wörld, 日本語 and 😀" },
  { kind: "bytes", value: new Uint8Array(0) },
  { kind: "bytes", value: new Uint8Array([0, 1, 2, 255]) },
];

const values = (fields: readonly Field[]): unknown[] => fields.map((field) => field.value);

function assertInvalid(fn: () => unknown, pattern?: RegExp): StreamwireError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof StreamwireError, `expected StreamwireError, got ${caught}`);
  assert.equal(caught.code, 3);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

Deno.test("StructReader reads back every field kind StructBuilder wrote", () => {
  const bytes = write(new StructBuilder(), ALL_KINDS);
  const reader = new StructReader(bytes);
  assert.deepEqual(read(reader, ALL_KINDS), values(ALL_KINDS));
  assert.equal(reader.offset, bytes.length);
  assert.equal(reader.remaining, 0);
  reader.assertEnd();
});

Deno.test("StructBuilder writes big-endian fields and u32 length prefixes", () => {
  const bytes = new StructBuilder()
    .u8(1)
    .u16(0x0203)
    .u32(0x04050607)
    .i32(-1)
    .f64(1)
    .u64(0x0102n)
    .i64(-2n)
    .bool(true)
    .string("hé")
    .bytes(new Uint8Array([9]))
    .finish();
  assert.deepEqual([...bytes], [
    ...[1],
    ...[2, 3],
    ...[4, 5, 6, 7],
    ...[0xff, 0xff, 0xff, 0xff],
    ...[0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
    ...[0, 0, 0, 0, 0, 0, 1, 2],
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
    ...[1],
    ...[0, 0, 0, 3, 0x68, 0xc3, 0xa9],
    ...[0, 0, 0, 1, 9],
  ]);
});

Deno.test("StructReader returns bytes as views sharing the input's buffer", () => {
  const written = new StructBuilder().u8(7).bytes(new Uint8Array([1, 2, 3])).finish();
  // Place the struct at a non-zero offset of a larger buffer.
  const backing = new Uint8Array(written.length + 10);
  backing.set(written, 5);
  const input = backing.subarray(5, 5 + written.length);

  const reader = new StructReader(input);
  assert.equal(reader.u8(), 7);
  const view = reader.bytes();
  assert.equal(view.buffer, input.buffer);
  assert.equal(view.byteOffset, 5 + 1 + 4);
  assert.deepEqual([...view], [1, 2, 3]);
  backing[10] = 42;
  assert.equal(view[0], 42, "a view, not a copy");
});

Deno.test("StructBuilder.finish returns a view of its reused buffer", () => {
  const builder = new StructBuilder({ initialCapacity: 64 });
  const first = builder.u32(1).finish();
  const second = builder.reset().u32(2).finish();
  assert.equal(first.buffer, second.buffer);
  assert.deepEqual([...first], [0, 0, 0, 2], "reset() reuses the buffer");
});

Deno.test("StructBuilder grows past its initial capacity", () => {
  for (const initialCapacity of [0, 1, 5]) {
    const builder = new StructBuilder({ initialCapacity });
    const fields: Field[] = Array.from({ length: 500 }, (_, i) => (
      i % 3 === 0
        ? { kind: "string", value: `field ${i} ${"é".repeat(i % 7)}` }
        : i % 3 === 1
        ? { kind: "f64", value: i / 3 }
        : { kind: "bytes", value: new Uint8Array(i % 11).fill(i & 0xff) }
    ));
    const bytes = write(builder, fields);
    assert.equal(builder.length, bytes.length);
    const reader = new StructReader(bytes);
    assert.deepEqual(read(reader, fields), values(fields));
    reader.assertEnd();
  }
});

Deno.test("StructBuilder rejects an invalid initialCapacity", () => {
  for (const initialCapacity of [-1, 1.5, NaN]) {
    assertInvalid(() => new StructBuilder({ initialCapacity }), /initialCapacity/);
  }
});

Deno.test("StructReader throws invalid_argument for input truncated at any length", () => {
  const bytes = write(new StructBuilder(), ALL_KINDS).slice();
  for (let length = 0; length < bytes.length; length++) {
    const reader = new StructReader(bytes.subarray(0, length));
    const error = assertInvalid(() => read(reader, ALL_KINDS));
    assert.match(error.message, /at offset '\d+' (needs|declares length) '\d+'/);
    assert.match(error.message, /'\d+' (bytes )?remain/);
  }
});

Deno.test("StructReader rejects a length prefix of 0xFFFFFFFF without allocating", () => {
  const input = new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
  for (const kind of ["string", "bytes"] as const) {
    const reader = new StructReader(input);
    assertInvalid(
      () => reader[kind](),
      new RegExp(`'${kind}' at offset '0' declares length '4294967295' but '3' bytes remain`),
    );
  }
  const reader = new StructReader(input);
  assert.throws(() => reader.bytes(), StreamwireError);
  assert.equal(reader.offset, 0, "a rejected prefix does not move the cursor");
  // A prefix of exactly what remains is fine; one more byte is not.
  assert.deepEqual([...new StructReader(new Uint8Array([0, 0, 0, 2, 5, 6])).bytes()], [5, 6]);
  assertInvalid(() => new StructReader(new Uint8Array([0, 0, 0, 3, 5, 6])).bytes(), /'3'.*'2'/);
});

Deno.test("StructReader reports the offset of a read past the end", () => {
  const reader = new StructReader(new Uint8Array([1, 2, 3, 4, 5, 6]));
  reader.u32();
  assertInvalid(() => reader.u32(), /'u32' at offset '4' needs '4' bytes but '2' remain/);
  assert.equal(reader.offset, 4, "a failed read does not move the cursor");
  assert.equal(reader.u16(), 0x0506);
});

Deno.test("StructReader rejects a bool byte other than 0 or 1", () => {
  assert.equal(new StructReader(new Uint8Array([0])).bool(), false);
  assertInvalid(() => new StructReader(new Uint8Array([2])).bool(), /'bool' at offset '0'/);
});

Deno.test("StructReader rejects a string that is not valid UTF-8", () => {
  for (const body of [[0xff], [0xc3], [0xed, 0xa0, 0x80], new Array(40).fill(0xff)]) {
    const reader = new StructReader(new Uint8Array([0, 0, 0, body.length, ...body]));
    assertInvalid(
      () => reader.string(),
      /'string' at offset '0' of length '\d+' is not valid UTF-8/,
    );
    assert.equal(reader.offset, 0, "a failed read does not move the cursor");
  }
});

Deno.test("StructReader.assertEnd rejects trailing bytes", () => {
  const reader = new StructReader(new Uint8Array([1, 2, 3]));
  reader.u8();
  assertInvalid(() => reader.assertEnd(), /'2' trailing bytes at offset '1'/);
});

Deno.test("StructReader.reset reads another input with the same reader", () => {
  const builder = new StructBuilder();
  const reader = new StructReader(new Uint8Array(0));
  for (const text of ["one", "two", "three"]) {
    reader.reset(builder.reset().string(text).u8(9).finish());
    assert.equal(reader.string(), text);
    assert.equal(reader.u8(), 9);
    reader.assertEnd();
  }
});

Deno.test("StructBuilder rejects values that do not fit their field", () => {
  const builder = new StructBuilder();
  const cases: [() => unknown, string][] = [
    [() => builder.u8(256), "u8"],
    [() => builder.u8(-1), "u8"],
    [() => builder.u16(65536), "u16"],
    [() => builder.u32(2 ** 32), "u32"],
    [() => builder.u32(1.5), "u32"],
    [() => builder.u32(NaN), "u32"],
    [() => builder.i32(2 ** 31), "i32"],
    [() => builder.i32(-(2 ** 31) - 1), "i32"],
    [() => builder.u64(-1n), "u64"],
    [() => builder.u64(2n ** 64n), "u64"],
    [() => builder.i64(2n ** 63n), "i64"],
    [() => builder.u64(1 as unknown as bigint), "u64"],
  ];
  for (const [fn, kind] of cases) assertInvalid(fn, new RegExp(`not a valid '${kind}'`));
  assert.equal(builder.length, 0, "rejected values write nothing");
});

Deno.test("StructBuilder writes lone surrogates as U+FFFD", () => {
  const bytes = new StructBuilder().string("a\ud800b").finish();
  assert.equal(new StructReader(bytes).string(), "a\ufffdb");
});

Deno.test("StructReader decodes strings of every short length, ASCII or not", () => {
  const builder = new StructBuilder();
  for (let length = 0; length <= 40; length++) {
    const ascii = Array.from({ length }, (_, i) => String.fromCharCode(0x20 + ((i * 7) % 95)))
      .join("");
    const texts = [ascii];
    for (let at = 0; at < length; at++) texts.push(ascii.slice(0, at) + "é" + ascii.slice(at + 1));
    for (const text of texts) {
      const bytes = builder.reset().string(text).finish();
      assert.equal(new StructReader(bytes).string(), text);
    }
  }
});

const fieldArbitrary: fc.Arbitrary<Field> = fc.oneof(
  fc.record({ kind: fc.constant("u8" as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("u16" as const), value: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ kind: fc.constant("u32" as const), value: fc.nat({ max: 0xffff_ffff }) }),
  fc.record({ kind: fc.constant("i32" as const), value: fc.integer() }),
  fc.record({ kind: fc.constant("f64" as const), value: fc.double() }),
  fc.record({
    kind: fc.constant("u64" as const),
    value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  }),
  fc.record({
    kind: fc.constant("i64" as const),
    value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  }),
  fc.record({ kind: fc.constant("bool" as const), value: fc.boolean() }),
  fc.record({
    kind: fc.constant("string" as const),
    value: fc.oneof(fc.string(), fc.string({ unit: "grapheme" })),
  }),
  fc.record({ kind: fc.constant("bytes" as const), value: fc.uint8Array() }),
);

Deno.test("StructReader reads back random field sequences", () => {
  const builder = new StructBuilder({ initialCapacity: 16 });
  fc.assert(
    fc.property(fc.array(fieldArbitrary, { maxLength: 30 }), (fields) => {
      const bytes = write(builder.reset(), fields);
      const reader = new StructReader(bytes);
      assert.deepEqual(read(reader, fields), values(fields));
      reader.assertEnd();
    }),
    { numRuns: 500 },
  );
});

Deno.test("StructReader over random bytes returns values or throws invalid_argument", () => {
  const kinds = [
    "u8",
    "u16",
    "u32",
    "i32",
    "f64",
    "u64",
    "i64",
    "bool",
    "string",
    "bytes",
  ] as const;
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.constantFrom(...kinds), { maxLength: 20 }),
      (bytes, sequence) => {
        const reader = new StructReader(bytes);
        try {
          for (const kind of sequence) reader[kind]();
        } catch (error) {
          assert.ok(error instanceof StreamwireError, String(error));
          assert.equal(error.code, 3);
        }
        assert.ok(reader.offset <= bytes.length);
      },
    ),
    { numRuns: 1000 },
  );
});
