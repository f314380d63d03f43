/**
 * The server side of the handshake (PROTOCOL.md 4) as a stage of decoded
 * messages, for servers built from pipes rather than from
 * {@linkcode Server}.
 *
 * @module
 */

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import { type Stage, StageStream } from "../codec/stage.ts";
import { negotiate, type NegotiateOptions, type SessionSettings } from "./handshake.ts";

/** Options of {@linkcode ServerHandshakeStage}. */
export interface ServerHandshakeOptions extends NegotiateOptions {
  /** Session id to give the client. @default {crypto.randomUUID()} */
  session?: string;
  /** Called once the handshake completed, with the agreed settings. */
  onOpen?: (settings: SessionSettings) => void;
}

/** Frames that may precede the handshake (PROTOCOL.md 4). */
const BEFORE_HELLO = new Set<number>([
  FrameType.PING,
  FrameType.PONG,
  FrameType.ERROR,
  FrameType.GOAWAY,
]);

/**
 * Answers HELLO with HELLO_ACK and lets established traffic through.
 *
 * Input: decoded messages from the client, and `StreamwireError` chunks for
 * a failed byte stream (see `catchStage`), which pass through. Output: the
 * HELLO_ACK (to be encoded and written), then every later message as it
 * came; stages downstream read the agreed codec and window from the
 * HELLO_ACK. A refused HELLO (bad token, no common codec) or a call before
 * it becomes a `StreamwireError` chunk with the code to answer, and nothing
 * passes after it.
 *
 * @example Answer a HELLO
 * ```ts
 * import { FrameType, type Message } from "@streamwire/streamwire/codec";
 * import { helloPayload, ServerHandshakeStream } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const out: unknown[] = await Array.fromAsync(
 *   ReadableStream.from([
 *     { type: FrameType.HELLO, seq: 0, hello: helloPayload({ codecs: ["json"] }) } as const,
 *     { type: FrameType.REQUEST, seq: 1, method: "echo", params: new Uint8Array(0) } as const,
 *   ]).pipeThrough(new ServerHandshakeStream({ session: "s1" })),
 * );
 * assert.equal((out[0] as Message).type, FrameType.HELLO_ACK);
 * assert.equal((out[1] as Message).type, FrameType.REQUEST);
 * ```
 */
export class ServerHandshakeStage
  implements Stage<Message | StreamwireError, Message | StreamwireError> {
  #options: ServerHandshakeOptions;
  #settings: SessionSettings | undefined;
  #failed = false;

  /**
   * Creates the stage.
   *
   * @param options What the server accepts.
   */
  constructor(options: ServerHandshakeOptions = {}) {
    this.#options = options;
  }

  /** The agreed settings, once the handshake completed. */
  get settings(): SessionSettings | undefined {
    return this.#settings;
  }

  /**
   * Handles one message.
   *
   * @param message A decoded message or a failure of the byte stream.
   * @param controller Where the HELLO_ACK and later traffic go.
   */
  transform(
    message: Message | StreamwireError,
    controller: TransformStreamDefaultController<Message | StreamwireError>,
  ): void {
    if (this.#failed) return;
    if (message instanceof StreamwireError || this.#settings !== undefined) {
      if (
        !(message instanceof StreamwireError) &&
        (message.type === FrameType.HELLO || message.type === FrameType.HELLO_ACK)
      ) {
        return this.#fail(controller, "Handshake frame after the handshake");
      }
      controller.enqueue(message);
      return;
    }
    if (message.type === FrameType.HELLO) {
      try {
        const options = this.#options;
        const settings = negotiate(message.hello, options, options.session ?? crypto.randomUUID());
        this.#settings = settings;
        controller.enqueue({ type: FrameType.HELLO_ACK, seq: 0, ack: { version: 1, ...settings } });
        options.onOpen?.(settings);
      } catch (error) {
        this.#failed = true;
        controller.enqueue(StreamwireError.from(error));
      }
      return;
    }
    if (BEFORE_HELLO.has(message.type)) {
      controller.enqueue(message);
      return;
    }
    this.#fail(
      controller,
      `Frame type '0x${message.type.toString(16)}' before the handshake completed`,
    );
  }

  #fail(controller: TransformStreamDefaultController<Message | StreamwireError>, text: string) {
    this.#failed = true;
    controller.enqueue(new StreamwireError(Status.FAILED_PRECONDITION, text));
  }
}

/**
 * {@linkcode ServerHandshakeStage} as a stream.
 *
 * @example Refuse a bad token
 * ```ts
 * import { FrameType, StreamwireError } from "@streamwire/streamwire/codec";
 * import { helloPayload, ServerHandshakeStream } from "@streamwire/streamwire/transport";
 * import assert from "node:assert/strict";
 *
 * const [out] = await Array.fromAsync(
 *   ReadableStream.from([
 *     { type: FrameType.HELLO, seq: 0, hello: helloPayload({ token: "wrong" }) } as const,
 *   ]).pipeThrough(new ServerHandshakeStream({ token: "s3cret" })),
 * );
 * assert.ok(out instanceof StreamwireError);
 * assert.equal(out.codeName, "unauthenticated");
 * ```
 */
export class ServerHandshakeStream
  extends StageStream<Message | StreamwireError, Message | StreamwireError> {
  /**
   * Creates the stream.
   *
   * @param options What the server accepts.
   */
  constructor(options: ServerHandshakeOptions = {}) {
    super(new ServerHandshakeStage(options));
  }
}
