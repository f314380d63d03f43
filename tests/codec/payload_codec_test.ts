import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cborCodec,
  CODECS,
  DEFAULT_CODEC_PREFERENCE,
  getCodec,
  isCodecName,
  jsonCodec,
  msgpackCodec,
  type PayloadCodec,
  rawCodec,
} from "../../codec/payload_codec.ts";
import { StreamwireError } from "../../codec/error.ts";

const SEED = {
  id: 12345,
  timestamp: 1700000000000,
  value: 3.14159,
  status: "active",
  message: "Hello, World!",
  tags: ["alpha", "beta", "gamma"],
};

/** The codecs that encode values (all but `raw`). */
const VALUE_CODECS: readonly PayloadCodec[] = [jsonCodec, msgpackCodec, cborCodec];

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const bytesOf = (text: string): Uint8Array =>
  Uint8Array.from(text.split(" ").filter(Boolean), (b) => parseInt(b, 16));

function assertInvalid(fn: () => unknown, codec: string): StreamwireError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof StreamwireError, `expected StreamwireError, got ${caught}`);
  assert.equal(caught.code, 3);
  assert.equal(caught.codeName, "invalid_argument");
  assert.match(caught.message, new RegExp(`'${codec}'`));
  return caught;
}

Deno.test("value codecs round-trip the seed record", () => {
  for (const codec of VALUE_CODECS) {
    assert.deepEqual(codec.decode(codec.encode(SEED)), SEED, codec.name);
  }
});

Deno.test("value codecs round-trip scalars, nesting and unicode", () => {
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    -1,
    255,
    65536,
    -2147483649,
    2 ** 53 - 1,
    -(2 ** 53) + 1,
    0.1,
    -1.5e300,
    "",
    "é",
    "日本語",
    "emoji 😀 and \u0000 nul",
    "x".repeat(70_000),
    [],
    {},
    [1, [2, [3, [4]]]],
    { nested: { deeper: { list: [{ a: null }] } }, "key with spaces": 1 },
    Array.from({ length: 1000 }, (_, i) => ({ i, s: `item ${i}` })),
  ];
  for (const codec of VALUE_CODECS) {
    for (const value of values) {
      assert.deepEqual(codec.decode(codec.encode(value)), value, `${codec.name} ${value}`);
    }
  }
});

Deno.test("value codecs encode undefined as empty bytes and decode empty bytes as undefined", () => {
  for (const codec of VALUE_CODECS) {
    assert.equal(codec.encode(undefined).length, 0, codec.name);
    assert.equal(codec.decode(new Uint8Array(0)), undefined, codec.name);
    // null keeps an explicit encoding, distinct from "absent".
    assert.ok(codec.encode(null).length > 0, codec.name);
    assert.equal(codec.decode(codec.encode(null)), null, codec.name);
  }
});

Deno.test("jsonCodec writes compact UTF-8 JSON", () => {
  assert.equal(new TextDecoder().decode(jsonCodec.encode({ a: 1 })), '{"a":1}');
  assert.equal(new TextDecoder().decode(jsonCodec.encode("é")), '"é"');
  assert.deepEqual(jsonCodec.decode(new TextEncoder().encode(' { "a" : [1, 2] } ')), { a: [1, 2] });
});

Deno.test("msgpackCodec writes the bytes other MessagePack implementations write", () => {
  const golden: [unknown, string][] = [
    [{ a: 1 }, "81 a1 61 01"],
    [[1, "x", true, null], "94 01 a1 78 c3 c0"],
    [-1, "ff"],
    [1.5, "cb 3f f8 00 00 00 00 00 00"],
    [300, "cd 01 2c"],
    [new Uint8Array([1, 2]), "c4 02 01 02"],
    [{ a: undefined }, "81 a1 61 c0"], // nil, not msgpackr's private extension
    [new Map([[1, 2]]), "81 01 02"],
    [new Date(0), "d6 ff 00 00 00 00"], // timestamp extension -1
  ];
  for (const [value, bytes] of golden) assert.equal(hex(msgpackCodec.encode(value)), bytes);
});

Deno.test("msgpackCodec reads bytes written by other MessagePack implementations", () => {
  assert.deepEqual(msgpackCodec.decode(bytesOf("de 00 01 a1 61 01")), { a: 1 }); // map 16
  assert.deepEqual(msgpackCodec.decode(bytesOf("dc 00 01 01")), [1]); // array 16
  // uint 64 and int 64 decode as numbers when exact, as BigInt beyond 2^53.
  assert.equal(msgpackCodec.decode(bytesOf("cf 00 00 01 8b cf e5 68 00")), 1700000000000);
  assert.equal(msgpackCodec.decode(bytesOf("d3 ff ff ff ff ff ff ff ff")), -1);
  assert.equal(msgpackCodec.decode(bytesOf("cf ff ff ff ff ff ff ff ff")), 2n ** 64n - 1n);
  assert.equal(msgpackCodec.decode(bytesOf("ca 3f c0 00 00")), 1.5); // float 32
  // A non-string map key becomes a string key.
  assert.deepEqual(msgpackCodec.decode(bytesOf("81 01 02")), { 1: 2 });
});

