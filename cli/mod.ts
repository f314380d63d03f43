/**
 * The command-line layer: configuration loading and the server runner
 * behind `deno task serve`, plus the frame tool (`cli/frames.ts`) that turns
 * frames into JSON lines and back for shell pipelines.
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
