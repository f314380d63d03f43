import assert from "node:assert/strict";
import fc from "fast-check";
import { IdTable } from "../../rpc/_id_table.ts";

Deno.test("IdTable holds what a Map would through any sequence of sets and deletes", () => {
  // Ids from a small range collide in the slots, so probe runs and the
  // backward shift of deletions are exercised; large ones check 32-bit ids.
  const id = fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constant(0xffffffff));
  const op = fc.oneof(
    fc.record({ set: id, value: fc.integer() }),
    fc.record({ del: id }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const table = new IdTable<number>();
      const map = new Map<number, number>();
      for (const o of ops) {
        if ("set" in o) {
          table.set(o.set, o.value);
          map.set(o.set, o.value);
        } else {
          assert.equal(table.delete(o.del), map.delete(o.del));
        }
        assert.equal(table.size, map.size);
      }
      for (let k = 1; k <= 200; k++) {
        assert.equal(table.get(k), map.get(k));
        assert.equal(table.has(k), map.has(k));
      }
      assert.equal(table.get(0xffffffff), map.get(0xffffffff));
      assert.deepEqual(table.values().sort(), [...map.values()].sort());
    }),
  );
});

Deno.test("IdTable takes a value out once, grows for a burst and gives the room back", () => {
  const table = new IdTable<string>();
  for (let id = 1; id < 20_000; id += 2) table.set(id, `call ${id}`);
  assert.equal(table.size, 10_000);
  assert.equal(table.take(9_999), "call 9999");
  assert.equal(table.take(9_999), undefined);
  for (let id = 1; id < 19_000; id += 2) table.delete(id);
  assert.equal(table.size, 500);
  // A trickle of calls after the burst: the table shrinks back meanwhile.
  for (let id = 20_001; id < 220_000; id += 2) {
    table.set(id, `call ${id}`);
    assert.equal(table.take(id), `call ${id}`);
  }
  assert.equal(table.size, 500);
  for (let id = 19_001; id < 20_000; id += 2) assert.equal(table.take(id), `call ${id}`);
  assert.equal(table.size, 0);
  assert.equal(table.get(1), undefined);
  table.set(7, "again");
  table.clear();
  assert.equal(table.size, 0);
  assert.equal(table.get(7), undefined);
});
