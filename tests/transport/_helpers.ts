// Shared helpers of the server tests: servers on real sockets or memory,
// raw peers that speak frames by hand, and small waits. Private to tests/.

import assert from "node:assert/strict";
import { createDecodeChain } from "../../codec/chain.ts";
import { FrameType } from "../../codec/constants.ts";
import { encodeFrames } from "../../codec/frame_encoder_stream.ts";
import { encodeMessage, type Message } from "../../codec/message.ts";
import {
  type Connection,
  dial,
  type HelloOptions,
  helloPayload,
  listen,
  type ListenOptions,
  type MemoryListener,
  memoryListener,
  openSession,
  type OpenSessionOptions,
  Server,
  type ServerOptions,
  type Session,
  type SessionHandler,
} from "../../transport/mod.ts";

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every few ms until it holds, failing after `timeoutMs`. */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 2000,
): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) assert.fail(`Timed out after ${timeoutMs} ms: ${what}`);
    await delay(2);
  }
}

/** Wire bytes of messages, as a peer would write them. */
export function encode(...messages: Message[]): Uint8Array {
  return encodeFrames(messages.map(encodeMessage));
}

/** HELLO frame bytes; no compression by default, so raw peers read plain frames. */
export function helloBytes(
  options: HelloOptions = {},
  patch: Record<string, unknown> = {},
): Uint8Array {
  const hello = { ...helloPayload({ compression: [], codecs: ["json"], ...options }), ...patch };
  return encode({ type: FrameType.HELLO, seq: 0, hello });
}

/** Decodes bytes with the decode chain, as a client would. */
export async function decodeAll(bytes: Uint8Array): Promise<Message[]> {
  const batches = await Array.fromAsync(
    ReadableStream.from([bytes]).pipeThrough(createDecodeChain()),
  );
  return batches.flat();
}

/** A handler that does nothing (or what `extra` says). */
export function quietHandler(extra: Partial<SessionHandler> = {}): SessionHandler {
  return { message() {}, ...extra };
}

/** Currently open file descriptors of this process (Linux), to spot leaked sockets. */
export function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/**
 * A peer that writes raw bytes and reads decoded messages through the
 * decode chain; it knows nothing of sessions.
 */
export class RawPeer {
  readonly conn: Connection;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Message[]>;
  #buffered: Message[] = [];
  #pending: Promise<ReadableStreamReadResult<Message[]>> | undefined;
  /** How reading ended: "eof", or the error the chain raised. */
  ended: "eof" | unknown | undefined;

  constructor(conn: Connection) {
    this.conn = conn;
    this.#writer = conn.writable.getWriter();
    this.#writer.closed.catch(() => {});
    this.#reader = conn.readable.pipeThrough(createDecodeChain()).getReader();
  }

  /** Writes raw bytes; resolves false if the connection refused them. */
  write(bytes: Uint8Array): Promise<boolean> {
    return this.#writer.write(bytes).then(() => true, () => false);
  }

  /** Encodes and writes messages in one write. */
  send(...messages: Message[]): Promise<boolean> {
    return this.write(encode(...messages));
  }

  /** The next message, or undefined at the end of the stream; fails after `timeoutMs`. */
  async next(timeoutMs = 2000): Promise<Message | undefined> {
    while (this.#buffered.length === 0) {
      if (this.ended !== undefined) return undefined;
      this.#pending ??= this.#reader.read();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      let result: ReadableStreamReadResult<Message[]> | "timeout";
      try {
        result = await Promise.race([this.#pending, timeout]);
      } catch (error) {
        this.#pending = undefined;
        this.ended = error;
        return undefined;
      } finally {
        clearTimeout(timer);
      }
      if (result === "timeout") assert.fail(`No message within ${timeoutMs} ms`);
      this.#pending = undefined;
      if (result.done) this.ended = "eof";
      else if (Array.isArray(result.value)) this.#buffered.push(...result.value);
      else this.#buffered.push(result.value as Message);
    }
    return this.#buffered.shift();
  }

  /** Skips messages until one of `type` arrives, failing if the stream ends first. */
  async nextOf(type: number, timeoutMs = 2000): Promise<Message> {
    for (;;) {
      const message = await this.next(timeoutMs);
      if (message === undefined) {
        assert.fail(`Stream ended before a frame of type 0x${type.toString(16)}`);
      }
      if (message.type === type) return message;
    }
  }

  /** Everything until the end of the stream (EOF or a read error). */
  async rest(timeoutMs = 2000): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      const message = await this.next(timeoutMs);
      if (message === undefined) return out;
      out.push(message);
    }
  }

