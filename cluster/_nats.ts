// Helpers of the NATS backplane engine: subject tokens, direct gets, error
// codes and the server URL.

import type { ConnectionOptions, StoredMsg } from "nats";

/** Direct gets (a stream with `allow_direct`), which the client has but leaves out of its types. */
export interface Direct {
  getMessage(
    stream: string,
    query: { seq: number } | { last_by_subj: string },
  ): Promise<StoredMsg>;
}

/** The JetStream API error of a stream added with another stream's name and other settings. */
export const STREAM_EXISTS = 10058;

/** Direct gets in flight for one read or listing: bounds one call's requests and replies. */
const GET_WIDTH = 64;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A promise to reject when the connection is lost, its rejection handled. */
export function lostSignal(): PromiseWithResolvers<never> {
  const signal = Promise.withResolvers<never>();
  signal.promise.catch(() => {});
  return signal;
}

/** Runs `fn` over `items`, at most {@linkcode GET_WIDTH} at a time; results in order. */
export async function inBatches<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += GET_WIDTH) {
    out.push(...await Promise.all(items.slice(i, i + GET_WIDTH).map(fn)));
  }
  return out;
}

/** A direct get; undefined when the message is not there. */
export async function directGet(
  direct: Direct,
  stream: string,
  query: { seq: number } | { last_by_subj: string },
): Promise<StoredMsg | undefined> {
  try {
    return await direct.getMessage(stream, query);
  } catch (error) {
    if (errorCode(error) === "404") return undefined;
    throw error;
  }
}

/** A name as one subject token: `[A-Za-z0-9_-]` kept, other bytes `=HH`, empty `=`. */
export function token(name: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(name)) return name;
  if (name === "") return "=";
  let out = "";
  for (const byte of encoder.encode(name)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The name a {@linkcode token} stands for. */
export function untoken(t: string): string {
  if (!t.includes("=")) return t;
  if (t === "=") return "";
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "=") {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(t.charCodeAt(i));
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** The client's error code: `"503"` no responders, `"404"` not found, `"TIMEOUT"`. */
export function errorCode(error: unknown): string | undefined {
  return (error as { code?: string })?.code;
}

/** The JetStream API's own error code, such as {@linkcode STREAM_EXISTS}. */
export function apiErrorCode(error: unknown): number | undefined {
  return (error as { api_error?: { err_code?: number } })?.api_error?.err_code;
}

type Servers = Pick<ConnectionOptions, "servers" | "user" | "pass" | "token">;

/** Connection options from `nats://[user:password@]host:port[,nats://...]`. */
export function natsServers(url: string): Servers {
  const servers: string[] = [];
  const out: Servers = { servers };
  for (const part of url.split(",")) {
    const u = new URL(part.trim());
    if (u.username !== "" && u.password !== "") {
      out.user = decodeURIComponent(u.username);
      out.pass = decodeURIComponent(u.password);
    } else if (u.username !== "") out.token = decodeURIComponent(u.username);
    servers.push(`${u.hostname}:${u.port === "" ? "4222" : u.port}`);
  }
  return out;
}
