// The serving side of a peer: runs the handlers of the calls the other side
// makes (unary, batch, streaming and NOTIFY) and answers them (PROTOCOL.md 3).

import { FrameType, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type {
  BatchMessage,
  BatchResultEntry,
  CallMessage,
  Extensions,
  Message,
} from "../codec/message.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";
import type { Session } from "../transport/session.ts";
import { abortServed, Context, type Served, served, ServedCall } from "./_context.ts";
import { Deadlines } from "./_deadlines.ts";
import {
  CreditGate,
  decodeValue,
  encodeValue,
  enqueue,
  ignore,
  Inbox,
  notEncodable,
  type Outlet,
  produce,
  queueValue,
  tooLarge,
} from "./_flow.ts";
import { intercept } from "./_intercept.ts";
import { isThenable, notDecodable, sendError, wireError } from "./_served_errors.ts";
import type { Call, Interceptor } from "./interceptor.ts";
import type { CallContext, MethodEntry, Methods } from "./methods.ts";
import type { ErrorInfo, Push } from "./peer.ts";

export { logError } from "./_served_errors.ts";

/** What a {@linkcode Dispatcher} serves and how far it goes. */
export interface DispatcherOptions {
  methods: Methods | undefined;
  interceptors: readonly Interceptor[];
  onPush: ((push: Push) => void) | undefined;
  onError: (error: unknown, info: ErrorInfo) => void;
  maxConcurrentCalls: number;
  maxBatchSize: number;
  maxDeadlineMs: number;
  /** Streaming window of the session. */
  window: number;
}

const UTF8 = new TextEncoder();

/**
 * Told of each call refused because its method is missing (`known` false)
 * or of the other kind, where a method set wants to count them (the call
 * metrics' view of the methods): the one lookup that refuses the call
 * counts it, rather than a second lookup per message.
 */
export const REFUSED: unique symbol = Symbol("streamwire.refused");

/** A method set that counts refused calls. */
interface Refusals {
  [REFUSED]?: (method: string, known: boolean) => void;
}

/** Never written: dispatchers share them until they track a call. */
const NO_CALLS = new Map<number, never>();
const NO_NOTIFICATIONS = new Set<never>();

/**
 * Serves the calls of one session, or of any other {@linkcode Outlet}: what
 * it sends goes through the outlet's bounded queue.
 */
export class Dispatcher {
  /** NOTIFYs dropped because `maxConcurrentCalls` handlers were already running. */
  droppedNotifications = 0;
  #session: Outlet;
  /**
   * What handlers (`ctx.session`) and `onError` are given: the session
   * itself, or the stand-in of a dispatcher built from pipes, which has the
   * outlet's members only (RpcDispatcherStream documents them).
   */
  #context: Session;
  #codec: PayloadCodec;
  #options: DispatcherOptions;
  /** The shared empty map until a call is tracked: an idle session holds none of its own. */
  #calls: Map<number, Served> = NO_CALLS;
  /** NOTIFY handlers still running (their results are dropped); bounded with the calls. */
  #notifications: Set<Served> = NO_NOTIFICATIONS;
  /** Made with the first call that has a deadline: an idle session holds none. */
  #wheel: Deadlines<Served> | undefined;
  #drainWaiters: (() => void)[] | undefined;

  constructor(session: Outlet, codec: PayloadCodec, options: DispatcherOptions) {
    this.#session = session;
    this.#context = session as Session;
    this.#codec = codec;
    this.#options = options;
  }

  /** Calls being served. */
  get inflight(): number {
    return this.#calls.size;
  }

  /** Resolves once no served call is in flight. */
  drain(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve));
  }

  /** Aborts every served call and NOTIFY handler: the session closed. */
  close(reason: StreamwireError): void {
    for (const call of [...this.#calls.values()]) this.#abort(call, reason);
    for (const call of this.#notifications) abortServed(call, reason);
    this.#notifications.clear();
    this.#wheel?.clear();
    this.#wakeDrain();
  }

  /** REQUEST: runs a unary handler and answers RESPONSE or ERROR. */
  request(m: CallMessage): void {
    const id = m.seq;
    if (!this.#admit(id)) return;
    const call = served(id);
    let entry: MethodEntry, ctx: Context;
    try {
      entry = this.#lookup(m.method, "unary");
      const params = this.#params(m.params, m.method);
      ctx = new Context(
        call,
        { method: m.method, params, ext: m.ext },
        this.#context,
        this.#deadline(m.ext),
      );
    } catch (error) {
      this.#fail(id, error, m.method);
      return;
    }
    let result: unknown;
    if (this.#options.interceptors.length === 0) {
      try {
        result = (entry.handler as (p: unknown, c: CallContext) => unknown)(ctx.params, ctx);
      } catch (error) {
        this.#fail(id, error, m.method);
        return;
      }
      if (!isThenable(result)) {
        // Finished synchronously: nothing could cancel it, so it is never tracked.
        this.#respond(id, result, m.method);
        return;
      }
    } else {
      result = this.#intercepted("unary", entry, ctx, m.ext);
    }
    // Tracked from here: CANCEL, the deadline and shutdown reach it, and it counts as in flight.
    this.#track(call, ctx.deadline);
    Promise.resolve(result).then(
      (value) => {
        if (this.#finish(call)) this.#respond(id, value, m.method);
      },
      (error) => {
        if (this.#finish(call)) this.#fail(id, error, m.method);
      },
    );
  }

  /** BATCH: runs each entry as a unary call and answers one BATCH_RESULT in request order. */
  batch(m: BatchMessage): void {
    const id = m.seq;
    if (!this.#admit(id)) return;
    const max = this.#options.maxBatchSize;
    // A BATCH over the session's maxBatchEntries arrives with its count only.
    const declared = (m as { declared?: number }).declared;
    const count = declared ?? m.entries.length;
    if (count > max || declared !== undefined) {
      // Without its entries even under maxBatchSize: the session's own bound was lower.
      const bound = count > max ? `maxBatchSize '${max}'` : "the session's maxBatchEntries";
      this.#sendError(
        id,
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Batch of '${count}' entries exceeds ${bound}`,
        ),
      );
      return;
    }
    const entries = m.entries;
    const call = served(id);
    this.#callMap().set(id, call);
    const results: BatchResultEntry[] = new Array(entries.length);
    const failure = (error: unknown, method: string): BatchResultEntry => {
      const e = this.#wire(error, method, id);
      return { code: e.code, data: UTF8.encode(e.message) };
    };
    const success = (value: unknown, method: string): BatchResultEntry => {
      try {
        return { code: 0, data: encodeValue(this.#codec, value) };
      } catch (error) {
        return failure(notEncodable(error), method);
      }
    };
    const deadline = this.#deadline(m.ext);
    const intercepted = this.#options.interceptors.length > 0;
    // Entries start in order; asynchronous ones run concurrently, at most
    // maxConcurrentCalls at a time; results keep request order.
    const limit = this.#options.maxConcurrentCalls;
    let next = 0;
    let running = 0;
    let remaining = entries.length;
    const finish = () => {
      if (this.#finish(call)) this.#answer({ type: FrameType.BATCH_RESULT, seq: id, results });
    };
    const start = (): void => {
      while (next < entries.length && running < limit && call.reason === undefined) {
        const i = next++;
        const { method } = entries[i];
        let result: unknown;
        try {
          const entry = this.#lookup(method, "unary");
          const params = this.#params(entries[i].params, method);
          const ctx = new Context(call, { method, params, ext: m.ext }, this.#context, deadline);
          result = intercepted
            ? this.#intercepted("unary", entry, ctx, m.ext)
            : (entry.handler as (p: unknown, c: CallContext) => unknown)(params, ctx);
        } catch (error) {
          results[i] = failure(error, method);
          remaining--;
          continue;
        }
        if (!isThenable(result)) {
          results[i] = success(result, method);
          remaining--;
          continue;
        }
        if (call.timer === undefined) call.timer = this.#deadlines().add(call, deadline);
        running++;
        Promise.resolve(result).then(
          (value) => (results[i] = success(value, method)),
          (error) => (results[i] = failure(error, method)),
        ).finally(() => {
          running--;
          remaining--;
          if (remaining === 0) finish();
          else start();
        });
      }
    };
    start();
    if (remaining === 0) finish();
  }

  /** OPEN: runs a streaming handler; DATA goes out against credit, END or ERROR finishes. */
  open(m: CallMessage): void {
    const id = m.seq;
    if (!this.#admit(id)) return;
    const session = this.#session;
    const window = this.#options.window;
    const call = served(id);
    call.gate = new CreditGate(window);
    let entry: MethodEntry, ctx: Context;
    try {
      entry = this.#lookup(m.method, "stream");
      const params = this.#params(m.params, m.method);
      // A stream has a deadline only if its caller sent one: long-lived
      // streams are what streaming is for.
      const timeout = m.ext?.timeoutMs;
      const deadline = timeout !== undefined && timeout > 0 ? Date.now() + timeout : Infinity;
      ctx = new Context(call, { method: m.method, params, ext: m.ext }, this.#context, deadline);
    } catch (error) {
      this.#fail(id, error, m.method);
      return;
    }
    if (entry.kind === "client_stream" || entry.kind === "bidi") {
      call.inbox = new Inbox<unknown>(
        window,
        (n) => session.send({ type: FrameType.CREDIT, seq: id, credit: n }),
        ignore,
      );
    }
    this.#track(call, ctx.deadline);
    const run = (c?: Call) => this.#stream(entry, call, ctx, c);
    const done = this.#options.interceptors.length === 0 ? run() : intercept(
      this.#options.interceptors,
      new ServedCall(entry.kind, ctx, m.ext?.timeoutMs),
      run,
    );
    done.then(
      () => {
        if (this.#finish(call)) session.send({ type: FrameType.END, seq: id });
      },
      (error) => {
        if (this.#finish(call)) this.#fail(id, error, m.method);
      },
    );
  }

  /** NOTIFY or BROADCAST: runs a registered unary method, else hands it to `onPush`. */
  push(m: CallMessage): void {
    if (m.type === FrameType.NOTIFY) {
      const entry = this.#options.methods?.get(m.method);
      if (entry?.kind === "unary") {
        this.#notify(entry, m);
        return;
      }
    }
    const onPush = this.#options.onPush;
    if (onPush === undefined) return;
    let params: unknown;
    try {
      params = decodeValue(this.#codec, m.params);
    } catch {
      return; // at most once: a push that does not decode is dropped
    }
    try {
      onPush({ type: m.type as Push["type"], method: m.method, params });
    } catch (error) {
      // The callback's failure is its own: the connection and other calls go on.
      this.#report(error, m.method, 0);
    }
  }

  /** DATA, END, CREDIT, CANCEL or ERROR of a served call. */
  frame(m: Message): void {
    const id = m.seq;
    const call = this.#calls.get(id);
    if (call === undefined) return; // late frame of a finished or cancelled call
    switch (m.type) {
      case FrameType.DATA: {
        if (call.inbox === undefined) return;
        let value: unknown;
        try {
          value = decodeValue(this.#codec, m.data);
        } catch (error) {
          this.#refuse(call, notDecodable(error, this.#codec));
          return;
        }
        try {
          call.inbox.push(value);
        } catch (error) {
          this.#refuse(call, error as StreamwireError);
        }
        return;
      }
      case FrameType.END:
        call.inbox?.end();
        return;
      case FrameType.CREDIT:
        call.gate?.grant(m.credit);
        return;
      case FrameType.CANCEL:
      case FrameType.ERROR:
        // The caller stopped waiting: stop, and send nothing more for this id.
        this.#abort(
          call,
          new StreamwireError(
            m.code === 0 ? Status.CANCELLED : m.code,
            m.message || "Cancelled by the caller",
          ),
        );
    }
  }

  #notify(entry: MethodEntry, m: CallMessage): void {
    // At most once, never answered: failures stay on this side, and a NOTIFY
    // beyond the concurrency limit is dropped (and counted) rather than
    // started, so a flood cannot pile up handlers.
    if (this.#calls.size + this.#notifications.size >= this.#options.maxConcurrentCalls) {
      this.droppedNotifications++;
      return;
    }
    const call = served(0);
    let result: unknown;
    try {
      const params = this.#params(m.params, m.method);
      const ctx = new Context(
        call,
        { method: m.method, params, ext: m.ext },
        this.#context,
        this.#deadline(m.ext),
      );
      result = this.#options.interceptors.length === 0
        ? (entry.handler as (p: unknown, c: CallContext) => unknown)(params, ctx)
        : this.#intercepted("notify", entry, ctx, m.ext);
    } catch (error) {
      this.#unanswered(error, m.method);
      return;
    }
    if (!isThenable(result)) return;
    if (this.#notifications === NO_NOTIFICATIONS) this.#notifications = new Set();
    this.#notifications.add(call);
    Promise.resolve(result).then(ignore, (error) => this.#unanswered(error, m.method))
      .finally(() => this.#notifications.delete(call));
  }

  /** Runs a unary handler through the interceptors. */
  #intercepted(
    kind: "unary" | "notify",
    entry: MethodEntry,
    ctx: Context,
    ext: Extensions | undefined,
  ): Promise<unknown> {
    return intercept(this.#options.interceptors, new ServedCall(kind, ctx, ext?.timeoutMs), (c) => {
      ctx.params = c.params;
      ctx.metadata = c.metadata;
      return Promise.resolve(
        (entry.handler as (p: unknown, c: CallContext) => unknown)(c.params, ctx),
      );
    });
  }

  /** Runs a streaming handler; resolves once its output is queued (or its one result, sent). */
  async #stream(
    entry: MethodEntry,
    call: Served,
    ctx: Context,
    c: Call | undefined,
  ): Promise<unknown> {
    if (c !== undefined) {
      ctx.params = c.params;
      ctx.metadata = c.metadata;
    }
    switch (entry.kind) {
      case "server_stream":
        await produce(this.#session, this.#codec, call, entry.handler(ctx.params, ctx));
        return undefined;
      case "bidi":
        await produce(this.#session, this.#codec, call, entry.handler(call.inbox!.readable, ctx));
        return undefined;
      case "client_stream": {
        const value = await entry.handler(call.inbox!.readable, ctx);
        if (call.reason !== undefined) return value;
        await call.gate!.take();
        const sending = queueValue(this.#session, this.#codec, call.id, value);
        if (sending !== undefined) await sending;
        return value;
      }
    }
  }

  /** Checks GOAWAY, concurrency and the id; answers ERROR and returns false if the call may not start. */
  #admit(id: number): boolean {
    const goaway = this.#session.goawayLastId;
    if (goaway !== undefined && id > goaway) {
      this.#sendError(
        id,
        new StreamwireError(
          Status.UNAVAILABLE,
          `Shutting down: call '${id}' is above lastId '${goaway}'`,
        ),
      );
      return false;
    }
    if (this.#calls.size >= this.#options.maxConcurrentCalls) {
      this.#sendError(
        id,
        new StreamwireError(
          Status.RESOURCE_EXHAUSTED,
          `Too many concurrent calls: maxConcurrentCalls '${this.#options.maxConcurrentCalls}'`,
        ),
      );
      return false;
    }
    if (this.#calls.has(id)) {
      this.#sendError(
        id,
        new StreamwireError(Status.ALREADY_EXISTS, `Call id '${id}' is already in flight`),
      );
      return false;
    }
    return true;
  }

  #lookup(method: string, kind: "unary" | "stream"): MethodEntry {
    const methods = this.#options.methods;
    const entry = methods?.get(method);
    if (entry === undefined) {
      (methods as Refusals | undefined)?.[REFUSED]?.(method, false);
      throw new StreamwireError(Status.UNIMPLEMENTED, `Unknown method '${method}'`);
    }
    if ((kind === "unary") !== (entry.kind === "unary")) {
      (methods as Refusals)[REFUSED]?.(method, true);
      throw new StreamwireError(
        Status.UNIMPLEMENTED,
        kind === "unary"
          ? `Method '${method}' is a ${entry.kind} method: open it with OPEN`
          : `Method '${method}' is unary: call it with REQUEST`,
      );
    }
    return entry;
  }

  #params(bytes: Uint8Array, method: string): unknown {
    try {
      return decodeValue(this.#codec, bytes);
    } catch (error) {
      throw new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Params of '${method}' do not decode as ${this.#codec.name}: ${(error as Error).message}`,
      );
    }
  }

  /** Deadline of a unary call, a batch or a NOTIFY: the caller's timeout, at most maxDeadlineMs. */
  #deadline(ext: Extensions | undefined): number {
    const max = this.#options.maxDeadlineMs;
    const timeout = ext?.timeoutMs !== undefined && ext.timeoutMs > 0
      ? Math.min(ext.timeoutMs, max)
      : max;
    // Counted from the read that brought the call: no clock read per call.
    return (this.#session.stats?.lastReceivedAt ?? Date.now()) + timeout;
  }

  #deadlines(): Deadlines<Served> {
    return this.#wheel ??= new Deadlines<Served>((call) => this.#expired(call));
  }

  #callMap(): Map<number, Served> {
    return this.#calls === NO_CALLS ? (this.#calls = new Map()) : this.#calls;
  }

  #track(call: Served, deadline: number): void {
    this.#callMap().set(call.id, call);
    if (deadline !== Infinity) call.timer = this.#deadlines().add(call, deadline);
  }

  #expired(call: Served): void {
    if (this.#calls.get(call.id) !== call) return;
    call.timer = undefined;
    const error = new StreamwireError(
      Status.DEADLINE_EXCEEDED,
      `Deadline of call '${call.id}' exceeded`,
    );
    this.#abort(call, error);
    this.#sendError(call.id, error);
  }

  /** Removes a served call; false if it was aborted meanwhile (send nothing). */
  #finish(call: Served): boolean {
    if (this.#calls.get(call.id) === call) {
      this.#calls.delete(call.id);
      if (call.timer !== undefined) this.#wheel!.remove(call, call.timer);
      if (this.#calls.size === 0) this.#wakeDrain();
    }
    return call.reason === undefined;
  }

  #abort(call: Served, reason: StreamwireError): void {
    if (this.#calls.get(call.id) === call) {
      this.#calls.delete(call.id);
      if (call.timer !== undefined) this.#wheel!.remove(call, call.timer);
    }
    abortServed(call, reason);
    if (this.#calls.size === 0) this.#wakeDrain();
  }

  /** Fails a served call because of what its caller sent. */
  #refuse(call: Served, error: StreamwireError): void {
    this.#abort(call, error);
    this.#sendError(call.id, error);
  }

  #wakeDrain(): void {
    const waiters = this.#drainWaiters;
    if (waiters === undefined) return;
    this.#drainWaiters = undefined;
    for (const w of waiters) w();
  }

  #wire(error: unknown, method: string, id: number): StreamwireError {
    return wireError(error, () => this.#report(error, method, id), method);
  }

  #fail(id: number, error: unknown, method: string): void {
    this.#sendError(id, this.#wire(error, method, id));
  }

  /** A NOTIFY handler failed: nobody is told, but a bug is reported. */
  #unanswered(error: unknown, method: string): void {
    if (!(error instanceof StreamwireError)) this.#report(error, method, 0);
  }

  #report(error: unknown, method: string, id: number): void {
    try {
      this.#options.onError(error, { method, session: this.#context, id });
    } catch { /* a failing logger must not take the connection with it */ }
  }

  #sendError(id: number, error: StreamwireError): void {
    sendError(this.#session, id, error);
  }

  #respond(id: number, value: unknown, method: string): void {
    let data: Uint8Array;
    try {
      data = encodeValue(this.#codec, value);
    } catch (error) {
      this.#fail(id, notEncodable(error), method);
      return;
    }
    this.#answer({ type: FrameType.RESPONSE, seq: id, data });
  }

  /** Queues an answer, or ERROR 8 in its place when it is larger than maxFrame. */
  #answer(message: Message): void {
    try {
      enqueue(this.#session, message)?.catch(ignore);
    } catch {
      this.#sendError(message.seq, tooLarge(this.#session, message));
    }
  }
}
