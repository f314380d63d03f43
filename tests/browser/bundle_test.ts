import assert from "node:assert/strict";
import { buildBundle } from "../../browser/bundle.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("the browser entry's module graph has no node: module", async () => {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "browser/mod.ts"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  };
  const specifiers = info.modules.flatMap((m) => [
    m.specifier,
    ...(m.dependencies ?? []).map((d) => d.specifier),
  ]);
  assert.ok(specifiers.some((s) => s.endsWith("/transport/websocket_dial.ts")));
  assert.deepEqual(specifiers.filter((s) => s.startsWith("node:")), []);
});

Deno.test("the browser bundle refers to neither Deno nor node: modules", async () => {
  const bundle = new TextDecoder().decode(await buildBundle());
  assert.doesNotMatch(bundle, /\bDeno\./);
  // Imports only: the codec names node built-ins as strings it looks up at run time.
  assert.doesNotMatch(bundle, /(?:\bfrom|\bimport)\s*\(?\s*["']node:/);
  assert.doesNotMatch(bundle, /\brequire\(\s*["']node:/);
  // The entry's exports are there, minified or not.
  assert.match(bundle, /export\s*\{[^}]*\bconnect\b/);
  assert.match(bundle, /streamwire\.v1/);
});
