/**
 * The handshake of PROTOCOL.md 4 as pure functions: the client's HELLO
 * offer, the server's negotiation, and the settings both sides then share.
 *
 * @module
 */

import { type CompressionName, DEFAULT_MAX_FRAME, Status, VERSION } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { CodecName } from "../codec/payload_codec.ts";
import { nodeBuiltin } from "../codec/_platform.ts";

/** node:crypto's comparison where the runtime has it, else the same XOR fold in JavaScript. */
const timingSafeEqual = nodeBuiltin<{ timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean }>(
  "node:crypto",
)?.timingSafeEqual ?? xorEqual;

/** Equal-length buffers compared without an early exit: every byte is read. */
function xorEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Codecs in this implementation's order of preference. */
export const SUPPORTED_CODECS: readonly CodecName[] = ["msgpack", "cbor", "json", "raw"];
/** Compression algorithms in this implementation's order of preference. */
export const SUPPORTED_COMPRESSION: readonly CompressionName[] = ["zstd", "lz4", "zlib"];

/** Default heartbeat interval: a PING after 30 s without sending anything. */
export const DEFAULT_HEARTBEAT_MS = 30_000;
/**
 * Default streaming window: DATA frames a side may send on a call before it
 * receives CREDIT. A stream runs at most window / RTT. With client and
 * server in separate processes on loopback (2026-12-02, a `count` stream of
 * small integers, three interleaved rounds), 256 gave 0.82-1.17 M msgs/s,
 * 512 gave 1.31-1.39 M and 1024 1.47-1.61 M: 512 keeps streams above 1 M
 * msgs/s with a margin while a slow reader still holds at most 512 unread
 * messages per call.
 */
export const DEFAULT_WINDOW = 512;
/** Smallest heartbeat a server accepts, so a peer cannot demand a PING storm. */
export const MIN_HEARTBEAT_MS = 10;

/** Settings both sides use after the handshake. */
export interface SessionSettings {
  /** Session id given by the server. */
  session: string;
  /** Codec for params, results and DATA. */
  codec: CodecName;
  /** Compression algorithms both sides accept, in the server's preference. */
  compression: CompressionName[];
  /** Heartbeat interval in ms. */
  heartbeatMs: number;
  /** Largest frame body and decompressed payload in bytes. */
  maxFrame: number;
  /** DATA frames per call before CREDIT is needed. */
  window: number;
}

/** What a client offers in HELLO. */
export interface HelloOptions {
  /** Acceptable codecs in preference order. @default {["msgpack", "cbor", "json", "raw"]} */
  codecs?: readonly CodecName[];
  /** Acceptable compression algorithms. @default {["zstd", "lz4", "zlib"]} */
  compression?: readonly CompressionName[];
  /** Desired heartbeat interval in ms. @default {30000} */
  heartbeatMs?: number;
  /** Largest frame the client accepts. @default {16777216} */
  maxFrame?: number;
  /** Desired streaming window. @default {512} */
  window?: number;
  /** Shared secret, if the server requires one. */
  token?: string;
  /** Client name and version, such as `"streamwire/0.1.0"`. */
  agent?: string;
}

/** What a server accepts. */
export interface NegotiateOptions {
  /** Codecs the server speaks, in preference order. @default {["msgpack", "cbor", "json", "raw"]} */
  codecs?: readonly CodecName[];
  /** Compression the server accepts, in preference order. @default {["zstd", "lz4", "zlib"]} */
  compression?: readonly CompressionName[];
  /** The server's heartbeat interval in ms. @default {30000} */
  heartbeatMs?: number;
  /** The server's frame limit; the smaller of it and the client's applies. @default {16777216} */
  maxFrame?: number;
  /** The server's streaming window. @default {512} */
  window?: number;
  /** Required token; without it any client is accepted. */
  token?: string;
}

/**
 * Builds the HELLO payload object.
 *
 * @param options The client's offer.
 * @returns The JSON object to send.
 *
 * @example Usage
 * ```ts
 * import { helloPayload } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(helloPayload({ codecs: ["json"] }).codecs, ["json"]);
 * ```
 */
export function helloPayload(options: HelloOptions = {}): Record<string, unknown> {
  const hello: Record<string, unknown> = {
    version: VERSION,
    codecs: [...(options.codecs ?? SUPPORTED_CODECS)],
    compression: [...(options.compression ?? SUPPORTED_COMPRESSION)],
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME,
    window: options.window ?? DEFAULT_WINDOW,
  };
  if (options.token !== undefined) hello.token = options.token;
  if (options.agent !== undefined) hello.agent = options.agent;
  return hello;
}

function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/**
 * Compares two secrets in time independent of where they differ.
 *
 * @param a A secret.
 * @param b Another secret.
 * @returns Whether they are equal.
 *
 * @example Usage
 * ```ts
 * import { tokensEqual } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(tokensEqual("s3cret", "s3cret"), true);
 * assert.equal(tokensEqual("s3cret", "s3creT"), false);
 * ```
 */
