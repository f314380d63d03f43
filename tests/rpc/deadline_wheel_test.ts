import assert from "node:assert/strict";
import { DEADLINE_RESOLUTION_MS, Deadlines } from "../../rpc/_deadlines.ts";
import { guard } from "../transport/_helpers.ts";

Deno.test("Deadlines expires items at their deadline and not those removed", async () => {
  const expired: string[] = [];
  const both = Promise.withResolvers<void>();
  const wheel = new Deadlines<string>((item) => {
    expired.push(item);
    if (expired.length === 2) both.resolve();
  });
  const now = Date.now();
  wheel.add("late", now + 40);
  const key = wheel.add("removed", now + 20);
  wheel.add("early", now + 10);
  wheel.remove("removed", key);
  assert.equal(wheel.size, 2);
  await guard(both.promise, "two items expired");
  assert.deepEqual(expired, ["early", "late"]);
  assert.equal(wheel.size, 0);
});

Deno.test("Deadlines drops its timer once nothing waits, so an idle peer keeps none", () => {
  const wheel = new Deadlines<number>(() => assert.fail("nothing should expire"));
  const keys = Array.from({ length: 100 }, (_, i) => wheel.add(i, Date.now() + 60_000 + i * 10));
  keys.forEach((key, i) => wheel.remove(i, key));
  assert.equal(wheel.size, 0);
  // The test sanitizer fails this test if a timer is still pending here.
});

Deno.test("Deadlines keeps its key list bounded under steady one-in-flight traffic", () => {
  const wheel = new Deadlines<object>(() => {});
  const keep = {};
  wheel.add(keep, Date.now() + 600_000); // one long call keeps the wheel busy
  for (let i = 0; i < 50_000; i++) {
    const item = {};
    // Each short call lands in a new bucket (one per resolution step) and finishes at once.
    const key = wheel.add(item, Date.now() + 1_000 + i * DEADLINE_RESOLUTION_MS);
    wheel.remove(item, key);
  }
  assert.equal(wheel.size, 1);
  assert.ok(wheel.keyCount <= 2 * 2 + 32 + 1, `key list grew to ${wheel.keyCount}`);
  wheel.clear();
});
