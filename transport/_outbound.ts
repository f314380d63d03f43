// The outbound side of a session: a queue bounded where messages enter it,
// encoded once per microtask into one buffer and written with one write.
// Private: Session owns one.

import { concat } from "../codec/_bytes.ts";
import { type CompressionName, HEADER_SIZE } from "../codec/constants.ts";
import { compressFrame } from "../codec/compression_stream.ts";
import { encodeWire } from "../codec/_frame_write.ts";
import { encodeFrames } from "../codec/frame_encoder_stream.ts";
import type { Frame } from "../codec/frame.ts";
import { encodeMessage, type Message } from "../codec/message.ts";
import { encodeMessages } from "../codec/message_stream.ts";
import { composeStages, type Stage } from "../codec/stage.ts";

/** Never written: the queue's lists while empty; replaced before anything is added. */
// deno-lint-ignore no-explicit-any
const NONE: any[] = [];

/**
 * Turns of the microtask queue without a new message before the queue is
 * written. An async producer (an async generator, a ReadableStream) makes
 * one message per three or so promise hops; flushing after the first quiet
 * turn wrote about 11 DATA frames per write and held such a stream at
 * 0.4-0.5 M msgs/s, four turns let a window go out in a few writes (1.7-2.0
 * M msgs/s). Each turn is one microtask, well under a microsecond.
 */
const PATIENCE = 4;

/**
 * Longest wait (ms) for a producer that keeps adding messages: one that
 * spends CPU on each value never lets the microtask queue go quiet, and
 * without a ceiling its first DATA would wait for the whole credit window.
 */
const MAX_DELAY_MS = 1;

/**
 * Messages pending before {@linkcode MAX_DELAY_MS} is looked at: a busy
 * producer's write then carries at least this many, however slow or loaded
 * the machine (a slow one reached the ceiling after four, and wrote 2,000
 * DATA frames in 500 writes), and a producer that spends 1 ms per value
 * still has its first DATA out within about 20 ms (19-25 measured).
 */
const MIN_MESSAGES = 16;

/**
 * Pending bytes that start a write at once, without waiting for the quiet
 * turns: the peer starts on the first part of a burst while this side
 * still makes the rest (which goes out together once that write is done).
 * With client and server each on a core of their own, a pipelined burst of
 * 128 calls went from 508,000-514,000 to 766,000-809,000 calls/s this way
 * (31-32% to 46-52% of a raw echo; 2 KiB: 772,000-850,000, 8 KiB:
 * 651,000-652,000, 16 KiB and 64 KiB as without), at about the same CPU
 * per call. Where the two processes share one core, splitting only adds
 * writes. Only a burst made within one run of JavaScript is split: doing
 * the same to a producer that makes its values across microtask turns (an
 * async generator, a ReadableStream) halved its stream across processes
 * (ReadableStream: 1.0-1.7 to 0.56-0.70 M msgs/s).
 */
const FLUSH_BYTES = 4096;

/** Where the queue writes: one write at a time. */
export type WriteFn = (chunk: Uint8Array) => Promise<void>;

/** Hooks of the queue into its session. */
export interface OutboundHooks {
  /** Writes a chunk to the connection. */
  write: WriteFn;
  /** Bytes left the queue (room may have appeared). */
  drained(): void;
  /** A write failed: nothing more will be written. */
  failed(error: unknown): void;
  /** A user stage failed on a message: the session cannot send what it was asked to. */
  rejected(error: unknown): void;
  /** Bytes and frames reached the connection. */
  wrote(bytes: number, frames: number): void;
}

/** The queue's bounds and when to compress (the session's limits). */
export interface OutboundBounds {
  readonly maxQueueBytes: number;
  readonly maxQueueFrames: number;
  readonly compressionThreshold: number;
}

/** User stages run on every outgoing message or frame, in order, before compression. */
export interface OutboundStages {
  /** Run on each message before it is encoded. */
  messages?: Stage<Message, Message>[];
  /** Run on each encoded frame before compression and the header. */
  frames?: Stage<Frame, Frame>[];
}

/**
 * Messages and pre-encoded chunks waiting to be written. `bytes` and
 * `frames` count what was accepted, from the moment it was accepted: the
 * session checks its bounds against them before accepting more.
 */
export class Outbound {
  /** Accepted bytes not yet written (estimated from the unencoded size until flushed). */
  bytes = 0;
  /** Accepted frames not yet written. */
  frames = 0;
  /** Compression for payloads from `threshold` bytes, once negotiated. */
  algorithm: CompressionName | undefined;
  threshold: number;

  #hooks: OutboundHooks;
  #bounds: OutboundBounds;
  // Made when someone waits: most writes find none, and allocate nothing.
  #roomWaiters: (() => void)[] | undefined;
  #writeWaiters: (() => void)[] | undefined;
  // The shared empty lists while nothing is queued: an idle session holds no arrays.
  #pending: Message[] = NONE;
  /** Body sizes of `#pending`, measured when accepted, so encoding does not measure again. */
  #pendingSizes: number[] = NONE;
  #pendingBytes = 0;
  /** Wire size of the largest message in `#pending`. */
  #pendingLargest = 0;
  #flushScheduled = false;
  #chunks: Uint8Array[] = NONE;
  #chunkFrames = 0;
  #writing = false;
  /** Waiting for the writes in progress to end (close waits for them). */
  #idleWaiters: (() => void)[] | undefined;
  #failed = false;
  /** Bumped by clear(), so a write that was in flight then does not count down twice. */
  #generation = 0;
  #user: Stage<Message, Frame> | undefined;

