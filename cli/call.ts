/**
 * `deno run -A cli/call.ts <url> <method> [params-json]`: calls a method on a
 * streamwire server and prints the result as JSON; with `--stream`, prints
 * each value of a server stream as a JSON line; with `--subscribe <topic>`,
 * prints the topic's broadcasts until interrupted.
 *
 * ```sh
 * deno run -A cli/call.ts tcp://127.0.0.1:9000 add '[2,40]'        # 42
 * deno run -A cli/call.ts tcp://127.0.0.1:9000 count 3 --stream    # 1, 2, 3 on three lines
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import { connect } from "../rpc/client.ts";

const USAGE = `Usage: call.ts <url> <method> [params-json] [options]

  --stream             print each value of a server stream as a JSON line
  --subscribe <topic>  join nothing, just print broadcasts on <topic> as JSON lines
  --token <secret>     token for the handshake
  --codec <name>       json, msgpack, cbor (default msgpack)
  --timeout <ms>       call timeout (default 30000)`;

function fail(message: string): never {
  throw new StreamwireError(Status.INVALID_ARGUMENT, `${message}\n\n${USAGE}`);
}

/**
 * Runs the command line; resolves with the exit status.
 *
 * @param args Command-line arguments.
 * @param out Receives output lines.
 * @returns 0 on success.
 */
async function main(args: string[], out: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      stream: { type: "boolean" },
      subscribe: { type: "string" },
      token: { type: "string" },
      codec: { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const [url, method, paramsText] = positionals;
  if (url === undefined) fail("Missing <url>");
  const codec = values.codec ?? "msgpack";
  if (!["json", "msgpack", "cbor"].includes(codec)) fail(`Unknown codec '${codec}'`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) fail(`Bad timeout '${values.timeout}'`);
  let params: unknown;
  if (paramsText !== undefined) {
    try {
      params = JSON.parse(paramsText);
    } catch (error) {
      fail(`params are not JSON: ${(error as Error).message}`);
    }
  }
  const client = await connect(url, {
    token: values.token,
    codecs: [codec as "json" | "msgpack" | "cbor"],
    reconnect: false,
  });
  try {
    if (values.subscribe !== undefined) {
      const done = Promise.withResolvers<void>();
      client.subscribe(values.subscribe, (value) => out(JSON.stringify(value)));
      Deno.addSignalListener("SIGINT", done.resolve);
      client.session?.closed.then(done.resolve);
      await done.promise;
      return 0;
    }
    if (method === undefined) fail("Missing <method>");
    if (values.stream) {
      for await (const value of client.stream(method, params, { timeout })) {
        out(JSON.stringify(value));
      }
    } else {
      out(JSON.stringify(await client.call(method, params, { timeout })));
    }
    return 0;
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args, (line) => console.log(line)));
  } catch (error) {
    const e = StreamwireError.from(error);
    console.error(`call: ${e.codeName}: ${e.message}`);
    Deno.exit(1);
  }
}
