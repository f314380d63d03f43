// `streamwire call`: one call of any kind from the shell, the server's
// pushes with --follow, its methods with --list.

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import { connect, type RpcClient } from "../rpc/client.ts";
import type { MethodKind } from "../rpc/methods.ts";
import type { CallOptions, Push } from "../rpc/peer.ts";
import { type MethodInfo, REFLECTION_METHOD } from "../rpc/reflection.ts";
import {
  choiceFlag,
  type CliIo,
  type Command,
  type Flags,
  intFlag,
  parseJson,
  readAllText,
  usage,
} from "./_command.ts";
import { jsonLine } from "./_json_value.ts";
import { ndjsonValues } from "./_ndjson.ts";
import { dialTarget, tokenOf } from "./_target.ts";

const CODECS = ["msgpack", "cbor", "json"] as const;
const KINDS = ["unary", "server_stream", "client_stream", "bidi"] as const;
/** Most bytes of params read from stdin with `-d @`. */
const MAX_PARAMS_BYTES = 16 * 1024 * 1024;

const HELP = `Calls <method> on the server at <url> (tcp://, tls:// or unix://) with [params] as
JSON. A unary result prints as one JSON line (no value prints null); a server
stream prints one line per item. Client-streaming and bidirectional methods read
their items from stdin as NDJSON, one per line, sent as the server grants credit.
The kind of the method comes from the server's reflection (or --kind).

Options:
  -d, --data <json>      params as JSON; '-d @' reads them from stdin
  -H, --header <k=v>     metadata entry, repeatable
      --codec <name>     msgpack (default), cbor or json
      --timeout <ms>     deadline of the call (default: 30000 for unary, none for streams)
      --token <secret>   token for the handshake (or STREAMWIRE_TOKEN)
      --ca-file <pem>    trust this certificate (or CA) for tls:// (a self-signed one)
      --kind <kind>      unary, server_stream, client_stream or bidi, instead of asking
      --follow           then print every NOTIFY and BROADCAST as NDJSON until interrupted
      --list             print the server's methods and their kinds
      --json             errors (and --list) as JSON

Examples:
  streamwire call tcp://127.0.0.1:9000 add '[2,40]'
  streamwire call tcp://127.0.0.1:9000 count 3                 # 1, 2, 3 on three lines
  printf '1\\n2\\n3\\n' | streamwire call tcp://127.0.0.1:9000 sum   # 6
  streamwire call tcp://127.0.0.1:9000 chat.join '{"room":"lobby"}' --follow`;

/** `streamwire call <url> [method] [params]`. */
export const callCommand: Command = {
  name: "call",
  summary: "call a method: unary, streams, --follow pushes, --list methods",
  usage: "streamwire call <url> <method> [params] [options]",
  help: HELP,
  flags: {
    data: { type: "string", short: "d" },
    header: { type: "string", short: "H", multiple: true },
    codec: { type: "string" },
    timeout: { type: "string" },
    token: { type: "string" },
    "ca-file": { type: "string" },
    kind: { type: "string" },
    follow: { type: "boolean" },
    list: { type: "boolean" },
  },
  positionals: [1, 3],
  async run({ flags, positionals }, io) {
    const [url, method, paramsText] = positionals;
    const list = flags.list === true;
    const follow = flags.follow === true;
    if (list && method !== undefined) throw usage("--list takes no <method>");
    if (list && follow) throw usage("--list and --follow do not go together");
    if (method === undefined && !list && !follow) throw usage("Missing <method>");
    if (paramsText !== undefined && flags.data !== undefined) {
      throw usage("Params given twice: as an argument and with --data");
    }
    const kindFlag = flags.kind === undefined
      ? undefined
      : choiceFlag(flags, "kind", KINDS, "unary");
    const options: CallOptions = {
      timeout: intFlag(flags, "timeout", { min: 1, max: 2 ** 31 - 1 }),
      metadata: headers(flags),
      signal: io.signal,
    };
    const target = dialTarget(url, flags);
    let params: unknown;
    const dataFromStdin = flags.data === "@";
    if (paramsText !== undefined) params = parseJson(paramsText, "params");
    else if (typeof flags.data === "string" && !dataFromStdin) {
      params = parseJson(flags.data, "--data");
    }

    const client = await connect(target, {
      token: tokenOf(flags, io),
      codecs: [choiceFlag(flags, "codec", CODECS, "msgpack") as CodecName],
      reconnect: false,
    });
    try {
      if (list) return await printMethods(client, io, flags.json === true);
      // Pushes are taken from the start, so none that the call causes is missed.
      const pushes = follow ? client.pushes : undefined;
      if (method !== undefined) {
        const kind = kindFlag ?? await kindOf(client, method);
        const streamingInput = kind === "client_stream" || kind === "bidi";
        if (dataFromStdin) {
          if (streamingInput) {
            throw usage(
              `'-d @' reads params from stdin, which '${method}' (${kind}) reads items from`,
            );
          }
          params = parseJson(await readAllText(io.stdin, MAX_PARAMS_BYTES), "stdin");
        }
        await callOnce(client, io, { method, params, kind, options });
      }
      if (pushes !== undefined) await printPushes(client, pushes, io);
    } finally {
      await client.close();
    }
  },
};

