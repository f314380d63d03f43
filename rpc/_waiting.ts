// Calls of a reconnecting client waiting for its next connection, each
// within its own deadline and signals.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { RpcPeer } from "./peer.ts";

type Timer = ReturnType<typeof setTimeout>;

/** What a call waiting for a connection needs. */
export interface Wait {
  method: string;
  /** Absolute deadline in ms since epoch, or Infinity. */
  deadline: number;
  /** Stop waiting when one of these aborts. */
  signals: (AbortSignal | undefined)[];
  /** The connection is ready. */
  run(peer: RpcPeer): void;
  /** The wait ended without one. */
  fail(error: StreamwireError): void;
}

interface Entry {
  run(peer: RpcPeer): void;
  fail(error: StreamwireError): void;
}

/** The calls waiting, in the order they came. */
export class Waiting {
  #entries = new Set<Entry>();

  /** Calls waiting. */
  get size(): number {
    return this.#entries.size;
  }

  /** Holds a call until {@linkcode run} or {@linkcode fail}, its deadline or a signal. */
  add(w: Wait): void {
    const signals = w.signals.filter((s): s is AbortSignal => s !== undefined);
    let timer: Timer | undefined;
    const done = () => {
      this.#entries.delete(entry);
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", onAbort);
    };
    const entry: Entry = {
      run: (peer) => {
        done();
        w.run(peer);
      },
      fail: (error) => {
        done();
        w.fail(error);
      },
    };
    const onAbort = () => {
      const reason = signals.find((s) => s.aborted)?.reason;
      entry.fail(
        reason instanceof StreamwireError
          ? reason
          : new StreamwireError(Status.CANCELLED, `Call '${w.method}' cancelled by the caller`),
      );
    };
    if (signals.some((s) => s.aborted)) return onAbort();
    for (const s of signals) s.addEventListener("abort", onAbort, { once: true });
    if (w.deadline !== Infinity) {
      timer = setTimeout(
        () =>
          entry.fail(
            new StreamwireError(
              Status.DEADLINE_EXCEEDED,
              `Call '${w.method}' exceeded its deadline waiting for a connection`,
            ),
          ),
        Math.max(0, w.deadline - Date.now()),
      );
    }
    this.#entries.add(entry);
  }

  /** Sends every waiting call on `peer`. */
  run(peer: RpcPeer): void {
    for (const entry of [...this.#entries]) entry.run(peer);
  }

  /** Fails every waiting call with `error`. */
  fail(error: StreamwireError): void {
    for (const entry of [...this.#entries]) entry.fail(error);
  }
}
