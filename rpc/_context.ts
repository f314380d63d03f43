// The context of a served call: what its handler and the serving side's
// interceptors see.

import type { StreamwireError } from "../codec/error.ts";
import type { Extensions } from "../codec/message.ts";
import type { Session } from "../transport/session.ts";
import type { CreditGate, Inbox } from "./_flow.ts";
import type { Call, CallKind } from "./interceptor.ts";
import type { CallContext } from "./methods.ts";

const NO_METADATA: readonly [string, string][] = Object.freeze([]);

/** A call this side serves, from its first frame until it is answered or aborted. */
export interface Served {
  id: number;
  /** Created when a handler first reads `ctx.signal`. */
  controller: AbortController | undefined;
  /** Why the call was aborted (CANCEL, deadline, disconnect); nothing more is sent once set. */
  reason: StreamwireError | undefined;
  /** Key in the deadline wheel, once armed. */
  timer: number | undefined;
  /** Incoming DATA of a client-streaming or bidirectional call. */
  inbox?: Inbox<unknown>;
  /** Credit for outgoing DATA of a streaming call. */
  gate?: CreditGate;
}

/** A new record of a served call. */
export function served(id: number): Served {
  return { id, controller: undefined, reason: undefined, timer: undefined };
}

/** Aborts a served call: its signal fires now, or at once when first read. */
export function abortServed(call: Served, reason: StreamwireError): void {
  call.reason ??= reason;
  call.controller?.abort(call.reason);
  call.inbox?.error(call.reason);
  call.gate?.close(call.reason);
}

/** The {@linkcode CallContext} of a served call; `signal` is created on first use. */
export class Context implements CallContext {
  readonly method: string;
  readonly id: number;
  params: unknown;
  readonly session: Session;
  metadata: readonly [string, string][];
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly deadline: number;
  #served: Served;

  constructor(
    served: Served,
    entry: { method: string; params: unknown; ext: Extensions | undefined },
    session: Session,
    deadline: number,
  ) {
    this.method = entry.method;
    this.id = served.id;
    this.params = entry.params;
    this.session = session;
    const ext = entry.ext;
    this.metadata = ext?.metadata ?? NO_METADATA;
    this.traceparent = ext?.traceparent;
    this.tracestate = ext?.tracestate;
    this.deadline = deadline;
    this.#served = served;
  }

  get signal(): AbortSignal {
    // Most unary handlers never look at it; a call aborted before the first
    // look gets a signal that is already aborted.
    const call = this.#served;
    if (call.controller === undefined) {
      call.controller = new AbortController();
      if (call.reason !== undefined) call.controller.abort(call.reason);
    }
    return call.controller.signal;
  }
}

/** A served call as the serving side's interceptors see it. */
export class ServedCall implements Call {
  readonly side = "callee" as const;
  readonly kind: CallKind;
  readonly method: string;
  params: unknown;
  readonly metadata: [string, string][];
  traceparent: string | undefined;
  tracestate: string | undefined;
  timeout: number | undefined;
  readonly context: Context;

  constructor(kind: CallKind, context: Context, timeout: number | undefined) {
    this.kind = kind;
    this.method = context.method;
    this.params = context.params;
    // A copy: the decoded extension block may be shared by a batch's entries.
    this.metadata = [...context.metadata];
    this.traceparent = context.traceparent;
    this.tracestate = context.tracestate;
    this.timeout = timeout;
    this.context = context;
  }

  get signal(): AbortSignal {
    return this.context.signal;
  }
}