function headers(flags: Flags): [string, string][] | undefined {
  const entries = flags.header as string[] | undefined;
  if (entries === undefined) return undefined;
  return entries.map((entry) => {
    const at = entry.indexOf("=");
    if (at <= 0) throw usage(`--header takes key=value, got '${entry}'`);
    return [entry.slice(0, at).trim().toLowerCase(), entry.slice(at + 1)];
  });
}

/** The kind of `method` as the server's reflection says; unary when it cannot say. */
async function kindOf(client: RpcClient, method: string): Promise<MethodKind> {
  const methods = await reflect(client);
  return methods?.find((m) => m.name === method)?.kind ?? "unary";
}

async function reflect(client: RpcClient): Promise<MethodInfo[] | undefined> {
  try {
    const list = await client.call(REFLECTION_METHOD, undefined);
    return Array.isArray(list) ? list as MethodInfo[] : undefined;
  } catch (error) {
    if (error instanceof StreamwireError && error.code === Status.UNIMPLEMENTED) return undefined;
    throw error;
  }
}

async function printMethods(client: RpcClient, io: CliIo, json: boolean): Promise<void> {
  const methods = await reflect(client);
  if (methods === undefined) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `The server does not list its methods ('${REFLECTION_METHOD}' is not served)`,
    );
  }
  if (json) {
    io.stdout.line(JSON.stringify(methods));
    return;
  }
  const width = Math.max(0, ...methods.map((m) => m.name.length));
  for (const m of methods) {
    const line = `${m.name.padEnd(width)}  ${m.kind}`;
    io.stdout.line(m.description ? `${line.padEnd(width + 16)}${m.description}` : line);
  }
}

interface OneCall {
  method: string;
  params: unknown;
  kind: MethodKind;
  options: CallOptions;
}

async function callOnce(client: RpcClient, io: CliIo, call: OneCall): Promise<void> {
  const { method, params, options } = call;
  switch (call.kind) {
    case "unary":
      io.stdout.line(jsonLine(await client.call(method, params, options)));
      return;
    case "server_stream":
      await printAll(client.stream(method, params, options), io);
      return;
    case "client_stream": {
      const input = new InputItems(io.stdin);
      const result = await input.guard(client.upload(method, input.readable, {
        ...options,
        params,
      }));
      io.stdout.line(jsonLine(result));
      return;
    }
    case "bidi": {
      const input = new InputItems(io.stdin);
      const { readable, writable } = client.duplex(method, params, options);
      const sending = input.readable.pipeTo(writable).catch(() => {});
      await input.guard(printAll(readable, io));
      await sending;
      return;
    }
  }
}

/** Items read from stdin; a bad line fails the call with that line's usage error. */
class InputItems {
  readonly readable: ReadableStream<unknown>;
  #failure: unknown;

  constructor(stdin: ReadableStream<Uint8Array>) {
    const values = ndjsonValues(stdin).getReader();
    this.readable = new ReadableStream<unknown>({
      pull: async (controller) => {
        try {
          const { value, done } = await values.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          this.#failure = error;
          throw error;
        }
      },
      cancel: (reason) => values.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /** `promise`, failing with the input's own error if a bad line ended the call. */
  async guard<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw this.#failure ?? error;
    }
  }
}

async function printAll(values: ReadableStream<unknown>, io: CliIo): Promise<void> {
  for await (const value of values) {
    const full = io.stdout.line(jsonLine(value));
    if (full !== undefined) await full;
  }
}

/** Prints pushes until interrupted or the connection ends (then `unavailable`). */
async function printPushes(
  client: RpcClient,
  pushes: ReadableStream<Push>,
  io: CliIo,
): Promise<void> {
  const reader = pushes.getReader();
  let lost = false;
  const stop = () => reader.cancel().catch(() => {});
  io.signal.addEventListener("abort", stop, { once: true });
  client.session?.closed.then(() => {
    lost = !io.signal.aborted;
    stop();
  });
  let dropped = client.droppedPushes;
  try {
    for (;;) {
      await io.stdout.flush();
      const { value, done } = await reader.read();
      if (done) break;
      if (client.droppedPushes !== dropped) {
        io.stderr.line(
          `streamwire: warning: ${client.droppedPushes - dropped} pushes dropped: output too slow`,
        );
        dropped = client.droppedPushes;
      }
      io.stdout.line(JSON.stringify({
        type: value.type === FrameType.BROADCAST ? "BROADCAST" : "NOTIFY",
        method: value.method,
        params: JSON.parse(jsonLine(value.params)),
      }));
    }
  } finally {
    io.signal.removeEventListener("abort", stop);
  }
  await io.stdout.flush();
  if (lost) throw new StreamwireError(Status.UNAVAILABLE, "Connection closed by the server");
}