export function tokensEqual(a: string, b: string): boolean {
  const x = bytesOf(a), y = bytesOf(b);
  // Compare equal-length buffers so the length itself leaks only through the
  // final result: pad the shorter one and fold the length check in at the end.
  const n = Math.max(x.length, y.length, 1);
  const px = new Uint8Array(n), py = new Uint8Array(n);
  px.set(x);
  py.set(y);
  return timingSafeEqual(px, py) && x.length === y.length;
}

function stringList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `HELLO field '${field}' must be a list of strings`,
    );
  }
  return value;
}

function positive(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `HELLO field '${field}' must be a positive integer, got '${JSON.stringify(value)}'`,
    );
  }
  return value;
}

/**
 * The server's side of the handshake: checks a HELLO and picks the settings.
 *
 * @param hello The HELLO payload object.
 * @param options What the server accepts.
 * @param session The id to give the new session.
 * @returns The settings to send in HELLO_ACK and use from now on.
 * @throws {StreamwireError} `unauthenticated` on a bad token, `unimplemented`
 *   for a version or codec the server lacks, `invalid_argument` for bad fields.
 *
 * @example Usage
 * ```ts
 * import { helloPayload, negotiate } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const settings = negotiate(helloPayload({ codecs: ["cbor", "json"] }), { codecs: ["json"] }, "s1");
 * assert.equal(settings.codec, "json");
 * assert.throws(() => negotiate(helloPayload(), { token: "t" }, "s2"), { codeName: "unauthenticated" });
 * ```
 */
export function negotiate(
  hello: Record<string, unknown>,
  options: NegotiateOptions,
  session: string,
): SessionSettings {
  if (options.token !== undefined) {
    const token = typeof hello.token === "string" ? hello.token : "";
    if (!tokensEqual(token, options.token)) {
      throw new StreamwireError(Status.UNAUTHENTICATED, "Bad or missing token");
    }
  }
  if (hello.version !== VERSION) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `Unsupported protocol version '${JSON.stringify(hello.version)}', expected '${VERSION}'`,
    );
  }
  const offered = stringList(hello.codecs, "codecs");
  const ours = options.codecs ?? SUPPORTED_CODECS;
  const codec = offered.find((c) => (ours as readonly string[]).includes(c)) as
    | CodecName
    | undefined;
  if (codec === undefined) {
    throw new StreamwireError(
      Status.UNIMPLEMENTED,
      `No common codec: offered '${offered.join(",")}', supported '${ours.join(",")}'`,
    );
  }
  const accepted = hello.compression === undefined
    ? []
    : stringList(hello.compression, "compression");
  const compression = (options.compression ?? SUPPORTED_COMPRESSION).filter((c) =>
    accepted.includes(c)
  );
  const clientMaxFrame = positive(hello.maxFrame, "maxFrame", DEFAULT_MAX_FRAME);
  positive(hello.heartbeatMs, "heartbeatMs", DEFAULT_HEARTBEAT_MS);
  positive(hello.window, "window", DEFAULT_WINDOW);
  return {
    session,
    codec,
    compression,
    heartbeatMs: Math.max(MIN_HEARTBEAT_MS, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS),
    maxFrame: Math.min(clientMaxFrame, options.maxFrame ?? DEFAULT_MAX_FRAME),
    window: options.window ?? DEFAULT_WINDOW,
  };
}

/**
 * The client's side: reads the settings out of a HELLO_ACK.
 *
 * @param ack The HELLO_ACK payload object.
 * @param hello What the client offered, to check the server's choice against.
 * @returns The settings.
 * @throws {StreamwireError} `invalid_argument` if the server chose outside the offer.
 *
 * @example Usage
 * ```ts
 * import { acceptAck, helloPayload, negotiate } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const hello = helloPayload();
 * const settings = acceptAck({ ...negotiate(hello, {}, "s1"), version: 1 }, hello);
 * assert.equal(settings.session, "s1");
 * ```
 */
export function acceptAck(
  ack: Record<string, unknown>,
  hello: Record<string, unknown>,
): SessionSettings {
  const codecs = hello.codecs as string[];
  if (typeof ack.codec !== "string" || !codecs.includes(ack.codec)) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Server chose codec '${String(ack.codec)}' outside the offer '${codecs.join(",")}'`,
    );
  }
  const offered = hello.compression as string[];
  const compression =
    (ack.compression === undefined ? [] : stringList(ack.compression, "compression"))
      .filter((c) => offered.includes(c)) as CompressionName[];
  if (typeof ack.session !== "string") {
    throw new StreamwireError(Status.INVALID_ARGUMENT, "HELLO_ACK has no session id");
  }
  return {
    session: ack.session,
    codec: ack.codec as CodecName,
    compression,
    heartbeatMs: Math.max(
      MIN_HEARTBEAT_MS,
      positive(ack.heartbeatMs, "heartbeatMs", DEFAULT_HEARTBEAT_MS),
    ),
    maxFrame: positive(ack.maxFrame, "maxFrame", DEFAULT_MAX_FRAME),
    window: positive(ack.window, "window", DEFAULT_WINDOW),
  };
}
