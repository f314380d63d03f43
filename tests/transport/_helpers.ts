// Shared helpers of the server tests: servers on real sockets or memory,
// raw peers that speak frames by hand, and waits on events. Private to tests/.
//
// Tests await the event they wait for (a frame, a handler callback, a state
// change, `closed`); the only clock here is a safety net that turns a hang
// into a failure (SAFETY_NET_MS), never a speed check.

import assert from "node:assert/strict";
import { createDecodeChain } from "../../codec/chain.ts";
import { FrameType } from "../../codec/constants.ts";
import type { StreamwireError } from "../../codec/error.ts";
import { encodeFrames } from "../../codec/frame_encoder_stream.ts";
import { encodeMessage, type Message } from "../../codec/message.ts";
import type { Stage } from "../../codec/stage.ts";
import {
  type Connection,
  dial,
  type HelloOptions,
  helloPayload,
  listen,
  type Listener,
  type ListenOptions,
  memoryListener,
  openSession,
  type OpenSessionOptions,
  Server,
  type ServerOptions,
  type Session,
  type SessionHandler,
  type SessionStages,
  type SessionState,
} from "../../transport/mod.ts";

/**
 * How long an awaited event may take before the test fails. This is not a
 * speed check: on a loaded machine events come late but they come; the cap
 * only turns a hang (an event that never comes) into a failure that names
 * what it waited for.
 */
export const SAFETY_NET_MS = 30_000;

/**
 * Resolves or rejects as `promise` does. If it is still pending after
 * `safetyNetMs`, fails naming `what`: only a hang is reported.
 */
export async function guard<T>(
  promise: Promise<T>,
  what: string,
  safetyNetMs = SAFETY_NET_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new assert.AssertionError({
            message: `Still waiting for ${what} after ${safetyNetMs} ms ` +
              "(a safety net against a hang, not a speed check)",
          }),
        ),
      safetyNetMs,
    );
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** The port of a listener's URL-form address. */
export function portOf(addr: string): number {
  return Number(new URL(addr).port);
}

/**
 * Sleeps `ms`. Only for pacing a scenario (a peer that trickles bytes),
 * never to wait for an outcome: await the outcome's event instead.
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One turn of the event loop, so that pending I/O and timers run (a writer
 * yielding between sends). It waits for nothing in particular.
 */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Polls `check` until it holds. Only for conditions that no event announces
 * (open file descriptors, a byte counter); anything with an event is
 * awaited instead. The cap defaults to {@linkcode SAFETY_NET_MS} and only
 * turns a hang into a failure.
 */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = SAFETY_NET_MS,
): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) {
      assert.fail(
        `Still waiting for ${what} after ${timeoutMs} ms ` +
          "(a safety net against a hang, not a speed check)",
      );
    }
    await delay(2);
  }
}

/**
 * Wakes its waiters whenever something happened (a message, a session
 * opened or closed); each re-checks its own condition.
 */
export class Signal {
  #waiters: (() => void)[] = [];

  /** Something happened: every waiter re-checks. */
  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `check()` holds, re-checked at every {@linkcode Signal.notify}. */
  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return guard(
      new Promise<void>((resolve) => {
        const wake = () => (check() ? resolve() : this.#waiters.push(wake));
        this.#waiters.push(wake);
      }),
      what,
    );
  }
}

/** Resolves with the detail of the next `type` event on `target` that `accept` takes. */
export function once<T>(
  target: EventTarget,
  type: string,
  accept: (detail: T) => boolean = () => true,
): Promise<T> {
  return guard(
    new Promise<T>((resolve) => {
      const listener: EventListener = (event) => {
        const detail = (event as CustomEvent<T>).detail;
        if (!accept(detail)) return;
        target.removeEventListener(type, listener);
        resolve(detail);
      };
      target.addEventListener(type, listener);
    }),
    `a '${type}' event`,
  );
}

/** A session's `statechange` detail. */
export interface StateChange {
  from: SessionState;
  to: SessionState;
}

