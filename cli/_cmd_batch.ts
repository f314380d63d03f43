// `streamwire batch`: calls read as NDJSON from stdin, sent as BATCH frames,
// answered as NDJSON in request order.

import type { StreamwireError } from "../codec/error.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import { connect } from "../rpc/client.ts";
import type { BatchCall, BatchOutcome } from "../rpc/peer.ts";
import { choiceFlag, type Command, Exit, intFlag } from "./_command.ts";
import { jsonLine } from "./_json_value.ts";
import { ndjsonValues } from "./_ndjson.ts";
import { dialTarget, tokenOf } from "./_target.ts";

/** Batches in flight at once: enough to keep the connection busy, a bound on memory. */
const BATCHES_IN_FLIGHT = 4;

const HELP = `Reads calls from stdin as NDJSON, one {"method": ..., "params": ...} per line,
sends them as BATCH frames of --size calls, and prints one line per call in the
order read: {"ok":true,"value":...} or {"ok":false,"code":"<name>","status":N,"message":...}.
Exits 0 when every call succeeded, else 64 + the status of the first that failed.

Options:
      --size <n>         calls per BATCH frame (default 100, at most 10000)
      --codec <name>     msgpack (default), cbor or json
      --timeout <ms>     deadline of each batch (default 30000)
      --token <secret>   token for the handshake (or STREAMWIRE_TOKEN)
      --ca-file <pem>    trust this certificate (or CA) for tls://

Example:
  printf '{"method":"add","params":[1,2]}\\n{"method":"echo","params":"hi"}\\n' |
    streamwire batch tcp://127.0.0.1:9000`;

function checkCall(value: unknown): BatchCall {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`expected {"method": ..., "params": ...}, got '${JSON.stringify(value)}'`);
  }
  const { method, params, ...rest } = value as Record<string, unknown>;
  if (typeof method !== "string" || method === "") {
    throw new Error(`'method' must be a non-empty string, got '${JSON.stringify(method)}'`);
  }
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new Error(`unknown key '${extra[0]}'`);
  return { method, params };
}

function outcomeLine(outcome: BatchOutcome): string {
  if (outcome.ok) return `{"ok":true,"value":${jsonLine(outcome.value)}}`;
  const e = outcome.error;
  return JSON.stringify({ ok: false, code: e.codeName, status: e.code, message: e.message });
}

/** `streamwire batch <url>`. */
export const batchCommand: Command = {
  name: "batch",
  summary: "send NDJSON calls from stdin as BATCH frames",
  usage: "streamwire batch <url> [options] < calls.ndjson",
  help: HELP,
  flags: {
    size: { type: "string" },
    codec: { type: "string" },
    timeout: { type: "string" },
    token: { type: "string" },
    "ca-file": { type: "string" },
  },
  positionals: [1, 1],
  async run({ flags, positionals }, io) {
    const target = dialTarget(positionals[0], flags);
    const size = intFlag(flags, "size", { min: 1, max: 10_000, default: 100 });
    const timeout = intFlag(flags, "timeout", { min: 1, max: 2 ** 31 - 1 });
    const codec = choiceFlag(flags, "codec", ["msgpack", "cbor", "json"], "msgpack");
    const client = await connect(target, {
      token: tokenOf(flags, io),
      codecs: [codec as CodecName],
      reconnect: false,
    });
    let firstFailure: StreamwireError | undefined;
    const inFlight: Promise<BatchOutcome[]>[] = [];
    const print = async (outcomes: BatchOutcome[]) => {
      for (const outcome of outcomes) {
        if (!outcome.ok) firstFailure ??= outcome.error;
        const full = io.stdout.line(outcomeLine(outcome));
        if (full !== undefined) await full;
      }
    };
    const send = (calls: BatchCall[]) => {
      const sent = client.batch(calls, { timeout, signal: io.signal });
      sent.catch(() => {}); // awaited in order below
      inFlight.push(sent);
    };
    try {
      let calls: BatchCall[] = [];
      try {
        for await (const call of ndjsonValues(io.stdin, checkCall)) {
          calls.push(call as BatchCall);
          if (calls.length < size) continue;
          send(calls);
          calls = [];
          if (inFlight.length >= BATCHES_IN_FLIGHT) await print(await inFlight.shift()!);
        }
      } catch (error) {
        // A bad line: the calls before it were sent, so their answers are printed.
        if (calls.length > 0) send(calls);
        while (inFlight.length > 0) await print(await inFlight.shift()!);
        throw error;
      }
      if (calls.length > 0) send(calls);
      while (inFlight.length > 0) await print(await inFlight.shift()!);
    } finally {
      await client.close();
    }
    return firstFailure === undefined ? Exit.OK : Exit.STATUS_BASE + firstFailure.code;
  },
};
