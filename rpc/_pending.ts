// A unary or batch call waiting for its answer, with the promise its caller
// awaits. A pipelined call makes one of each, so both are kept small: one
// object of a fixed shape, and a promise made without a closure of its own.

import type { FrameType } from "../codec/constants.ts";
import type { StreamwireError } from "../codec/error.ts";
import type { BatchMessage, CallMessage } from "../codec/message.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";

/** The frame of a unary or batch call. */
export type CallFrame = (CallMessage & { type: typeof FrameType.REQUEST }) | BatchMessage;

type Resolve = (value: unknown) => void;
type Reject = (error: StreamwireError) => void;

let lastResolve: Resolve;
let lastReject: Reject;

/** The executor of every call's promise: it hands over the two functions, with no closure per call. */
function capture(resolve: Resolve, reject: Reject): void {
  lastResolve = resolve;
  lastReject = reject;
}

/** A unary or batch call waiting for its answer; a reconnecting client may send it again. */
export class Pending {
  /** Call id on the current connection; set when registered. */
  id = 0;
  /** REQUEST or BATCH as sent (params already encoded). */
  readonly message: CallFrame;
  /** Codec the params in `message` are encoded with. */
  readonly codec: PayloadCodec["name"];
  readonly signal: AbortSignal | undefined;
  /** The caller marked it safe to retry. */
  readonly idempotent: boolean;
  /** Absolute deadline in ms since epoch. */
  readonly deadline: number;
  /** Milliseconds the call had left when sent. */
  readonly timeout: number;
  /** What the caller awaits. */
  readonly promise: Promise<unknown>;
  readonly resolve: Resolve;
  readonly reject: Reject;
  /** Key in the deadline wheel, if the call has a timeout. */
  timer: number | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  /** Set while the message waits for room in the session's queue. */
  queued: Promise<void> | undefined = undefined;

  /**
   * A call about to be sent. Private class, positional for speed: one is
   * made per call.
   *
   * @param before The same call taken from another connection: its promise is kept.
   */
  constructor(
    message: CallFrame,
    codec: PayloadCodec["name"],
    signal: AbortSignal | undefined,
    idempotent: boolean,
    deadline: number,
    timeout: number,
    before?: Pending,
  ) {
    this.message = message;
    this.codec = codec;
    this.signal = signal;
    this.idempotent = idempotent;
    this.deadline = deadline;
    this.timeout = timeout;
    if (before === undefined) {
      this.promise = new Promise(capture);
      this.resolve = lastResolve;
      this.reject = lastReject;
    } else {
      this.promise = before.promise;
      this.resolve = before.resolve;
      this.reject = before.reject;
    }
  }
}
