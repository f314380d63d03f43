// A session as its outbound queue and its read loop see it. Private:
// Session makes one per session and binds the internals once.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import type { InboundSink } from "./_inbound.ts";
import type { OutboundHooks } from "./_outbound.ts";
import type { Connection } from "./connection.ts";
import type { CloseListener } from "./_pull_connection.ts";
import type { Session } from "./session.ts";

/** What a {@linkcode Link} reaches inside its session: Session's private methods. */
export interface LinkInternals {
  receive(session: Session, message: Message): void | Promise<void>;
  received(session: Session, n: number): void;
  wake(session: Session): void;
  writeFailed(session: Session, error: unknown): void;
  readEnded(session: Session, error: StreamwireError | undefined): void;
  closed(session: Session): void;
}

let internals: LinkInternals;

/** Called once, by Session's static block, which can reach its private methods. */
export function bindLink(bound: LinkInternals): void {
  internals = bound;
}

/**
 * A session as its outbound queue and its read loop see it: their hooks and
 * the last inbound stage in one object with its methods on the prototype,
 * rather than a closure each in every session.
 */
export class Link implements OutboundHooks, InboundSink, CloseListener {
  readonly session: Session;
  readonly #conn: Connection;
  /** The writable's writer, for a connection without the pull interface. */
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  constructor(session: Session, conn: Connection) {
    this.session = session;
    this.#conn = conn;
  }

  write(chunk: Uint8Array): Promise<void> {
    const conn = this.#conn;
    if (conn.write !== undefined) return conn.write(chunk);
    if (this.#writer === undefined) {
      this.#writer = conn.writable.getWriter();
      this.#writer.closed.catch(() => {});
    }
    return this.#writer.write(chunk);
  }

  ended(error: StreamwireError | undefined): void {
    internals.readEnded(this.session, error);
  }

  connectionClosed(): void {
    internals.closed(this.session);
  }

  transform(message: Message): void | Promise<void> {
    return internals.receive(this.session, message);
  }

  bytes(n: number): void {
    internals.received(this.session, n);
  }

  drained(): void {
    internals.wake(this.session);
  }

  failed(error: unknown): void {
    internals.writeFailed(this.session, error);
  }

  rejected(error: unknown): void {
    this.session.close(
      new StreamwireError(
        Status.INTERNAL,
        `Outbound stage failed: ${StreamwireError.from(error).message}`,
        { cause: error },
      ),
    );
  }

  wrote(bytes: number, frames: number): void {
    const stats = this.session.stats;
    stats.bytesOut += bytes;
    stats.framesOut += frames;
    stats.lastSentAt = Date.now();
  }
}