  /** Sends HELLO and reads HELLO_ACK; returns the ack. */
  async handshake(options: HelloOptions = {}): Promise<Record<string, unknown>> {
    await this.write(helloBytes(options));
    const ack = await this.next();
    assert.equal(ack?.type, FrameType.HELLO_ACK, `expected HELLO_ACK, got ${JSON.stringify(ack)}`);
    return (ack as { ack: Record<string, unknown> }).ack;
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    this.conn.close();
    await this.#reader.cancel().catch(() => {});
    await this.conn.closed;
  }
}

/** A server on a real socket or on memory, with helpers to connect to it. */
export interface TestServer {
  server: Server;
  /** Address in URL form (tcp, tls) or the memory listener's. */
  addr: string;
  /** Opens a raw connection to the server. */
  connect(): Promise<Connection>;
  /** A raw peer on a new connection. */
  raw(): Promise<RawPeer>;
  /** A client session over a new connection. */
  client(options?: Partial<OpenSessionOptions>): Promise<Session>;
  /** Shuts the server down and waits until the listener stops. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export type Where = "tcp" | "memory";

/** Starts a Server on 127.0.0.1 port 0 (or a memory listener) and serves it. */
export function startServer(
  options: Partial<ServerOptions> & { where?: Where; listen?: ListenOptions } = {},
): TestServer {
  const { where = "tcp", listen: listenOptions, ...serverOptions } = options;
  const server = new Server({ handler: quietHandler(), ...serverOptions });
  let connect: () => Promise<Connection>;
  let addr: string;
  let serving: Promise<void>;
  if (where === "memory") {
    const listener: MemoryListener = memoryListener();
    addr = listener.addr;
    connect = () => listener.connect();
    serving = server.serve(listener);
  } else {
    const listener = listen({ port: 0, ...listenOptions });
    addr = listener.addr;
    connect = () => dial(listener.addr);
    serving = server.serve(listener);
  }
  const opened: (Session | RawPeer)[] = [];
  const close = async () => {
    await Promise.all(opened.map((o) => o.close()));
    await server.shutdown({ deadlineMs: 0 });
    await serving;
  };
  return {
    server,
    addr,
    connect,
    async raw() {
      const peer = new RawPeer(await connect());
      opened.push(peer);
      return peer;
    },
    async client(clientOptions = {}) {
      const session = await openSession(await connect(), {
        handler: quietHandler(),
        handshakeTimeoutMs: 1000,
        ...clientOptions,
      });
      opened.push(session);
      return session;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The server-side session of a client session (same id). */
export function serverSide(server: Server, client: Session): Session {
  const session = server.session(client.id);
  assert.ok(session, `server has a session '${client.id}'`);
  return session;
}

/** Resolves with the next message a handler-driven session receives. */
export function collector(): {
  handler: SessionHandler;
  messages: Message[];
  next(type?: number, timeoutMs?: number): Promise<Message>;
} {
  const messages: Message[] = [];
  let wake: (() => void) | undefined;
  let read = 0;
  return {
    messages,
    handler: {
      message(_session, message) {
        messages.push(message);
        wake?.();
      },
    },
    async next(type, timeoutMs = 2000) {
      const start = Date.now();
      for (;;) {
        while (read < messages.length) {
          const message = messages[read++];
          if (type === undefined || message.type === type) return message;
        }
        if (Date.now() - start > timeoutMs) assert.fail(`No message within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            wake = undefined;
            resolve();
          }, 20);
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          };
        });
      }
    },
  };
}