/**
 * Resolves at the session's next transition into `to`, with its detail.
 * Call it before doing what causes the transition.
 */
export function nextState(session: Session, to: SessionState): Promise<StateChange> {
  return once<StateChange>(session, "statechange", (change) => change.to === to);
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
 * decode chain; it knows nothing of sessions. Reads await the next message,
 * however long it takes (up to the safety net).
 */
export class RawPeer {
  readonly conn: Connection;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Message[]>;
  #buffered: Message[] = [];
  #syncs = 0;
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

  /**
   * The next message, or undefined at the end of the stream. `safetyNetMs`
   * only turns a hang into a failure.
   */
  async next(safetyNetMs = SAFETY_NET_MS): Promise<Message | undefined> {
    while (this.#buffered.length === 0) {
      if (this.ended !== undefined) return undefined;
      let result: ReadableStreamReadResult<Message[]>;
      try {
        result = await guard(this.#reader.read(), "the next frame", safetyNetMs);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        this.ended = error;
        return undefined;
      }
      if (result.done) this.ended = "eof";
      else if (Array.isArray(result.value)) this.#buffered.push(...result.value);
      else this.#buffered.push(result.value as Message);
    }
    return this.#buffered.shift();
  }

  /** Skips messages until one of `type` arrives, failing if the stream ends first. */
  async nextOf(type: number): Promise<Message> {
    for (;;) {
      const message = await this.next();
      if (message === undefined) {
        assert.fail(`Stream ended before a frame of type 0x${type.toString(16)}`);
      }
      if (message.type === type) return message;
    }
  }

  /** Everything until the end of the stream (EOF or a read error). */
  async rest(): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      const message = await this.next();
      if (message === undefined) return out;
      out.push(message);
    }
  }

  /**
   * Sends a PING and reads until its PONG; returns what arrived before it.
   * The server answers frames in order, so anything it sent before reading
   * this PING is in the result: a frame not in it was not sent before.
   */
  async sync(): Promise<Message[]> {
    const payload = Uint8Array.of(0x5a, ++this.#syncs);
    await this.send({ type: FrameType.PING, seq: 0, payload });
    const before: Message[] = [];
    for (;;) {
      const message = await this.next();
      if (message === undefined) assert.fail(`Stream ended before the PONG of sync ${this.#syncs}`);
      const pong = message.type === FrameType.PONG &&
        (message as { payload: Uint8Array }).payload.length === 2 &&
        (message as { payload: Uint8Array }).payload[1] === payload[1];
      if (pong) return before;
      before.push(message);
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

/** A session the server closed, with the reason its handler got. */
export interface Closed {
  session: Session;
  reason: StreamwireError | undefined;
}

/** A server on a real socket or on memory, with helpers to connect to it. */
export interface TestServer {
  server: Server;
  /** Address in URL form (tcp, tls) or the memory listener's. */
  addr: string;
  /** Sessions closed so far, in order, as the server's handler saw them. */
  closes: Closed[];
  /**
   * Resolves once `check()` holds, re-checked each time the server accepts
   * a connection, completes a handshake or closes a session.
   */
  until(check: () => boolean, what: string): Promise<void>;
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

/** `listener`, calling `accepted` once the server took each connection it yielded. */
function observed(listener: Listener, accepted: () => void): Listener {
  return {
    addr: listener.addr,
    close: () => listener.close(),
    async *[Symbol.asyncIterator]() {
      // The server accepts a yielded connection before it asks for the next.
      for await (const conn of listener) {
        yield conn;
        accepted();
      }
    },
  };
}

/**
 * Starts a Server on 127.0.0.1 port 0 (or a memory listener) and serves it.
 * Heartbeat and handshake timeout stay at their defaults (30 s, 5 s) unless
 * a test is about them, so a busy machine cannot make a healthy peer look
 * dead.
 */
export function startServer(
  options: Partial<ServerOptions> & { where?: Where; listen?: ListenOptions } = {},
): TestServer {
  const { where = "tcp", listen: listenOptions, handler: user = quietHandler(), ...serverOptions } =
    options;
  const events = new Signal();
  const closes: Closed[] = [];
  // Delegates to the test's handler, announcing opens and closes; `drain`
  // only if the test has one, since the server waits for it when present.
  const handler: SessionHandler = {
    message: (session, message) => user.message(session, message),
    open(session) {
      user.open?.(session);
      events.notify();
    },
    goaway: (session, message) => user.goaway?.(session, message),
    close(session, reason) {
      user.close?.(session, reason);
      closes.push({ session, reason });
      events.notify();
    },
  };
  if (user.drain !== undefined) handler.drain = (session) => user.drain!(session);
  const server = new Server({ ...serverOptions, handler });
  let connect: () => Promise<Connection>;
  let addr: string;
  let serving: Promise<void>;
  if (where === "memory") {
    const listener = memoryListener();
    addr = listener.addr;
    connect = () => listener.connect();
    serving = server.serve(observed(listener, () => events.notify()));
  } else {
    const listener = listen({ port: 0, ...listenOptions });
    addr = listener.addr;
    connect = () => dial(listener.addr);
    serving = server.serve(observed(listener, () => events.notify()));
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
    closes,
    until: (check, what) => events.until(check, what),
    connect,
    async raw() {
      const peer = new RawPeer(await connect());
      opened.push(peer);
      return peer;
    },
    async client(clientOptions = {}) {
      const session = await openSession(await connect(), {
        handler: quietHandler(),
        handshakeTimeoutMs: SAFETY_NET_MS,
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

/** A handler that keeps the messages a session receives and wakes waiters per message. */
export function collector(): {
  handler: SessionHandler;
  messages: Message[];
  /** The next message not yet taken (of `type`, skipping others). */
  next(type?: number): Promise<Message>;
  /** Resolves once `check(messages)` holds, re-checked per message. */
  until(check: (messages: Message[]) => boolean, what: string): Promise<void>;
} {
  const messages: Message[] = [];
  const arrived = new Signal();
  let read = 0;
  const take = (type: number | undefined): Message | undefined => {
    while (read < messages.length) {
      const message = messages[read++];
      if (type === undefined || message.type === type) return message;
    }
  };
  return {
    messages,
    handler: {
      message(_session, message) {
        messages.push(message);
        arrived.notify();
      },
    },
    async next(type) {
      let found: Message | undefined;
      await arrived.until(
        () => (found = take(type)) !== undefined,
        `a message${type === undefined ? "" : ` of type 0x${type.toString(16)}`}`,
      );
      return found!;
    },
    until: (check, what) => arrived.until(() => check(messages), what),
  };
}

/**
 * An inbound message stage that records every message a session receives,
 * PING and PONG included, after the session has handled it.
 */
export function tap(): {
  stages: SessionStages;
  messages: Message[];
  /** The first message (of `type`, if given) received after this call. */
  arrival(type?: number): Promise<Message>;
  /** Resolves once `check(messages)` holds, re-checked per message. */
  until(check: (messages: Message[]) => boolean, what: string): Promise<void>;
} {
  const messages: Message[] = [];
  const arrived = new Signal();
  const stage: Stage<Message, Message> = {
    transform(message, controller) {
      // The session takes it inside enqueue (unless an earlier message
      // still holds the pipeline), so waiters see its effects.
      controller.enqueue(message);
      messages.push(message);
      arrived.notify();
    },
  };
  return {
    stages: { messages: [stage] },
    messages,
    async arrival(type) {
      const from = messages.length;
      let found: Message | undefined;
      await arrived.until(
        () =>
          (found = messages.slice(from).find((m) => type === undefined || m.type === type)) !==
            undefined,
        `a frame${type === undefined ? "" : ` of type 0x${type.toString(16)}`}`,
      );
      return found!;
    },
    until: (check, what) => arrived.until(() => check(messages), what),
  };
}
