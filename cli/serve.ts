/**
 * `deno task serve`: the demo application server on embedded defaults,
 * configurable by file, environment and flags; SIGINT or SIGTERM shut it
 * down gracefully.
 *
 * @module
 */

import { StreamwireError } from "../codec/error.ts";
import { loadConfig, SERVE_USAGE } from "./config.ts";
import { runServer } from "./run_server.ts";

if (import.meta.main) {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    console.error(error instanceof StreamwireError ? error.message : error);
    Deno.exit(2);
  }
  if (config === undefined) {
    console.log(SERVE_USAGE);
    Deno.exit(0);
  }
  const running = runServer(config);
  console.log(`streamwire listening on ${running.addr}${config.token ? " (token required)" : ""}`);
  if (running.adminAddr) console.log(`admin API on ${running.adminAddr}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) Deno.exit(130); // a second signal: stop now
    stopping = true;
    console.log(`${signal}: draining up to ${config.drainTimeoutMs} ms`);
    await running.shutdown();
    console.log("streamwire stopped");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
