/**
 * The serving side of RPC as a stream of decoded messages, for servers
 * built from pipes rather than from {@linkcode RpcServer}.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME, FrameType, HEADER_SIZE, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import {
  type CallMessage,
  encodedBodySize,
  type HelloAckMessage,
  type Message,
} from "../codec/message.ts";
import { type CodecName, getCodec } from "../codec/payload_codec.ts";
import { acceptAck, type SessionSettings } from "../transport/handshake.ts";
import { Dispatcher, logError } from "./_dispatcher.ts";
import type { Outlet } from "./_flow.ts";
import type { Interceptor } from "./interceptor.ts";
import type { Methods } from "./methods.ts";
import type { ErrorInfo, PeerLimits, Push } from "./peer.ts";
import type { Session } from "../transport/session.ts";

/** Options of {@linkcode RpcDispatcherStream}. */
export interface RpcDispatcherStreamOptions
  extends Pick<PeerLimits, "maxConcurrentCalls" | "maxBatchSize" | "maxDeadlineMs"> {
  /** The methods served. */
  methods: Methods;
  /** Wrap every call served (`call.side` is `"callee"`), first one outermost. */
  interceptors?: Interceptor[];
  /** Receives NOTIFY for unregistered methods; what it throws goes to `onError`. */
  onPush?: (push: Push) => void;
  /**
   * Receives what fails unseen by the client: errors thrown by handlers or
   * interceptors that are not `StreamwireError`s (the client gets code 2
   * `unknown` and a generic message naming the method), failures of NOTIFY
   * handlers, and whatever `onPush` throws.
   *
   * @default {logs with console.error}
   */
  onError?: (error: unknown, info: ErrorInfo) => void;
  /**
   * Bytes of answers waiting for the reader of the readable side. Past it,
   * handlers wait to send (as with `Session.write`) and calls the client
   * opens wait to be read, so a client that sends calls without reading the
   * answers cannot grow this side's memory.
   *
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * Messages waiting for the reader, the same bound counted in frames, so
   * that many tiny frames are bounded too. Small control frames (END,
   * CREDIT, PONG) are accepted up to twice this many; past that the client
   * is a slow consumer and the stream fails.
   *
   * @default {8192}
   */
  maxQueueFrames?: number;
}

/** The bounds of {@linkcode RpcDispatcherStreamOptions}, as `RpcServer` and `Session` set them. */
const DEFAULTS = {
  maxConcurrentCalls: 100,
  maxBatchSize: 1024,
  maxDeadlineMs: 300_000,
  maxQueueBytes: 1024 * 1024,
  maxQueueFrames: 8192,
} as const;

/**
 * Small frames that keep a connection and its calls working: never refused
 * for queue room, as a session does not refuse them either.
 */
const CONTROL = new Set<number>([
  FrameType.HELLO_ACK,
  FrameType.PONG,
  FrameType.END,
  FrameType.CANCEL,
  FrameType.CREDIT,
]);

/** Hooks of a {@linkcode PipeSession} into its stream. */
interface PipeHooks {
  /** The reader cancelled the readable side. */
  cancelled(reason: unknown): void;
  /** Control frames piled up unread. */
  slow(error: StreamwireError): void;
}

/**
 * The outbound queue of an {@linkcode RpcDispatcherStream}, which is also
 * what its handlers get as `ctx.session`. Messages wait here, bounded,
 * until the reader of `readable` takes them one by one.
 */
class PipeSession implements Outlet {
  /** Session id, from the HELLO_ACK. */
  id = "";
  /** Settings of the HELLO_ACK, once it passed. */
  settings: SessionSettings | undefined;
  /** A stream sends no GOAWAY: every call is admitted. */
  readonly goawayLastId: number | undefined = undefined;
  /** Always the serving side. */
  readonly role = "server" as const;
  /** Free-form data attached by the application, as on a `Session`. */
  readonly data: Record<string, unknown> = {};
  /** Messages for the reader, one per read. */
  readonly readable: ReadableStream<Message>;

