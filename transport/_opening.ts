// A session's handshake phase: what it needs only until the handshake
// completes or fails (how to answer HELLO or check HELLO_ACK, and who waits
// for `opened`). Private: Session holds one until then and drops it, so an
// established session keeps none of it.

import type { StreamwireError } from "../codec/error.ts";
import type { Message } from "../codec/message.ts";
import type { SessionSettings } from "./handshake.ts";
import type { SessionOptions } from "./session_options.ts";
import { handshakeSettings } from "./_session_rules.ts";

/** The handshake phase of one session. */
export class Opening {
  #negotiate: SessionOptions["negotiate"];
  #acceptAck: SessionOptions["acceptAck"];
  #waiter: { resolve(): void; reject(error: StreamwireError): void } | undefined;

  constructor(options: Pick<SessionOptions, "negotiate" | "acceptAck">) {
    this.#negotiate = options.negotiate;
    this.#acceptAck = options.acceptAck;
  }

  /**
   * The settings a HELLO (server) or HELLO_ACK (client) establishes.
   *
   * @throws {StreamwireError} When the frame is not the one expected or is refused.
   */
  settings(message: Message, role: "client" | "server"): SessionSettings {
    return handshakeSettings(message, role, {
      negotiate: this.#negotiate,
      acceptAck: this.#acceptAck,
    });
  }

  /** A promise settled by {@linkcode Opening.settle}: what `opened` returns while connecting. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** The handshake completed (no error) or failed. */
  settle(error?: StreamwireError): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (error === undefined) waiter?.resolve();
    else waiter?.reject(error);
  }
}