  constructor(hooks: OutboundHooks, bounds: OutboundBounds, stages: OutboundStages | undefined) {
    this.#hooks = hooks;
    this.#bounds = bounds;
    this.threshold = bounds.compressionThreshold;
    if (stages?.messages?.length || stages?.frames?.length) {
      const encoder: Stage<Message, Frame> = {
        transform: (message, controller) => controller.enqueue(encodeMessage(message)),
      };
      this.#user = composeStages(...(stages.messages ?? []), encoder, ...(stages.frames ?? []));
    }
  }

  /** Whether the queue is under both of its bounds. */
  get withinBound(): boolean {
    return this.bytes < this.#bounds.maxQueueBytes && this.frames < this.#bounds.maxQueueFrames;
  }

  /** Whether `bytes` in `frames` more fit; one frame larger than the bound fits an empty queue. */
  hasRoom(bytes: number, frames: number): boolean {
    if (this.frames + frames > this.#bounds.maxQueueFrames) return false;
    return this.bytes === 0 || this.bytes + bytes <= this.#bounds.maxQueueBytes;
  }

  /** Resolves at the next {@linkcode wake} that finds the queue within its bound (or done). */
  untilWithinBound(): Promise<void> {
    return new Promise((resolve) => (this.#roomWaiters ??= []).push(resolve));
  }

  /** Resolves at the next {@linkcode wake}: a write finished, room may have appeared. */
  untilWritten(): Promise<void> {
    return new Promise((resolve) => (this.#writeWaiters ??= []).push(resolve));
  }

  /** Wakes who waits for a write, and who waits for the bound if it holds or `done`. */
  wake(done: boolean): void {
    const written = this.#writeWaiters;
    if (written !== undefined) {
      this.#writeWaiters = undefined;
      for (const w of written) w();
    }
    const waiters = this.#roomWaiters;
    if (waiters === undefined || (!this.withinBound && !done)) return;
    this.#roomWaiters = undefined;
    for (const w of waiters) w();
  }

  /** Whether a write is in flight. */
  get writing(): boolean {
    return this.#writing;
  }

  /** Accepts a message of `size` wire bytes (header included, before compression). */
  push(message: Message, size: number): void {
    if (this.#pending === NONE) {
      this.#pending = [];
      this.#pendingSizes = [];
    }
    this.#pending.push(message);
    this.#pendingSizes.push(size - HEADER_SIZE);
    this.#pendingBytes += size;
    if (size > this.#pendingLargest) this.#pendingLargest = size;
    this.bytes += size;
    this.frames++;
    // While a write is in flight, messages accumulate and the pump takes
    // them all in its next write; otherwise they go out once the microtasks
    // queued with this one have stopped adding messages.
    if (this.#writing) return;
    // Early only within one run of JavaScript (no settle turn yet): a burst
    // made at once, such as the answers to one read. A producer that makes
    // its values across turns is written as before, which keeps its writes
    // whole (splitting them halved such streams across processes).
    if (this.#pendingBytes >= FLUSH_BYTES && this.#busy === 0 && this.#quiet === 0) {
      this.#start();
    } else this.#schedule();
  }

  /** Has the pending messages written once the microtask queue goes quiet. */
  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#seen = this.#pending.length;
    queueMicrotask(this.#settle);
  }

  /** Messages pending when the flush last looked. */
  #seen = 0;

  /**
   * Flushes once {@linkcode PATIENCE} turns of the microtask queue added no
   * message: the answers of one read resolve promises whose continuations
   * send the next calls a few promise hops later, and they should share one
   * write. Bounded by the queue's own limits: `send()` refuses past them.
   */
  #quiet = 0;
  /** Turns that added messages since the flush was scheduled. */
  #busy = 0;
  /** When the first of them was seen (performance.now()). */
  #since = 0;
  #settle = (): void => {
    const n = this.#pending.length;
    if (!this.#writing) {
      if (n > this.#seen) {
        this.#seen = n;
        this.#quiet = 0;
        // The clock every other busy turn only: a fast producer adds a
        // message about every third turn, and a clock read is about 45 ns.
        const busy = ++this.#busy;
        if (busy === 1) this.#since = performance.now();
        if (
          n < MIN_MESSAGES || (busy & 1) === 1 ||
          performance.now() - this.#since < MAX_DELAY_MS
        ) {
          queueMicrotask(this.#settle);
          return;
        }
      } else if (++this.#quiet < PATIENCE) {
        queueMicrotask(this.#settle);
        return;
      }
    }
    this.#quiet = 0;
    this.#busy = 0;
    this.#flushScheduled = false;
    if (n > 0) this.#start();
  };

  /** Accepts frames encoded elsewhere (a broadcast shared by many sessions). */
  pushEncoded(chunk: Uint8Array, frames: number): void {
    // Keeps order: messages accepted before go first.
    this.#encodePending();
    if (this.#chunks === NONE) this.#chunks = [];
    this.#chunks.push(chunk);
    this.#chunkFrames += frames;
    this.bytes += chunk.length;
    this.frames += frames;
    this.#start();
  }

  /** Starts writing what is queued, if no write is in flight. */
  flushNow(): void {
    this.#start();
  }

  /** Resolves once nothing is being written. */
  idle(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /** Drops everything queued. */
  clear(): void {
    this.#generation++;
    this.#pending = NONE;
    this.#pendingSizes = NONE;
    this.#pendingBytes = 0;
    this.#pendingLargest = 0;
    this.#chunks = NONE;
    this.#chunkFrames = 0;
    this.bytes = 0;
    this.frames = 0;
  }

  /** Encodes the pending messages into one chunk, adjusting the byte count to the real size. */
  #encodePending(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    const estimated = this.#pendingBytes;
    const sizes = this.#pendingSizes;
    const largest = this.#pendingLargest;
    this.#pending = NONE;
    this.#pendingSizes = NONE;
    this.#pendingBytes = 0;
    this.#pendingLargest = 0;
    // Nothing to compress and no stage of the user's: straight to wire
    // bytes, without a frame object per message (the sizes are exact).
    if (
      this.#user === undefined &&
      (this.algorithm === undefined || largest - HEADER_SIZE < this.threshold)
    ) {
      if (this.#chunks === NONE) this.#chunks = [];
      this.#chunks.push(encodeWire(pending, sizes));
      this.#chunkFrames += pending.length;
      return;
    }
    const frames = this.#frames(pending, sizes);
    const algorithm = this.algorithm;
    if (algorithm !== undefined) {
      const options = { algorithm, threshold: this.threshold };
      for (let i = 0; i < frames.length; i++) frames[i] = compressFrame(frames[i], options);
    }
    const chunk = frames.length === 0 ? undefined : encodeFrames(frames);
    // A user stage may drop a message or split it into several frames.
    this.frames -= pending.length - frames.length;
    this.bytes += (chunk?.length ?? 0) - estimated;
    if (chunk === undefined) return;
    if (this.#chunks === NONE) this.#chunks = [];
    this.#chunks.push(chunk);
    this.#chunkFrames += frames.length;
  }

  #frames(messages: Message[], sizes: number[]): Frame[] {
    const user = this.#user;
    // Session.send measured (and so validated) each message: they encode.
    if (user === undefined) return encodeMessages(messages, sizes);
    const out: Frame[] = [];
    const controller = {
      enqueue: (frame: Frame) => out.push(frame),
      desiredSize: 1,
      error: (reason: unknown) => {
        throw reason;
      },
      terminate: () => {},
    } as TransformStreamDefaultController<Frame>;
    for (const message of messages) {
      try {
        user.transform!(message, controller);
      } catch (error) {
        // The session cannot send what it was asked to: it fails rather
        // than leave a caller waiting for an answer to a call never sent.
        this.#hooks.rejected(error);
        return out;
      }
    }
    return out;
  }

  #start(): void {
    if (this.#writing || this.#failed) return;
    this.#writing = true;
    this.#step();
  }

  /**
   * Writes what is queued, one write per turn (everything queued meanwhile
   * goes out together in the next), until the queue is empty. Promise
   * reactions rather than an async loop: one fewer promise and frame per write.
   */
  #step(): void {
    this.#encodePending();
    if (this.#chunks.length === 0) return this.#stopped();
    const chunks = this.#chunks;
    const frames = this.#chunkFrames;
    this.#chunks = NONE;
    this.#chunkFrames = 0;
    const chunk = chunks.length === 1 ? chunks[0] : concat(chunks);
    const generation = this.#generation;
    let writing: Promise<void>;
    try {
      writing = this.#hooks.write(chunk);
    } catch (error) {
      return this.#broken(error);
    }
    writing.then(() => {
      if (generation !== this.#generation) return this.#stopped();
      this.bytes -= chunk.length;
      this.frames -= frames;
      this.#hooks.wrote(chunk.length, frames);
      this.#hooks.drained();
      // A few messages that came during a quick write wait for the quiet
      // turns like any others, so a producer is not written a frame or two
      // at a time because each write returned fast; encoded chunks, a
      // backlog of FLUSH_BYTES, or a close waiting for the queue go now.
      if (
        this.#chunks.length === 0 && this.#pendingBytes < FLUSH_BYTES &&
        this.#idleWaiters === undefined && this.#pending.length > 0
      ) {
        this.#writing = false;
        this.#schedule();
        return;
      }
      this.#step();
    }, (error) => this.#broken(error));
  }

  #broken(error: unknown): void {
    this.#failed = true;
    this.clear();
    this.#hooks.failed(error);
    this.#stopped();
  }

  #stopped(): void {
    this.#writing = false;
    const waiters = this.#idleWaiters;
    if (waiters === undefined) return;
    this.#idleWaiters = undefined;
    for (const wake of waiters) wake();
  }
}