Deno.test("cborCodec writes the bytes other CBOR implementations write", () => {
  const golden: [unknown, string][] = [
    [{ a: 1 }, "a1 61 61 01"],
    [[1, "x", true, null], "84 01 61 78 f5 f6"],
    [-1, "20"],
    [1.5, "fb 3f f8 00 00 00 00 00 00"],
    [300, "19 01 2c"],
    [new Uint8Array([1, 2]), "42 01 02"], // byte string, not tag 64
    [{ a: undefined }, "a1 61 61 f7"],
    [new Map([[1, 2]]), "a1 01 02"], // plain map, not tag 259
    [new Date(0), "c1 1a 00 00 00 00"], // tag 1, valid though not the shortest form
  ];
  for (const [value, bytes] of golden) assert.equal(hex(cborCodec.encode(value)), bytes);
});

Deno.test("cborCodec reads bytes written by other CBOR implementations", () => {
  assert.deepEqual(cborCodec.decode(bytesOf("bf 61 61 01 ff")), { a: 1 }); // indefinite map
  assert.deepEqual(cborCodec.decode(bytesOf("9f 01 02 ff")), [1, 2]); // indefinite array
  // 8-byte integers, as other encoders write them from 2^32 on, decode as numbers.
  assert.equal(cborCodec.decode(bytesOf("1b 00 00 01 8b cf e5 68 00")), 1700000000000);
  assert.equal(cborCodec.decode(bytesOf("f9 3e 00")), 1.5); // half float
  assert.equal(cborCodec.decode(bytesOf("c2 41 01")), 1n); // bignum tag 2
  assert.deepEqual(cborCodec.decode(bytesOf("c1 00")), new Date(0));
});

Deno.test("byte strings in decoded values are views of the input", () => {
  const packed = bytesOf("81 a1 62 c4 02 07 08");
  const fromMsgpack = msgpackCodec.decode(packed) as { b: Uint8Array };
  assert.deepEqual(fromMsgpack.b, new Uint8Array([7, 8]));
  assert.equal(fromMsgpack.b.buffer, packed.buffer);

  const cbor = bytesOf("a1 61 62 42 07 08");
  const fromCbor = cborCodec.decode(cbor) as { b: Uint8Array };
  assert.deepEqual(fromCbor.b, new Uint8Array([7, 8]));
  assert.equal(fromCbor.b.buffer, cbor.buffer);
});

Deno.test("encode outputs are plain Uint8Arrays that later encodes never overwrite", () => {
  for (const codec of VALUE_CODECS) {
    // ~300 bytes each: 200 outputs span several 8 KiB slabs.
    const values = Array.from({ length: 200 }, (_, i) => ({ i, text: `${i}`.repeat(100) }));
    const outputs = values.map((value) => codec.encode(value));
    const copies = outputs.map((bytes) => bytes.slice());
    for (let i = 0; i < values.length; i++) {
      assert.equal(Object.getPrototypeOf(outputs[i]), Uint8Array.prototype, codec.name);
      assert.deepEqual(outputs[i], copies[i], `${codec.name} output ${i} changed`);
      assert.deepEqual(codec.decode(outputs[i]), values[i]);
    }
    // slice() is a real copy (a Node Buffer's slice() would be a view).
    const copy = outputs[0].slice();
    copy[0] ^= 0xff;
    assert.notEqual(copy[0], outputs[0][0], codec.name);
  }
});

Deno.test("rawCodec passes bytes through unchanged", () => {
  const bytes = new Uint8Array([0, 1, 255]);
  assert.equal(rawCodec.encode(bytes), bytes);
  assert.equal(rawCodec.decode(bytes), bytes);
  assert.equal(rawCodec.encode(undefined).length, 0);
  const empty = new Uint8Array(0);
  assert.equal(rawCodec.decode(empty), empty);
});

Deno.test("rawCodec rejects values that are not a Uint8Array", () => {
  for (const value of ["text", 1, null, {}, [1, 2], new Uint16Array(2), new ArrayBuffer(2)]) {
    const error = assertInvalid(() => rawCodec.encode(value), "raw");
    assert.match(error.message, /expected a Uint8Array/);
  }
});

Deno.test("decoding garbage throws invalid_argument naming the codec", () => {
  const garbage: [PayloadCodec, string][] = [
    [jsonCodec, "7b"], // "{"
    [jsonCodec, "ff fe"], // not UTF-8
    [jsonCodec, "31 20 32"], // "1 2"
    [jsonCodec, "20"], // whitespace only
    [msgpackCodec, "c1"], // never used
    [msgpackCodec, "01 02"], // trailing byte
    [msgpackCodec, "dd ff ff ff ff"], // array 32 longer than the input
    [msgpackCodec, "c6 ff ff ff ff"], // bin 32 longer than the input
    [cborCodec, "ff"], // break outside an indefinite item
    [cborCodec, "1c"], // reserved additional info
    [cborCodec, "01 02"], // trailing byte
    [cborCodec, "9a ff ff ff ff"], // array longer than the input
    [cborCodec, "5a ff ff ff ff"], // byte string longer than the input
  ];
  for (const [codec, bytes] of garbage) {
    const error = assertInvalid(() => codec.decode(bytesOf(bytes)), codec.name);
    assert.match(error.message, /^Cannot decode '\w+' payload of '\d+' bytes: .+/);
  }
});