  #maxBytes: number;
  #maxFrames: number;
  #hooks: PipeHooks;
  #queue: Message[] = [];
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  #frames = 0;
  #controller!: ReadableStreamDefaultController<Message>;
  /** A read is pending and the queue is empty: the next message goes straight to it. */
  #waiting = false;
  /** No more messages are accepted; the readable closes once the queue is read. */
  #ending = false;
  #done = false;
  #waiters: (() => void)[] = [];

  constructor(maxBytes: number, maxFrames: number, hooks: PipeHooks) {
    this.#maxBytes = maxBytes;
    this.#maxFrames = maxFrames;
    this.#hooks = hooks;
    // High-water mark 0: nothing is pulled ahead of a read, so the queue
    // here is the only one and its counts are what the reader has not taken.
    this.readable = new ReadableStream<Message>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: (reason) => {
        this.#close();
        this.#hooks.cancelled(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** The negotiated payload codec (`json` until the HELLO_ACK). */
  get codec(): CodecName {
    return this.settings?.codec ?? "json";
  }

  /** Whether the queue is within its bounds. */
  get writable(): boolean {
    return this.#bytes < this.#maxBytes && this.#frames < this.#maxFrames;
  }

  /** Resolves when the queue is within its bounds (or the stream ended). */
  ready(): Promise<void> {
    if (this.writable || this.#ending) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Queues a message if it fits; small control frames always.
   *
   * @throws {StreamwireError} `resource_exhausted` for a frame larger than the negotiated `maxFrame`.
   */
  send(message: Message): boolean {
    if (this.#ending) return false;
    const body = encodedBodySize(message);
    const maxFrame = this.settings?.maxFrame ?? DEFAULT_MAX_FRAME;
    if (body > maxFrame) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Frame body of '${body}' bytes exceeds maxFrame '${maxFrame}'`,
      );
    }
    const size = HEADER_SIZE + body;
    if (CONTROL.has(message.type)) {
      if (this.#frames >= 2 * this.#maxFrames) {
        const error = new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Slow consumer: '${this.#frames}' frames queued`,
        );
        // Accept nothing more now; fail the stream once the caller's code has run.
        this.#ending = true;
        queueMicrotask(() => this.#hooks.slow(error));
        return false;
      }
    } else if (
      this.#frames + 1 > this.#maxFrames ||
      // One frame larger than the whole bound still goes into an empty queue.
      (this.#bytes > 0 && this.#bytes + size > this.#maxBytes)
    ) {
      return false;
    }
    this.#push(message, size);
    return true;
  }

  /**
   * Queues a message, waiting for the reader to make room first.
   *
   * @throws {StreamwireError} `unavailable` if the stream ended first;
   *   `resource_exhausted` for a frame larger than `maxFrame`.
   */
  async write(message: Message): Promise<void> {
    while (!this.send(message)) {
      if (this.#ending) {
        throw new StreamwireError(Status.UNAVAILABLE, `Session '${this.id}' is closed`);
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /**
   * Accepts nothing more; `last` (the connection ERROR) is queued behind
   * what is already there, and the readable closes once the reader took it all.
   */
  end(last?: Message): void {
    if (this.#ending) return;
    if (last !== undefined) this.#push(last, HEADER_SIZE + encodedBodySize(last));
    this.#ending = true;
    this.#wake();
    if (this.#frames === 0) this.#close();
  }

  /** Fails the readable at once, dropping what was queued. */
  fail(reason: StreamwireError): void {
    if (this.#done) return;
    this.#ending = true;
    try {
      this.#controller.error(reason);
    } catch { /* already closed */ }
    this.#close();
  }

  #push(message: Message, size: number): void {
    if (this.#waiting) {
      this.#waiting = false;
      this.#controller.enqueue(message);
      return;
    }
    this.#queue.push(message);
    this.#sizes.push(size);
    this.#bytes += size;
    this.#frames++;
  }

  #pull(): void {
    if (this.#frames === 0) {
      if (this.#ending) this.#close();
      else this.#waiting = true;
      return;
    }
    const i = this.#head++;
    const message = this.#queue[i];
    this.#bytes -= this.#sizes[i];
    this.#frames--;
    if (this.#frames === 0) {
      this.#queue = [];
      this.#sizes = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
    this.#controller.enqueue(message);
    if (this.#frames === 0 && this.#ending) this.#close();
    // Waiters wake once half the bound is free, so that each wake finds
    // room for many messages instead of one.
    else if (this.#bytes <= this.#maxBytes >>> 1 && this.#frames <= this.#maxFrames >>> 1) {
      this.#wake();
    }
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#ending = true;
    this.#queue = [];
    this.#sizes = [];
    this.#frames = 0;
    this.#bytes = 0;
    try {
      this.#controller.close();
    } catch { /* errored or cancelled */ }
    this.#wake();
  }
}

/**
 * Serves RPC calls in a pipeline of decoded messages, with the same
 * dispatcher as {@linkcode RpcServer}: unary calls, batches, streams with
 * credit, NOTIFY, deadlines, interceptors and `onError` behave as there.
 *
 * Input: the messages of one client, after a handshake stage such as
 * `ServerHandshakeStream`, and `StreamwireError` chunks for a failed byte
 * stream or handshake (see `catchStage`). Output: the messages to encode
 * and write, one per chunk.
 *
 * - The HELLO_ACK passing through sets the codec, window, `maxFrame` and
 *   session id, and is passed on. Calls before it fail the connection.
 * - PING is answered with PONG; REQUEST, BATCH, OPEN, NOTIFY, DATA, END,
 *   CREDIT and CANCEL go to the calls they concern. A call id of the wrong
 *   parity is answered ERROR 3 on that id, id 0 fails the connection
 *   (as a session does).
 * - A `StreamwireError` chunk becomes a connection ERROR (seq 0, its code
 *   and message) behind the answers already queued; the output then ends
 *   and calls still running are aborted. As a terminated `TransformStream`
 *   does, the writable side then errors, which cancels the streams feeding
 *   it: pipe a socket's readable in with `preventCancel: true`, so the
 *   socket stays open until the ERROR is written.
 * - The end of the input (the client closed its side) or a connection
 *   ERROR from the client ends the connection as a closed session does:
 *   calls still running are aborted, and the output closes once the
 *   answers already queued were read.
 * - Answers wait in a queue bounded by `maxQueueBytes` and
 *   `maxQueueFrames` until the reader takes them: handlers wait for room,
 *   and calls the client opens wait to be read while the queue is full.
 *
 * Handlers get no `Session`: `ctx.session` (and `info.session` in
 * `onError`) is a stand-in with only `id` and `settings` (from the
 * HELLO_ACK), `codec`, `role`, `data`, `writable`, `ready()`, `send()` and
 * `write()` (which queue messages to the client, such as a NOTIFY) and
 * `goawayLastId` (always undefined). Members such as `conn`, `topics`,
 * `stats` and `close()` are absent, so methods that need a server's
 * topics, such as the demo's `chat.*`, need an `RpcServer`.
 *
 * @example Serve a call behind the handshake stage
 * ```ts
 * import { FrameType, type Message, type ValueMessage } from "@streamwire/streamwire/codec";
 * import { Methods, RpcDispatcherStream } from "@streamwire/streamwire/rpc";
 * import { helloPayload, ServerHandshakeStream } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const methods = new Methods().unary("add", ([a, b]: number[]) => a + b);
 * const out = await Array.fromAsync(
 *   ReadableStream.from<Message>([
 *     { type: FrameType.HELLO, seq: 0, hello: helloPayload({ codecs: ["json"] }) },
 *     { type: FrameType.REQUEST, seq: 1, method: "add", params: new TextEncoder().encode("[2,40]") },
 *   ])
 *     .pipeThrough(new ServerHandshakeStream())
 *     .pipeThrough(new RpcDispatcherStream({ methods })),
 * );
 * assert.deepEqual(out.map((m) => m.type), [FrameType.HELLO_ACK, FrameType.RESPONSE]);
 * assert.equal(new TextDecoder().decode((out[1] as ValueMessage).data), "42");
 * ```
 */
export class RpcDispatcherStream implements TransformStream<Message | StreamwireError, Message> {
  /** The messages to send to the client. */
  readonly readable: ReadableStream<Message>;
  /** The client's messages and failures of the stages before this one. */
  readonly writable: WritableStream<Message | StreamwireError>;

  #options: RpcDispatcherStreamOptions;
  #out: PipeSession;
  #dispatcher: Dispatcher | undefined;
  #input!: WritableStreamDefaultController;
  #onError: (error: unknown, info: ErrorInfo) => void;
  #ended = false;

  /**
   * Creates the stream.
   *
   * @param options Methods, interceptors, limits and error reporting.
   */
  constructor(options: RpcDispatcherStreamOptions) {
    this.#options = options;
    this.#onError = options.onError ?? logError;
    this.#out = new PipeSession(
      options.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
      options.maxQueueFrames ?? DEFAULTS.maxQueueFrames,
      {
        cancelled: (reason) => {
          const error = new StreamwireError(Status.UNAVAILABLE, "Output cancelled");
          this.#end(error);
          this.#input.error(reason);
        },
        slow: (error) => {
          this.#end(error);
          this.#out.fail(error);
          this.#input.error(error);
        },
      },
    );
    this.readable = this.#out.readable;
    this.writable = new WritableStream<Message | StreamwireError>({
      start: (controller) => {
        this.#input = controller;
      },
      write: (chunk) => this.#receive(chunk),
      close: () => this.#end(new StreamwireError(Status.UNAVAILABLE, "Connection closed")),
      abort: (reason) => {
        // An upstream stream failed without a catching stage: answer a
        // protocol failure as a connection ERROR, end quietly otherwise.
        if (reason instanceof StreamwireError) this.#end(reason, true);
        else this.#end(new StreamwireError(Status.UNAVAILABLE, "Connection input failed"));
      },
    });
  }

  /** Calls being served. */
  get inflight(): number {
    return this.#dispatcher?.inflight ?? 0;
  }

  #receive(chunk: Message | StreamwireError): void | Promise<void> {
    if (this.#ended) return;
    if (chunk instanceof StreamwireError) return this.#terminate(chunk);
    const out = this.#out;
    const dispatcher = this.#dispatcher;
    switch (chunk.type) {
      case FrameType.HELLO_ACK:
        if (dispatcher !== undefined) break;
        return this.#establish(chunk);
      case FrameType.PING:
        out.send({ type: FrameType.PONG, seq: chunk.seq, payload: chunk.payload });
        return;
      case FrameType.PONG:
      case FrameType.GOAWAY:
        return;
      case FrameType.ERROR:
        if (chunk.seq !== 0) break;
        // The client ended the connection: nothing after it is read.
        this.#end(new StreamwireError(chunk.code, chunk.message));
        this.#input.error(new StreamwireError(chunk.code, chunk.message));
        return;
    }
    if (dispatcher === undefined) {
      return this.#terminate(
        new StreamwireError(
          Status.FAILED_PRECONDITION,
          `Frame type '0x${chunk.type.toString(16)}' before the handshake completed`,
        ),
      );
    }
    switch (chunk.type) {
      case FrameType.HELLO:
      case FrameType.HELLO_ACK:
        return this.#terminate(
          new StreamwireError(Status.FAILED_PRECONDITION, "Handshake frame after the handshake"),
        );
      case FrameType.REQUEST:
      case FrameType.BATCH:
      case FrameType.OPEN:
        // Stop reading the client's calls while the answers to it pile up.
        if (!out.writable) return out.ready().then(() => this.#open(dispatcher, chunk));
        return this.#open(dispatcher, chunk);
    }
    this.#serve(dispatcher, chunk);
  }

  #establish(ack: HelloAckMessage): void {
    let settings: SessionSettings;
    try {
      // The HELLO_ACK read as its client reads it, against an offer of exactly what it chose.
      settings = acceptAck(ack.ack, {
        codecs: [ack.ack.codec],
        compression: Array.isArray(ack.ack.compression) ? ack.ack.compression : [],
      });
      const codec = getCodec(settings.codec);
      const options = this.#options;
      this.#out.id = settings.session;
      this.#out.settings = settings;
      this.#dispatcher = new Dispatcher(this.#out, codec, {
        methods: options.methods,
        interceptors: options.interceptors ?? [],
        onPush: options.onPush,
        onError: this.#onError,
        maxConcurrentCalls: options.maxConcurrentCalls ?? DEFAULTS.maxConcurrentCalls,
        maxBatchSize: options.maxBatchSize ?? DEFAULTS.maxBatchSize,
        maxDeadlineMs: options.maxDeadlineMs ?? DEFAULTS.maxDeadlineMs,
        window: settings.window,
      });
    } catch (error) {
      this.#terminate(StreamwireError.from(error));
      return;
    }
    this.#out.send(ack);
  }

  /** REQUEST, BATCH or OPEN: checks the call id (PROTOCOL.md 3.1), then serves it. */
  #open(dispatcher: Dispatcher, m: Message): void {
    if (this.#ended) return;
    if (m.seq === 0) {
      return this.#terminate(
        new StreamwireError(Status.INVALID_ARGUMENT, "Call frame with call id '0'"),
      );
    }
    if ((m.seq & 1) === 0) {
      this.#out.send({
        type: FrameType.ERROR,
        seq: m.seq,
        code: Status.INVALID_ARGUMENT,
        message: `Call id '${m.seq}' has the wrong parity: the client uses odd ids`,
      });
      return;
    }
    this.#serve(dispatcher, m);
  }

  /**
   * Hands a message to the dispatcher; never throws. RESPONSE and
   * BATCH_RESULT answer calls, and this side makes none: they are dropped.
   */
  #serve(dispatcher: Dispatcher, m: Message): void {
    try {
      switch (m.type) {
        case FrameType.REQUEST:
          return dispatcher.request(m);
        case FrameType.BATCH:
          return dispatcher.batch(m);
        case FrameType.OPEN:
          return dispatcher.open(m);
        case FrameType.NOTIFY:
        case FrameType.BROADCAST:
          return dispatcher.push(m as CallMessage);
        case FrameType.DATA:
        case FrameType.END:
        case FrameType.CREDIT:
        case FrameType.CANCEL:
        case FrameType.ERROR:
          return dispatcher.frame(m);
      }
    } catch (error) {
      try {
        // The stand-in that handlers get as ctx.session (see above).
        const session = this.#out as unknown as Session;
        this.#onError(error, { method: "", session, id: m.seq });
      } catch { /* the connection and the other calls go on */ }
    }
  }

  /** The connection fails: ERROR (seq 0), end of output, and no more input. */
  #terminate(error: StreamwireError): void {
    this.#end(error, true);
    this.#input.error(error);
  }

  /** Aborts the calls and ends the output, after a connection ERROR if `answer` is set. */
  #end(reason: StreamwireError, answer = false): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#dispatcher?.close(reason);
    if (!answer) {
      this.#out.end();
      return;
    }
    let message = reason.message;
    // The ERROR has to fit the negotiated maxFrame (u16 code, then the text).
    const maxFrame = this.#out.settings?.maxFrame ?? DEFAULT_MAX_FRAME;
    if (2 + new TextEncoder().encode(message).length > maxFrame) message = "";
    this.#out.end({ type: FrameType.ERROR, seq: 0, code: reason.code, message });
  }
}
