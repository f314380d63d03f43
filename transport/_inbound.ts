// The inbound side of a session: one composed pipeline of stages driven by
// a read loop, frame by frame. Private: Session owns one.

import { ChecksumStage } from "../codec/checksum_stream.ts";
import type { CompressionName } from "../codec/constants.ts";
import { DecompressorStage } from "../codec/compression_stream.ts";
import { DeframerStage } from "../codec/deframer_stream.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import type { Message } from "../codec/message.ts";
import { MessageDecoderStage } from "../codec/message_stream.ts";
import { composeStages, type Stage } from "../codec/stage.ts";
import type { Connection } from "./connection.ts";
import type { SessionStages } from "./session.ts";

/** Options of {@linkcode Inbound}. */
export interface InboundOptions {
  /** Largest frame body accepted until {@linkcode Inbound.limit} changes it. */
  maxFrame: number;
  /** Entries a BATCH may declare before it is handed on undecoded. */
  maxBatchEntries: number;
  /** The user's inbound stages. */
  stages: SessionStages | undefined;
  /** The last stage, the session, which also counts the bytes read. */
  sink: InboundSink;
}

/** The session as the last stage: a promise from `transform` holds the frames after it. */
export interface InboundSink extends Stage<Message, never> {
  /** Counts bytes read. */
  bytes(n: number): void;
  /**
   * Reading ended: `undefined` at a clean EOF, else the error that ended it,
   * bad input (PROTOCOL.md 1.3) or a broken connection.
   */
  ended(error: StreamwireError | undefined): void;
}

/** A controller for the end of the pipeline: the session enqueues nothing. */
const END: TransformStreamDefaultController<never> = {
  desiredSize: 1,
  enqueue() {},
  error(reason?: unknown) {
    throw reason;
  },
  terminate() {},
};

/**
 * Reads a connection and runs each chunk through the stages: deframer,
 * checksum, decompressor, user frame stages, message decoder, user message
 * stages, session. A chunk's frames go through one at a time, so the session
 * changes limits or stops between two frames of one read.
 */
export class Inbound {
  #conn: Connection;
  #deframer: DeframerStage;
  #decompressor: DecompressorStage;
  #stage: Stage<Uint8Array, never>;
  #sink: InboundSink;

  constructor(conn: Connection, options: InboundOptions) {
    this.#conn = conn;
    this.#sink = options.sink;
    this.#deframer = new DeframerStage({ maxFrame: options.maxFrame });
    // Nothing compressed is accepted before the handshake names the algorithms.
    this.#decompressor = new DecompressorStage({ maxFrame: options.maxFrame, accept: [] });
    this.#stage = composeStages<Uint8Array, never>(
      this.#deframer,
      new ChecksumStage(),
      this.#decompressor,
      ...(options.stages?.frames ?? []) as Stage<Frame, Frame>[],
      new MessageDecoderStage({ maxBatchEntries: options.maxBatchEntries }),
      ...(options.stages?.messages ?? []) as Stage<Message, Message>[],
      options.sink,
    );
  }

  /**
   * Applies the negotiated limits from the next frame on.
   *
   * @param maxFrame Largest frame body and decompressed payload.
   * @param accept Compression the peer may use.
   */
  limit(maxFrame: number, accept: readonly CompressionName[]): void {
    this.#deframer.maxFrame = maxFrame;
    this.#decompressor.maxFrame = maxFrame;
    this.#decompressor.accept = accept;
  }

  /** Reads until EOF or failure, then tells the sink ({@linkcode InboundSink.ended}). */
  start(): void {
    // Never cancelled on a decode error: that would close the connection
    // before the session's ERROR is written (PROTOCOL.md 1.3).
    if (this.#conn.read === undefined) this.#reader = this.#conn.readable.getReader();
    this.#next();
  }

  // Promise reactions rather than an async loop, and two of them made once
  // per connection rather than a closure per step: every idle session
  // holds its pending read, and an awaiting async function costs it
  // several times the memory of a reaction. The end goes to the sink, not
  // to a promise of its own.
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #done = false;

  #end(error: StreamwireError | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.ended(error);
  }

  #next(): void {
    const conn = this.#conn;
    const reading = conn.read !== undefined
      ? conn.read()
      : this.#reader!.read().then((result) => (result.done ? null : result.value));
    reading.then(this.#took, this.#failed);
  }

  #failed = (error: unknown): void => this.#end(StreamwireError.from(error));

  #took = (chunk: Uint8Array | null): void => {
    const stage = this.#stage;
    let held: void | PromiseLike<void>;
    try {
      if (chunk === null) held = stage.flush?.(END);
      else {
        this.#sink.bytes(chunk.length);
        held = stage.transform!(chunk, END);
      }
    } catch (error) {
      this.#failed(error);
      return;
    }
    // Outside the try: a failure in the session's own end is not bad input.
    if (held !== undefined) {
      held.then(() => (chunk === null ? this.#end(undefined) : this.#next()), this.#failed);
    } else if (chunk === null) this.#end(undefined);
    else this.#next();
  };
}
