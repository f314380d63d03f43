// The server a client command talks to: its URL with `--ca-file`, and the
// handshake token from `--token` or `STREAMWIRE_TOKEN`.

import type { DialOptions } from "../transport/dial.ts";
import { parseAddress } from "../transport/dial.ts";
import { type CliIo, type Flags, usage } from "./_command.ts";

/** Where to dial `url`, with `--ca-file` for tls://; a bad URL is a usage error. */
export function dialTarget(url: string, flags: Flags): DialOptions {
  let target: DialOptions;
  try {
    target = parseAddress(url) as DialOptions;
  } catch (error) {
    throw usage((error as Error).message);
  }
  const caFile = flags["ca-file"] as string | undefined;
  if (caFile === undefined) return target;
  if (target.transport !== "tls") throw usage(`--ca-file needs a tls:// address, got '${url}'`);
  return { ...target, caFile };
}

/** The handshake token: `--token`, else `STREAMWIRE_TOKEN`. */
export function tokenOf(flags: Flags, io: CliIo): string | undefined {
  return (flags.token as string | undefined) ?? io.env.STREAMWIRE_TOKEN;
}
