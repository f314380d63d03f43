// The calling side of a peer: sends unary, batch, streaming and NOTIFY calls
// and settles them from the answers (PROTOCOL.md 3).

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { BatchResultEntry, CallEntry, Extensions, Message } from "../codec/message.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import type { Session } from "../transport/session.ts";
import { Deadlines } from "./_deadlines.ts";
import { IdTable } from "./_id_table.ts";
import { type CallFrame, Pending } from "./_pending.ts";
import { CreditGate, decodeValue, encodeValue, enqueue, ignore, Inbox } from "./_flow.ts";
import type { Call } from "./interceptor.ts";
import type { BatchCall, BatchOutcome, RpcPeer } from "./peer.ts";

type Timer = ReturnType<typeof setTimeout>;

export { Pending };

/** A streaming call as its caller holds it. */
export interface OpenStream {
  /** Values from the callee; reading grants CREDIT, cancelling sends CANCEL. */
  readable: ReadableStream<unknown>;
  /** Values to the callee; closing sends END, aborting CANCEL. */
  writable: WritableStream<unknown>;
  /** Resolves when the callee ends the call, rejects when it fails or is cancelled. */
  finished: Promise<void>;
  /**
   * Sends one value as DATA, without the writable's per-value promises:
   * `undefined` when it was queued at once, else a promise for when it was
   * (credit or queue room awaited). Throws, and fails the call, for a value
   * that cannot be sent.
   */
  send(value: unknown): Promise<void> | undefined;
  /** Sends END (what closing the writable does). */
  end(): void;
}

interface StreamCall {
  inbox: Inbox<unknown>;
  gate: CreditGate;
  done: boolean;
  /** Ends the call: `undefined` on the callee's END, else the error. */
  end(error?: StreamwireError): void;
}

/** Limits of a {@linkcode Caller}. */
export interface CallerLimits {
  maxPendingCalls: number;
  defaultTimeoutMs: number;
}

const MAX_ID = 0xffffffff;
const UTF8 = new TextDecoder();

/** Never written: callers share it until they open a stream. */
const NO_STREAMS = new Map<number, never>();

/**
 * How to reach a peer's caller, for the reconnecting client: not part of
 * {@linkcode RpcPeer}'s API. Set once by RpcPeer's class, so that no peer
 * pays a map entry or a closure for it.
 */
let callerAccess: ((peer: RpcPeer) => Caller) | undefined;

/** Registers the accessor of peers' callers (RpcPeer's class does, once). */
export function provideCallerAccess(access: (peer: RpcPeer) => Caller): void {
  callerAccess = access;
}

/** The calling side of a peer (made on first use). */
export function callerOf(peer: RpcPeer): Caller {
  return callerAccess!(peer);
}

/** The calls this side makes over one session. */
export class Caller {
  readonly session: Session;
  readonly codec: PayloadCodec;
  #limits: CallerLimits;
  #window: number;
  #nextId: number;
  #pending = new IdTable<Pending>();
  /** The shared empty map until a stream opens: most callers never open one. */
  #streams: Map<number, StreamCall> = NO_STREAMS;
  #closed: StreamwireError | undefined;
  /** Made with the first timed call: a peer that only serves never needs it. */
  #wheel: Deadlines<Pending> | undefined;
  #defaultExt: Extensions;

  constructor(session: Session, codec: PayloadCodec, limits: CallerLimits, window: number) {
    this.session = session;
    this.codec = codec;
    this.#limits = limits;
    this.#window = window;
    this.#nextId = session.role === "client" ? 1 : 2;
    this.#defaultExt = Object.freeze({ timeoutMs: limits.defaultTimeoutMs });
  }

  /** Calls made and not yet answered (unary, batch and streams). */
  get pending(): number {
    return this.#pending.size + this.#streams.size;
  }