Deno.test("decoding a truncated payload throws invalid_argument at every length", () => {
  for (const codec of VALUE_CODECS) {
    const bytes = codec.encode(SEED);
    for (let length = 1; length < bytes.length; length++) {
      assertInvalid(() => codec.decode(bytes.subarray(0, length)), codec.name);
    }
  }
});

Deno.test("decoding deeply nested input throws invalid_argument, not a stack overflow", () => {
  const depth = 200_000;
  assertInvalid(() => msgpackCodec.decode(new Uint8Array(depth).fill(0x91)), "msgpack");
  assertInvalid(() => cborCodec.decode(new Uint8Array(depth).fill(0x81)), "cbor");
  // JSON.parse is not recursive: deep input is just a deep value.
  const json = new TextEncoder().encode("[".repeat(depth) + "]".repeat(depth));
  assert.ok(Array.isArray(jsonCodec.decode(json)));
});

Deno.test("msgpack and cbor decode a '__proto__' key as '__proto_', keeping prototypes intact", () => {
  const json = jsonCodec.decode(new TextEncoder().encode('{"__proto__":{"polluted":1}}'));
  assert.equal(Object.getPrototypeOf(json), Object.prototype);
  for (const codec of [msgpackCodec, cborCodec]) {
    const decoded = codec.decode(codec.encode(json)) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype, codec.name);
    assert.deepEqual(decoded, { __proto_: { polluted: 1 } }, codec.name);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  }
});

Deno.test("encoding an unencodable value throws invalid_argument", () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assertInvalid(() => jsonCodec.encode(1n), "json");
  assertInvalid(() => jsonCodec.encode(() => 1), "json");
  assertInvalid(() => jsonCodec.encode(Symbol("s")), "json");
  assertInvalid(() => msgpackCodec.encode(2n ** 64n), "msgpack");
  assertInvalid(() => msgpackCodec.encode(Symbol("s")), "msgpack");
  assertInvalid(() => cborCodec.encode(() => 1), "cbor");
  const throwing = {
    toJSON(): never {
      throw new TypeError("no");
    },
  };
  assertInvalid(() => jsonCodec.encode(throwing), "json");
  for (const codec of VALUE_CODECS) assertInvalid(() => codec.encode(cycle), codec.name);
});

Deno.test("codecs keep working after a failed encode or decode", () => {
  const cycle: unknown[] = [];
  cycle.push(cycle);
  for (const codec of VALUE_CODECS) {
    assert.throws(() => codec.encode(cycle), StreamwireError);
    assert.throws(() => codec.decode(new Uint8Array([0x7b, 0xc1, 0xff])), StreamwireError);
    assert.deepEqual(codec.decode(codec.encode(SEED)), SEED, codec.name);
  }
  assert.equal(hex(msgpackCodec.encode({ a: 1 })), "81 a1 61 01");
  assert.equal(hex(cborCodec.encode({ a: 1 })), "a1 61 61 01");
});

Deno.test("value codecs round-trip random JSON values", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      // Tested above: msgpackr and cbor-x rename this key.
      fc.pre(!JSON.stringify(value).includes('"__proto__"'));
      // msgpack and cbor drop -0 like JSON; compare with what JSON keeps.
      const expected = JSON.parse(JSON.stringify(value));
      for (const codec of VALUE_CODECS) {
        assert.deepEqual(codec.decode(codec.encode(value)), expected, codec.name);
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("value codecs round-trip random unicode strings", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (value) => {
      for (const codec of VALUE_CODECS) {
        assert.equal(codec.decode(codec.encode(value)), value, codec.name);
      }
    }),
  );
});

Deno.test("rawCodec round-trips random bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array(), (bytes) => {
      assert.deepEqual(rawCodec.decode(rawCodec.encode(bytes)), bytes);
    }),
  );
});

Deno.test("decoding random bytes returns a value or throws invalid_argument", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      for (const codec of VALUE_CODECS) {
        try {
          codec.decode(bytes);
        } catch (error) {
          assert.ok(error instanceof StreamwireError, `${codec.name}: ${error}`);
          assert.equal(error.code, 3);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("getCodec looks codecs up by handshake name", () => {
  for (const name of DEFAULT_CODEC_PREFERENCE) {
    assert.equal(getCodec(name).name, name);
    assert.equal(CODECS[name], getCodec(name));
    assert.equal(isCodecName(name), true);
  }
  assert.deepEqual(DEFAULT_CODEC_PREFERENCE, ["msgpack", "cbor", "json", "raw"]);
  for (const name of ["yaml", "", "toString", "__proto__", "JSON"]) {
    assert.equal(isCodecName(name), false);
    const error = assertInvalid(() => getCodec(name), name);
    assert.match(error.message, /Unknown codec/);
  }
});
