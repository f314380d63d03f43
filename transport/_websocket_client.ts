// streamwire's own RFC 6455 client, for Deno: the upgrade over a socket
// connection, then messages as frames written in one write each (header,
// mask and payload together) on a socket with Nagle's algorithm off. Deno's
// global WebSocket writes a payload over 1 KiB as two writes with Nagle on,
// and each such message then waits for a delayed ACK (about 40 ms; see
// tests/bench/ws_nagle.ts). Reading is pulled, so TCP's own flow control
// holds a server that sends faster than the session reads, and a message's
// size is checked from its frame header before anything of it is buffered.
// Private to transport/.

import { concat } from "../codec/_bytes.ts";
import { DEFAULT_MAX_FRAME, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection } from "./connection.ts";
import { type MessageChannel, WebSocketConnection } from "./_websocket_connection.ts";
import { CloseCode, SUBPROTOCOL, textMessage, tooBig, Violation } from "./_websocket_frames.ts";
import type { WebSocketDialTarget } from "./websocket_dial.ts";

/** What the client needs of a socket connection: its pull interface. */
type Socket = Connection & Required<Pick<Connection, "read" | "write">>;

/** Options of {@linkcode upgradeClient}. */
export interface UpgradeOptions {
  /** Sent as `authorization: Bearer`. */
  token?: string;
  /** Bound on frame bodies until the handshake names the negotiated one. */
  maxFrame?: number;
  /** Gives up on the upgrade (the socket is closed). */
  signal: AbortSignal;
}

/** Bytes of response head read before the upgrade is given up on. */
const MAX_RESPONSE_HEAD = 16 * 1024;
/** RFC 6455 4.2.2: appended to the key before hashing it into Sec-WebSocket-Accept. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Gives up on writing the Close frame after this long (ms): a peer that does not read. */
const CLOSE_WRITE_MS = 1000;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function protocolError(message: string): Violation {
  return new Violation(Status.INVALID_ARGUMENT, message, CloseCode.PROTOCOL_ERROR);
}

/** A status for an HTTP answer other than 101. */
function statusOf(http: number): number {
  switch (http) {
    case 400:
      return Status.INVALID_ARGUMENT;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.NOT_FOUND;
    default:
      return Status.UNAVAILABLE;
  }
}

/** Random bytes for masks, drawn from the CSPRNG a page at a time (RFC 6455 5.3). */
let pool = new Uint8Array(0);
let poolAt = 0;
function maskKey(): Uint8Array {
  if (poolAt + 4 > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(4096));
    poolAt = 0;
  }
  poolAt += 4;
  return pool.subarray(poolAt - 4, poolAt);
}

/**
 * One client frame, FIN set, masked (RFC 6455 5.2): header, key and payload
 * in one buffer, the payload placed on a 4-byte boundary so it is masked a
 * word at a time.
 */
export function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const pad = (4 - ((head + 4) & 3)) & 3;
  const start = pad + head + 4;
  const out = new Uint8Array(start + n);
  out[pad] = 0x80 | opcode;
  if (head === 2) {
    out[pad + 1] = 0x80 | n;
  } else if (head === 4) {
    out[pad + 1] = 0x80 | 126;
    out[pad + 2] = n >>> 8;
    out[pad + 3] = n & 0xff;
  } else {
    out[pad + 1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(pad + 2, BigInt(n));
  }
  const key = maskKey();
  out.set(key, start - 4);
  out.set(payload, start);
  const words = n >>> 2;
  if (words > 0) {
    const view = new Uint32Array(out.buffer, start, words);
    const mask = new Uint32Array(out.buffer, start - 4, 1)[0];
    for (let i = 0; i < words; i++) view[i] ^= mask;
  }
  for (let i = words << 2; i < n; i++) out[start + i] ^= key[i & 3];
  return pad === 0 ? out : out.subarray(pad);
}