  /** Sends a REQUEST; resolves with the decoded RESPONSE. */
  unary(call: Call, idempotent: boolean, timeout: number): Promise<unknown> {
    let params: Uint8Array;
    try {
      params = encodeValue(this.codec, call.params);
    } catch (error) {
      // Reject rather than throw: callers (and the auto-batcher) only handle rejections.
      return Promise.reject(StreamwireError.from(error));
    }
    return this.#request(
      { type: FrameType.REQUEST, seq: 0, method: call.method, params, ext: undefined },
      call,
      idempotent,
      timeout,
    );
  }

  /** Sends a BATCH of `call.params` (a {@linkcode BatchCall} list); resolves with one outcome each. */
  async batch(call: Call, idempotent: boolean, timeout: number): Promise<BatchOutcome[]> {
    const calls = call.params as readonly BatchCall[];
    const entries: CallEntry[] = [];
    // Params the codec cannot encode fail their own entry, locally; the others are sent.
    const failed: BatchOutcome[] = [];
    for (let i = 0; i < calls.length; i++) {
      try {
        entries.push({ method: calls[i].method, params: encodeValue(this.codec, calls[i].params) });
      } catch (error) {
        failed[i] = { ok: false, error: StreamwireError.from(error) };
      }
    }
    if (failed.length > 0 && entries.length === 0) return failed;
    const outcomes = await this.#request(
      { type: FrameType.BATCH, seq: 0, entries, ext: undefined },
      call,
      idempotent,
      timeout,
    ) as BatchOutcome[];
    if (failed.length === 0) return outcomes;
    let sent = 0;
    return calls.map((_, i) => failed[i] ?? outcomes[sent++]);
  }

  /** Sends a NOTIFY; resolves once it is queued. */
  notify(call: Call): Promise<void> {
    try {
      this.#assertOpen();
      const ext = extOf(call, undefined);
      const message: Message = {
        type: FrameType.NOTIFY,
        seq: 0,
        method: call.method,
        params: encodeValue(this.codec, call.params),
        ...(ext ? { ext } : {}),
      };
      return enqueue(this.session, message) ?? Promise.resolve();
    } catch (error) {
      return Promise.reject(StreamwireError.from(error));
    }
  }

  /**
   * Sends OPEN and returns the call's streams.
   *
   * @param timeout Milliseconds for the whole call, sent as its deadline; none if undefined.
   * @throws {StreamwireError} When the call cannot start: closed, cancelled,
   *   params not encodable, too many calls, OPEN larger than maxFrame.
   */
  open(call: Call, timeout: number | undefined): OpenStream {
    this.#assertOpen();
    const method = call.method;
    if (call.signal?.aborted) {
      throw new StreamwireError(Status.CANCELLED, `Call '${method}' cancelled before it was sent`);
    }
    // Encoded before anything is registered: a failure leaves nothing behind.
    const params = encodeValue(this.codec, call.params);
    const hasTimeout = timeout !== undefined && timeout > 0;
    const ext = extOf(call, hasTimeout ? timeout : undefined);
    const open: Message = { type: FrameType.OPEN, seq: 0, method, params, ...(ext ? { ext } : {}) };
    const id = this.#allocateId();
    open.seq = id;
    const session = this.session;
    let timer: Timer | undefined;
    let settle!: (error?: StreamwireError) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    finished.catch(ignore);
    const signal = call.signal;
    const onAbort = () =>
      cancel(new StreamwireError(Status.CANCELLED, `Call '${method}' cancelled by the caller`));
    const stream: StreamCall = {
      inbox: new Inbox<unknown>(
        this.#window,
        (n) => session.send({ type: FrameType.CREDIT, seq: id, credit: n }),
        () => cancel(new StreamwireError(Status.CANCELLED, "Stream cancelled by its reader")),
      ),
      gate: new CreditGate(this.#window),
      done: false,
      end: (error) => {
        if (stream.done) return;
        stream.done = true;
        this.#streams.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) {
          stream.inbox.end();
          stream.gate.close(new StreamwireError(Status.CANCELLED, "Call finished"));
        } else {
          stream.inbox.error(error);
          stream.gate.close(error);
        }
        settle(error);
      },
    };
    let queued: Promise<void> | undefined;
    /** This side gives up on the call: the callee is told to stop. */
    const cancel = (error: StreamwireError) => {
      if (stream.done) return;
      this.#cancel(id, error.code, error.message, queued);
      stream.end(error);
    };
    if (this.#streams === NO_STREAMS) this.#streams = new Map();
    this.#streams.set(id, stream);
    try {
      queued = enqueue(session, open);
    } catch (error) {
      this.#streams.delete(id);
      throw error;
    }
    queued?.then(
      () => (queued = undefined),
      (error) => stream.end(StreamwireError.from(error)),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    if (hasTimeout) {
      timer = setTimeout(
        () =>
          cancel(
            new StreamwireError(
              Status.DEADLINE_EXCEEDED,
              `Call '${method}' exceeded '${timeout}' ms`,
            ),
          ),
        timeout,
      );
    }
    const codec = this.codec;
    const queue = (value: unknown): Promise<void> | undefined => {
      try {
        return enqueue(session, { type: FrameType.DATA, seq: id, data: encodeValue(codec, value) });
      } catch (error) {
        // A value that cannot be sent fails the whole call, both directions.
        const e = StreamwireError.from(error);
        cancel(e);
        throw e;
      }
    };
    // Credit is awaited only when there is none: each await is a promise hop
    // per value, and hops split the session's writes.
    const send = (value: unknown): Promise<void> | undefined => {
      if (stream.done) throw new StreamwireError(Status.CANCELLED, `Call '${method}' is finished`);
      if (stream.gate.tryTake()) return queue(value);
      return stream.gate.take().then(() => queue(value));
    };
    const end = () => {
      if (!stream.done) session.send({ type: FrameType.END, seq: id });
    };
    const writable = new WritableStream<unknown>({
      write: (value) => send(value),
      close: end,
      abort: (reason) => {
        cancel(
          reason instanceof StreamwireError
            ? reason
            : new StreamwireError(Status.CANCELLED, `Upload aborted: ${String(reason)}`),
        );
      },
    }, { highWaterMark: 1 });
    return { readable: stream.inbox.readable, writable, finished, send, end };
  }

  /**
   * Removes the unary and batch calls still waiting for an answer without
   * failing them, so a reconnecting client can send them again or fail them.
   * A later answer to one of them is ignored.
   *
   * @param above Only calls with a larger id (a GOAWAY's lastId).
   * @returns The calls, oldest first.
   */
  takePending(above = 0): Pending[] {
    const calls: Pending[] = [];
    for (const call of this.#inOrder()) {
      if (call.id <= above) continue;
      calls.push(call);
      this.#pending.delete(call.id);
      if (call.timer !== undefined) this.#wheel!.remove(call, call.timer);
      if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    }
    return calls;
  }

  /** Sends a call taken from another caller's {@linkcode takePending}, with a new id and the time it has left. */
  resend(call: Pending): void {
    const remaining = call.deadline - Date.now();
    if (remaining <= 0) {
      call.reject(
        new StreamwireError(Status.DEADLINE_EXCEEDED, "Deadline passed before resending"),
      );
      return;
    }
    let message = call.message;
    if (call.codec !== this.codec.name) {
      // The new connection negotiated another codec: re-encode the params.
      const from = getCodec(call.codec);
      const recode = (bytes: Uint8Array) =>
        bytes.length === 0 ? bytes : this.codec.encode(from.decode(bytes));
      try {
        message = message.type === FrameType.REQUEST
          ? { ...message, params: recode(message.params) }
          : {
            ...message,
            entries: message.entries.map((e) => ({ ...e, params: recode(e.params) })),
          };
      } catch (error) {
        call.reject(StreamwireError.from(error));
        return;
      }
    }
    const timeout = Math.ceil(remaining);
    message = { ...message, ext: { ...message.ext, timeoutMs: timeout } };
    try {
      this.#assertOpen();
      if (call.signal?.aborted) {
        throw new StreamwireError(Status.CANCELLED, "Call cancelled before it was sent");
      }
      this.#register(
        new Pending(
          message,
          this.codec.name,
          call.signal,
          call.idempotent,
          call.deadline,
          timeout,
          call,
        ),
      );
    } catch (error) {
      call.reject(StreamwireError.from(error));
    }
  }

  /** RESPONSE, BATCH_RESULT, or DATA, END, CREDIT, ERROR of a call this side made. */
  frame(m: Message): void {
    switch (m.type) {
      case FrameType.RESPONSE: {
        const call = this.#take(m.seq);
        if (call === undefined) return; // late answer to a call already timed out or cancelled
        let value: unknown;
        try {
          value = decodeValue(this.codec, m.data);
        } catch (error) {
          call.reject(StreamwireError.from(error));
          return;
        }
        call.resolve(value);
        return;
      }
      case FrameType.BATCH_RESULT:
        this.#settleBatch(m.seq, m.results);
        return;
    }
    const stream = this.#streams.get(m.seq);
    if (stream === undefined) {
      if (m.type === FrameType.ERROR) {
        this.#take(m.seq)?.reject(new StreamwireError(m.code, m.message));
      }
      return;
    }
    switch (m.type) {
      case FrameType.DATA: {
        let failure: StreamwireError | undefined;
        try {
          stream.inbox.push(decodeValue(this.codec, m.data));
        } catch (error) {
          failure = StreamwireError.from(error);
        }
        if (failure !== undefined) {
          this.session.send({
            type: FrameType.CANCEL,
            seq: m.seq,
            code: failure.code,
            message: failure.message,
          });
          stream.end(failure);
        }
        return;
      }
      case FrameType.END:
        stream.end();
        return;
      case FrameType.CREDIT:
        stream.gate.grant(m.credit);
        return;
      case FrameType.ERROR:
        stream.end(new StreamwireError(m.code, m.message));
        return;
    }
  }

  /** Fails every call in flight: the session closed. */
  close(reason: StreamwireError): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#wheel?.clear();
    const pending = this.#inOrder();
    this.#pending.clear();
    for (const call of pending) {
      if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
      call.reject(reason);
    }
    for (const stream of [...this.#streams.values()]) stream.end(reason);
    this.#streams.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw this.#closed;
    if (this.session.state === "closed") {
      throw new StreamwireError(Status.UNAVAILABLE, "Session is closed");
    }
  }

  #allocateId(): number {
    if (this.#pending.size + this.#streams.size >= this.#limits.maxPendingCalls) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Too many calls in flight: maxPendingCalls '${this.#limits.maxPendingCalls}'`,
      );
    }
    // Ids keep this side's parity, wrap past 2^32-1, skip 0 and ids in flight.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id + 2 > MAX_ID ? (id & 1 ? 1 : 2) : id + 2;
      if (!this.#pending.has(id) && !this.#streams.has(id)) return id;
    }
  }

  #request(
    message: CallFrame,
    call: Call,
    idempotent: boolean,
    timeout: number,
  ): Promise<unknown> {
    try {
      this.#assertOpen();
      if (call.signal?.aborted) {
        throw new StreamwireError(Status.CANCELLED, "Call cancelled before it was sent");
      }
    } catch (error) {
      return Promise.reject(StreamwireError.from(error));
    }
    message.ext = this.#extOf(call, timeout);
    const pending = new Pending(
      message,
      this.codec.name,
      call.signal,
      idempotent,
      Date.now() + timeout,
      timeout,
    );
    try {
      this.#register(pending);
    } catch (error) {
      pending.reject(StreamwireError.from(error));
    }
    return pending.promise;
  }

  /** The extension block of a call; one shared object for calls with only the default timeout. */
  #extOf(call: Call, timeout: number): Extensions {
    if (
      call.traceparent === undefined && call.tracestate === undefined &&
      metadataCount(call) === 0
    ) {
      if (timeout === this.#limits.defaultTimeoutMs) return this.#defaultExt;
      return { timeoutMs: timeout };
    }
    return extOf(call, timeout)!;
  }

  /**
   * Registers and sends a call.
   *
   * @throws {StreamwireError} `resource_exhausted` for too many calls or a
   *   frame larger than maxFrame; nothing stays registered.
   */
  #register(call: Pending): void {
    const id = this.#allocateId();
    call.id = id;
    const message = call.message;
    message.seq = id;
    this.#pending.set(id, call);
    try {
      call.queued = enqueue(this.session, message);
    } catch (error) {
      this.#pending.delete(id);
      throw error;
    }
    call.queued?.then(
      () => (call.queued = undefined),
      (error) => this.#take(id)?.reject(StreamwireError.from(error)),
    );
    if (call.timeout > 0) {
      call.timer = (this.#wheel ??= new Deadlines<Pending>((call) =>
        this.#forget(call, Status.DEADLINE_EXCEEDED, `Call exceeded '${call.timeout}' ms`)
      )).add(call, call.deadline);
    }
    const signal = call.signal;
    if (signal) {
      call.onAbort = () => this.#forget(call, Status.CANCELLED, "Call cancelled by the caller");
      signal.addEventListener("abort", call.onAbort, { once: true });
    }
  }

  /** Fails a pending call locally and tells the callee to stop. */
  #forget(call: Pending, code: number, message: string): void {
    if (this.#pending.get(call.id) !== call) return;
    this.#take(call.id);
    this.#cancel(call.id, code, message, call.queued);
    call.reject(new StreamwireError(code, message));
  }

  /**
   * Sends CANCEL, after the call's own frame if that still waits for queue
   * room: a CANCEL that overtook it would be ignored, and the call would run.
   */
  #cancel(id: number, code: number, message: string, queued: Promise<void> | undefined): void {
    const send = () => this.session.send({ type: FrameType.CANCEL, seq: id, code, message });
    if (queued === undefined) send();
    else queued.then(send, ignore);
  }

  /**
   * The pending calls, oldest first: ids grow (mod 2^32) as calls are made,
   * so the oldest is the farthest behind the next id.
   */
  #inOrder(): Pending[] {
    const next = this.#nextId;
    return this.#pending.values().sort((a, b) => ((next - b.id) >>> 0) - ((next - a.id) >>> 0));
  }

  #take(id: number): Pending | undefined {
    const call = this.#pending.take(id);
    if (call === undefined) return undefined;
    if (call.timer !== undefined) this.#wheel!.remove(call, call.timer);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    return call;
  }

  #settleBatch(id: number, results: BatchResultEntry[]): void {
    const call = this.#take(id);
    if (call === undefined) return;
    const outcomes: BatchOutcome[] = results.map((r) => {
      if (r.code !== 0) {
        return { ok: false, error: new StreamwireError(r.code, UTF8.decode(r.data)) };
      }
      try {
        return { ok: true, value: decodeValue(this.codec, r.data) };
      } catch (error) {
        return { ok: false, error: StreamwireError.from(error) };
      }
    });
    call.resolve(outcomes);
  }
}

/** The extension block of a call, or undefined if it would be empty. */
function extOf(call: Call, timeout: number | undefined): Extensions | undefined {
  const metadata = metadataCount(call) > 0 ? call.metadata : undefined;
  if (
    timeout === undefined && metadata === undefined && call.traceparent === undefined &&
    call.tracestate === undefined
  ) return undefined;
  const ext: Extensions = {};
  if (timeout !== undefined) ext.timeoutMs = timeout;
  if (call.traceparent !== undefined) ext.traceparent = call.traceparent;
  if (call.tracestate !== undefined) ext.tracestate = call.tracestate;
  if (metadata !== undefined) ext.metadata = [...metadata];
  return ext;
}

/** Entries in a call's metadata, without making the list of a call that has none. */
function metadataCount(call: Call): number {
  return (call as { metadataCount?: number }).metadataCount ?? call.metadata?.length ?? 0;
}
