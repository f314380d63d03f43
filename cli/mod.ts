/**
 * The command line: `deno run -A jsr:@streamwire/streamwire/cli <command>`
 * runs the `streamwire` command (see `cli/main.ts`: serve, call, batch,
 * encode, decode, inspect, capture, bench, admin). Imported, this module
 * gives the pieces behind it: server configuration, the server runner, and
 * messages as JSON for shell pipelines.
 *
 * @example Load a configuration
 * ```ts
 * import { loadConfig } from "@streamwire/streamwire/cli";
 * import assert from "node:assert/strict";
 *
 * const config = await loadConfig({ args: [], env: {} });
 * assert.equal(config?.port, 9000);
 * ```
 *
 * @module
 */

export * from "./config.ts";
export * from "./run_server.ts";
export * from "./frames.ts";

if (import.meta.main) {
  const { main, processIo } = await import("./main.ts");
  const io = processIo();
  const code = await main(Deno.args, io);
  io.dispose();
  Deno.exit(code);
}
