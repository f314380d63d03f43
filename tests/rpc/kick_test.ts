// Calls answered just before the session is closed on them still resolve,
// and the server drains a class-based handler through its own methods.

import assert from "node:assert/strict";
import { FrameType, Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Message } from "../../codec/message.ts";
import { dial, listen, openSession, Server, type Session } from "../../transport/mod.ts";
import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";

Deno.test("RpcClient: five calls answered before a kick in the same write all resolve", async () => {
  // The six calls leave in one write and are read in one read: the five
  // echoes are answered, then `kick` closes the session. The five RESPONSEs
  // and the ERROR reach the client in one write too.
  const server: RpcServer = new RpcServer({
    methods: new Methods()
      .unary("echo", (p) => p)
      .unary("kick", (_p, ctx) => {
        server.transport.kick(ctx.session.id, "Kicked after five answers");
      }),
  });
  const client = await connect(server.listen({ port: 0 }), { reconnect: false });
  try {
    const calls = [1, 2, 3, 4, 5].map((n) => client.call("echo", n));
    const kicked = client.call("kick");
    assert.deepEqual(await Promise.all(calls), [1, 2, 3, 4, 5]);
    await assert.rejects(kicked, (error) => {
      assert.ok(error instanceof StreamwireError);
      assert.equal(error.code, Status.UNAVAILABLE);
      return true;
    });
  } finally {
    await client.close();
    await server.shutdown();
  }
});

/** A handler whose methods use `this`: drain must be called as a method. */
class Tracker {
  readonly inFlight = new Set<number>();
  #idle: (() => void)[] = [];
  #arrived!: () => void;
  /** Resolves once a call is in flight. */
  readonly arrived: Promise<void> = new Promise((resolve) => (this.#arrived = resolve));

  message(session: Session, m: Message): void {
    if (m.type !== FrameType.REQUEST) return;
    this.inFlight.add(m.seq);
    this.#arrived();
    // Answered once the test lets it go, during shutdown.
    this.#idle.push(() => {
      session.send({ type: FrameType.RESPONSE, seq: m.seq, data: m.params });
      this.inFlight.delete(m.seq);
    });
  }

  drain(_session: Session): Promise<void> {
    for (const answer of this.#idle.splice(0)) answer();
    return Promise.resolve();
  }
}

Deno.test("Server: shutdown drains a class-based handler with its own this", async () => {
  const tracker = new Tracker();
  const server = new Server({ handler: tracker });
  const listener = listen({ port: 0 });
  const serving = server.serve(listener);
  const answers: number[] = [];
  let received!: () => void;
  const answered = new Promise<void>((resolve) => (received = resolve));
  const client = await openSession(await dial(listener.addr), {
    handler: {
      message: (_s, m) => {
        if (m.type === FrameType.RESPONSE) {
          answers.push(m.seq);
          received();
        }
      },
    },
  });
  client.send({ type: FrameType.REQUEST, seq: 1, method: "slow", params: Uint8Array.of(1) });
  await tracker.arrived;
  await server.shutdown();
  await answered;
  assert.deepEqual(answers, [1]);
  assert.equal(tracker.inFlight.size, 0);
  await client.closed;
  await serving;
});
