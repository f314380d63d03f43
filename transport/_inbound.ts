// The inbound side of a session: one composed pipeline of stages driven by
// a read loop, frame by frame. Private: Session owns one.

import type { CompressionName } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import type { Message } from "../codec/message.ts";
import { verifyChecksum } from "../codec/checksum_stream.ts";
import { decompressFrame } from "../codec/compression_stream.ts";
import { Deframer } from "../codec/deframer_stream.ts";
import { decodeMessage } from "../codec/message.ts";
import { composeStages, type Stage } from "../codec/stage.ts";
import type { Connection } from "./connection.ts";
import type { SessionStages } from "./session.ts";
import type { WriteFn } from "./_outbound.ts";

/** Options of {@linkcode Inbound}. */
export interface InboundOptions {
  /** Largest frame body accepted until {@linkcode Inbound.limit} changes it. */
  maxFrame: number;
  /** Entries a BATCH may declare before it is handed on undecoded. */
  maxBatchEntries: number;
  /** The user's inbound stages. */
  stages: SessionStages | undefined;
  /** The last stage: the session. A promise holds the frames after it. */
  receive(message: Message): void | Promise<void>;
  /** Counts bytes read. */
  bytes(n: number): void;
}

type PullConnection = Connection & {
  read?(): Promise<Uint8Array | null>;
  write?(chunk: Uint8Array): Promise<void>;
};

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
  #deframer: Deframer;
  #inflate: { maxFrame: number; accept: readonly CompressionName[] };
  #stage: Stage<Uint8Array, never>;
  #bytes: (n: number) => void;

  constructor(conn: Connection, options: InboundOptions) {
    this.#conn = conn;
    this.#bytes = options.bytes;
    const deframer = this.#deframer = new Deframer({ maxFrame: options.maxFrame });
    // Nothing compressed is accepted before the handshake names the algorithms.
    const inflate = this.#inflate = {
      maxFrame: options.maxFrame,
      accept: [] as readonly CompressionName[],
    };
    let sink: { push(frame: Frame): void } | undefined;
    const deframe: Stage<Uint8Array, Frame> = {
      transform(chunk, controller) {
        sink ??= { push: (frame) => controller.enqueue(frame) };
        deframer.push(chunk, sink as unknown as Frame[]);
      },
      flush: () => deframer.end(),
    };
    const checksum: Stage<Frame, Frame> = {
      transform(frame, controller) {
        verifyChecksum(frame);
        controller.enqueue(frame);
      },
    };
    const decompress: Stage<Frame, Frame> = {
      transform: (frame, controller) => controller.enqueue(decompressFrame(frame, inflate)),
    };
    const decode: Stage<Frame, Message> = {
      transform: (frame, controller) => controller.enqueue(decodeMessage(frame)),
    };
    const session: Stage<Message, never> = { transform: (message) => options.receive(message) };
    this.#stage = composeStages<Uint8Array, never>(
      deframe,
      checksum,
      decompress,
      ...(options.stages?.frames ?? []) as Stage<Frame, Frame>[],
      decode,
      ...(options.stages?.messages ?? []) as Stage<Message, Message>[],
      session,
    );
  }

  /**
   * Applies the negotiated limits from the next frame on.
   *
   * @param maxFrame Largest frame body and decompressed payload.
   * @param accept Compression the peer may use.
   */
  limit(maxFrame: number, accept: readonly CompressionName[]): void {
    (this.#deframer as unknown as { maxFrame: number }).maxFrame = maxFrame;
    this.#inflate.maxFrame = maxFrame;
    this.#inflate.accept = accept;
  }

  /** The connection's write, without its stream when it offers a pull interface. */
  writer(): WriteFn {
    const conn = this.#conn as PullConnection;
    if (conn.write !== undefined) return (chunk) => conn.write!(chunk);
    const writer = conn.writable.getWriter();
    writer.closed.catch(() => {});
    return (chunk) => writer.write(chunk);
  }

  /**
   * Reads until EOF or failure.
   *
   * @returns undefined at a clean EOF, else the error that ended reading:
   *   bad input (PROTOCOL.md 1.3) or a broken connection.
   */
  async run(): Promise<StreamwireError | undefined> {
    const stage = this.#stage;
    const transform = stage.transform!;
    const read = this.#reader();
    try {
      for (;;) {
        const chunk = await read();
        if (chunk === null) {
          const done = stage.flush?.(END);
          if (done !== undefined) await done;
          return undefined;
        }
        this.#bytes(chunk.length);
        const held = transform.call(stage, chunk, END);
        if (held !== undefined) await held;
      }
    } catch (error) {
      return StreamwireError.from(error);
    }
  }

  #reader(): () => Promise<Uint8Array | null> {
    const conn = this.#conn as PullConnection;
    if (conn.read !== undefined) return () => conn.read!();
    // Never cancelled on a decode error: that would close the connection
    // before the session's ERROR is written (PROTOCOL.md 1.3).
    const reader = conn.readable.getReader();
    return async () => {
      const { value, done } = await reader.read();
      return done ? null : value;
    };
  }
}
