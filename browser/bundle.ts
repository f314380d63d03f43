/**
 * Builds the browser bundle: one minified ES module of
 * `@streamwire/streamwire/browser`, made by `deno bundle --platform
 * browser`. `deno task bundle` writes it to `browser/dist/streamwire.js`
 * and prints its size; the demo server builds it the same way on the first
 * request for `/streamwire.js` (about a second) and keeps it in memory.
 *
 * @module
 */

/** Where `deno task bundle` writes the bundle, relative to the repository. */
export const BUNDLE_FILE = "browser/dist/streamwire.js";

/** Options of {@linkcode buildBundle}. */
export interface BuildBundleOptions {
  /** Also write the bundle to this path. @default {undefined: memory only} */
  outFile?: string;
  /** The Deno executable that bundles. @default {Deno.execPath()} */
  deno?: string;
}

const ENTRY = new URL("./mod.ts", import.meta.url);
const CONFIG = new URL("../deno.json", import.meta.url);

/**
 * Bundles `browser/mod.ts` for the browser platform, minified, with a
 * subprocess of the running Deno (it needs `--allow-run`, and read and
 * write access to a temporary directory).
 *
 * @param options Where to write it, and which Deno runs the bundler.
 * @returns The bundle's bytes.
 * @throws {Error} When the bundler fails; the message holds its output.
 *
 * @example Build and look inside
 * ```ts
 * import { buildBundle } from "./bundle.ts";
 * import assert from "node:assert/strict";
 *
 * const bundle = new TextDecoder().decode(await buildBundle());
 * assert.match(bundle, /streamwire\.v1/);
 * assert.doesNotMatch(bundle, /\bDeno\./);
 * ```
 */
export async function buildBundle(options: BuildBundleOptions = {}): Promise<Uint8Array> {
  const dir = options.outFile === undefined ? await Deno.makeTempDir() : undefined;
  const out = options.outFile ?? `${dir}/streamwire.js`;
  try {
    const local = ENTRY.protocol === "file:";
    const args = ["bundle", "--quiet", "--platform", "browser", "--minify", "-o", out];
    if (local) args.push("--config", decodeURIComponent(CONFIG.pathname));
    args.push(local ? decodeURIComponent(ENTRY.pathname) : ENTRY.href);
    const { success, stderr } = await new Deno.Command(options.deno ?? Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      throw new Error(`deno bundle failed: ${new TextDecoder().decode(stderr).trim()}`);
    }
    return await Deno.readFile(out);
  } finally {
    if (dir !== undefined) await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Size of `bytes` gzipped (level of `CompressionStream("gzip")`), as a
 * server would send them.
 *
 * @param bytes The bytes.
 * @returns The gzipped size in bytes.
 *
 * @example Usage
 * ```ts
 * import { gzipSize } from "./bundle.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(await gzipSize(new Uint8Array(100_000)) < 1_000);
 * ```
 */
export async function gzipSize(bytes: Uint8Array): Promise<number> {
  const gzipped = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return (await new Response(gzipped).arrayBuffer()).byteLength;
}

if (import.meta.main) {
  const started = performance.now();
  await Deno.mkdir(new URL("./dist/", import.meta.url), { recursive: true });
  const bundle = await buildBundle({ outFile: BUNDLE_FILE });
  const ms = Math.round(performance.now() - started);
  console.log(
    `${BUNDLE_FILE}: ${bundle.length} bytes minified, ${await gzipSize(bundle)} gzipped (${ms} ms)`,
  );
}