/** Messages of a socket after the upgrade. */
class SocketChannel implements MessageChannel {
  readonly closed: Promise<void>;
  onViolation?: (violation: Violation) => void;

  #socket: Socket;
  /** Bytes read and not yet parsed: `#buf[#at..]`. */
  #buf: Uint8Array;
  #at = 0;
  /** Writes in flight, the last one's settlement; frames go out in order. */
  #tail: Promise<unknown> = Promise.resolve();
  #writes = 0;
  /** Payload of the PONG waiting behind the writes in flight, if one waits. */
  #pongPayload: Uint8Array | undefined;
  #closeSent = false;
  #closing = false;

  constructor(socket: Socket, rest: Uint8Array) {
    this.#socket = socket;
    this.#buf = rest;
    this.closed = socket.closed;
  }

  async receive(limit: number): Promise<Uint8Array | null> {
    let parts: Uint8Array[] | undefined;
    let total = 0;
    for (;;) {
      if (this.#closing || !(await this.#fill(2))) return null;
      const buf = this.#buf;
      const b0 = buf[this.#at];
      const b1 = buf[this.#at + 1];
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (b0 & 0x70) throw protocolError("WebSocket frame with reserved bits set");
      if (b1 & 0x80) throw protocolError("Masked WebSocket frame from the server (RFC 6455 5.1)");
      let length = b1 & 0x7f;
      const head = length === 126 ? 4 : length === 127 ? 10 : 2;
      if (!(await this.#fill(head))) return null;
      const at = this.#at;
      if (length === 126) {
        length = (this.#buf[at + 2] << 8) | this.#buf[at + 3];
      } else if (length === 127) {
        length = Number(new DataView(this.#buf.buffer, this.#buf.byteOffset).getBigUint64(at + 2));
      }
      this.#at += head;
      if (opcode >= OP_CLOSE) {
        if (!fin || length > 125) throw protocolError("Malformed WebSocket control frame");
        const payload = await this.#take(length);
        if (payload === null) return null;
        if (opcode === OP_PING) this.#pong(payload);
        else if (opcode === OP_CLOSE) {
          // Echo the peer's code (RFC 6455 5.5.1), then the stream ends.
          this.close(length >= 2 ? (payload[0] << 8) | payload[1] : CloseCode.NORMAL, "");
          return null;
        } else if (opcode !== OP_PONG) throw protocolError(`WebSocket opcode '${opcode}'`);
        continue;
      }
      if (opcode === OP_TEXT) throw textMessage();
      const continuation = opcode === OP_CONTINUATION;
      if (
        (opcode !== OP_BINARY && !continuation) || continuation !== (parts !== undefined)
      ) {
        throw protocolError(`Unexpected WebSocket opcode '${opcode}'`);
      }
      // Checked from the header, before any of the payload is read.
      if (total + length > limit) throw tooBig(total + length, limit);
      const payload = await this.#take(length);
      if (payload === null) return null;
      if (fin && parts === undefined) return payload;
      (parts ??= []).push(payload);
      total += length;
      if (fin) return concat(parts);
    }
  }

  send(message: Uint8Array): Promise<void> {
    return this.#write(clientFrame(OP_BINARY, message));
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#closeSent) return this.#socket.close();
    this.#closeSent = true;
    const reasonBytes = new TextEncoder().encode(reason).subarray(0, 123);
    const payload = new Uint8Array(2 + reasonBytes.length);
    payload[0] = code >>> 8;
    payload[1] = code & 0xff;
    payload.set(reasonBytes, 2);
    const socket = this.#socket;
    const timer = setTimeout(() => socket.close(), CLOSE_WRITE_MS);
    this.#write(clientFrame(OP_CLOSE, payload))
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        socket.close();
      });
  }

  /**
   * Answers a PING. While the answer to an earlier one still waits for the
   * writes ahead of it, it is replaced rather than joined by another: a
   * server that sends PINGs and does not read gets one PONG, for its latest
   * PING (RFC 6455 5.5.3), instead of a queue that grows with its PINGs.
   */
  #pong(payload: Uint8Array): void {
    const waiting = this.#pongPayload !== undefined;
    this.#pongPayload = payload;
    if (waiting) return;
    if (this.#writes === 0) {
      this.#pongPayload = undefined;
      this.#write(clientFrame(OP_PONG, payload)).catch(() => {});
      return;
    }
    this.#tail.then(() => {
      const latest = this.#pongPayload!;
      this.#pongPayload = undefined;
      this.#write(clientFrame(OP_PONG, latest)).catch(() => {});
    });
  }

  /** Writes frames in order, one socket write at a time. */
  #write(frame: Uint8Array): Promise<void> {
    const socket = this.#socket;
    let writing: Promise<void>;
    if (this.#writes === 0) writing = socket.write(frame);
    else writing = this.#tail.then(() => socket.write(frame));
    this.#writes++;
    const done = writing.finally(() => this.#writes--);
    this.#tail = done.catch(() => {});
    return done;
  }

  /** Reads until `n` bytes are buffered; false at the end of the stream. */
  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length - this.#at < n) {
      const chunk = await this.#socket.read();
      if (chunk === null) return false;
      const rest = this.#buf.subarray(this.#at);
      this.#buf = rest.length === 0 ? chunk : concat([rest, chunk]);
      this.#at = 0;
    }
    return true;
  }

  /**
   * The next `n` bytes, owned by the caller: a view of a chunk that is
   * never read again when it holds them all, else a fresh buffer.
   */
  async #take(n: number): Promise<Uint8Array | null> {
    const have = this.#buf.length - this.#at;
    if (have >= n) {
      const out = this.#buf.subarray(this.#at, this.#at + n);
      this.#at += n;
      return out;
    }
    const out = new Uint8Array(n);
    out.set(this.#buf.subarray(this.#at));
    let filled = have;
    this.#buf = new Uint8Array(0);
    this.#at = 0;
    while (filled < n) {
      const chunk = await this.#socket.read();
      if (chunk === null) return null;
      const used = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used < chunk.length) this.#buf = chunk.subarray(used);
    }
    return out;
  }
}

/** Reads the response head; returns it and the bytes after it. */
async function readHead(socket: Socket): Promise<{ head: string; rest: Uint8Array }> {
  let buf: Uint8Array = new Uint8Array(0);
  for (;;) {
    const chunk = await socket.read();
    if (chunk === null) {
      throw new StreamwireError(Status.UNAVAILABLE, "Connection closed during the upgrade");
    }
    buf = buf.length === 0 ? chunk : concat([buf, chunk]);
    for (let i = 3; i < buf.length; i++) {
      if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
        return {
          head: new TextDecoder().decode(buf.subarray(0, i - 3)),
          rest: buf.subarray(i + 1),
        };
      }
    }
    if (buf.length > MAX_RESPONSE_HEAD) {
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Upgrade response head exceeds '${MAX_RESPONSE_HEAD}' bytes`,
      );
    }
  }
}

/**
 * Upgrades an open socket connection to a WebSocket one (RFC 6455 4.1):
 * sends the request, checks the 101 answer, its accept key and the
 * subprotocol, and returns a {@linkcode WebSocketConnection} over it.
 */
export async function upgradeClient(
  socket: Socket,
  url: URL,
  options: UpgradeOptions,
): Promise<Connection> {
  const where = `${url.protocol}//${url.host}${url.pathname}`;
  const onAbort = () => socket.close();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const key = base64(crypto.getRandomValues(new Uint8Array(16)));
    const lines = [
      `GET ${url.pathname}${url.search} HTTP/1.1`,
      `Host: ${url.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      `Sec-WebSocket-Protocol: ${SUBPROTOCOL}`,
    ];
    if (options.token !== undefined) lines.push(`Authorization: Bearer ${options.token}`);
    await socket.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    const { head, rest } = await readHead(socket);
    options.signal.throwIfAborted();
    const [status, ...fields] = head.split("\r\n");
    const code = Number(/^HTTP\/1\.1 (\d{3})/.exec(status)?.[1]);
    if (code !== 101) {
      throw new StreamwireError(
        statusOf(code),
        `Server at '${where}' refused the WebSocket upgrade: '${status}'`,
      );
    }
    const headers = new Map<string, string>();
    for (const field of fields) {
      const colon = field.indexOf(":");
      if (colon > 0) {
        headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim());
      }
    }
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + ACCEPT_GUID));
    if (headers.get("sec-websocket-accept") !== base64(new Uint8Array(digest))) {
      throw new StreamwireError(Status.UNAVAILABLE, `Server at '${where}' sent a wrong accept key`);
    }
    if (headers.get("sec-websocket-protocol") !== SUBPROTOCOL) {
      throw new StreamwireError(
        Status.UNAVAILABLE,
        `Server at '${where}' did not agree to subprotocol '${SUBPROTOCOL}'`,
      );
    }
    options.signal.throwIfAborted();
    const transport = url.protocol === "wss:" ? "wss" : "ws";
    const local = socket.localAddr.replace(/^[a-z]+:/, `${transport}:`);
    return new WebSocketConnection(new SocketChannel(socket, rest), {
      transport,
      localAddr: local,
      remoteAddr: `${transport}://${url.host}${url.pathname}`,
      maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME,
    });
  } catch (error) {
    socket.close();
    throw options.signal.aborted ? options.signal.reason : error;
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
}

/** What dialing a socket takes: the fields of `DialOptions` used here. */
interface SocketDialOptions {
  transport: "tcp" | "tls";
  hostname: string;
  port: number;
  caCerts?: string[];
  caFile?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * `dial()` of a WebSocket address in Deno: a socket opened by `dialSocket`
 * (TCP with Nagle's algorithm off, or TLS), then the upgrade, bounded by
 * the same `timeoutMs` and `signal`.
 */
export async function dialWebSocketOver(
  target: WebSocketDialTarget | string | URL,
  dialSocket: (options: SocketDialOptions) => Promise<Connection>,
): Promise<Connection> {
  const settings: WebSocketDialTarget = typeof target === "string" || target instanceof URL
    ? { url: target }
    : target;
  const text = String(settings.url);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StreamwireError(Status.INVALID_ARGUMENT, `Address '${text}' is not a URL`);
  }
  const scheme = url.protocol.slice(0, -1);
  if ((scheme !== "ws" && scheme !== "wss") || !url.hostname || url.username || url.password) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Address '${text}' must be 'ws://host:port/path' or 'wss://…', without credentials`,
    );
  }
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const socket = await dialSocket({
    transport: scheme === "wss" ? "tls" : "tcp",
    hostname,
    port: url.port === "" ? (scheme === "ws" ? 80 : 443) : Number(url.port),
    caCerts: settings.caCerts,
    caFile: settings.caFile,
    timeoutMs: settings.timeoutMs,
    signal: settings.signal,
  }) as Socket;
  const timeoutMs = settings.timeoutMs ?? 10_000;
  const stop = new AbortController();
  const onAbort = () =>
    stop.abort(new StreamwireError(Status.CANCELLED, `Dial to '${text}' was cancelled`));
  settings.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeoutMs >= 2 ** 31 ? undefined : setTimeout(() =>
    stop.abort(
      new StreamwireError(
        Status.DEADLINE_EXCEEDED,
        `WebSocket upgrade at '${text}' did not complete within timeoutMs '${timeoutMs}'`,
      ),
    ), timeoutMs);
  try {
    return await upgradeClient(socket, url, {
      token: settings.token,
      maxFrame: settings.maxFrame,
      signal: stop.signal,
    });
  } finally {
    clearTimeout(timer);
    settings.signal?.removeEventListener("abort", onAbort);
  }
}
