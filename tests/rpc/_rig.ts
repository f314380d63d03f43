// A server and a client over TCP on 127.0.0.1 or over an in-memory pair,
// with a method set that records what handlers saw.
//
// Tests await the event they wait for (a call settling, a probe change, a
// frame, a `statechange`); the only clock is a safety net that turns a hang
// into a failure (SAFETY_NET_MS), never a speed check.

import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import type { Connection } from "../../transport/connection.ts";
import { memoryPair } from "../../transport/memory.ts";
import type { Session } from "../../transport/session.ts";
import { type ClientOptions, connect, type RpcClient } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import type { CallContext, Methods } from "../../rpc/methods.ts";
import type { RpcPeer } from "../../rpc/peer.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";
import { dial as tcpDial } from "../../transport/dial.ts";
import { delay, guard, SAFETY_NET_MS, Signal } from "../transport/_helpers.ts";
import { frame, json, RawPeer, T } from "./_wire.ts";

export { delay, guard, SAFETY_NET_MS };

export type Kind = "tcp" | "memory";
export const KINDS: readonly Kind[] = ["tcp", "memory"];

/**
 * Polls `cond` until it holds. Only for conditions that no event announces
 * (`inflight`, `pending`, a counter of the product); anything with an event
 * is awaited instead. The cap defaults to {@linkcode SAFETY_NET_MS} and only
 * turns a hang into a failure naming `what`.
 */
export async function waitFor(
  cond: () => boolean,
  what: string,
  safetyNetMs = SAFETY_NET_MS,
): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > safetyNetMs) {
      throw new Error(
        `Still waiting for ${what} after ${safetyNetMs} ms ` +
          "(a safety net against a hang, not a speed check)",
      );
    }
    await delay(2);
  }
}

/** Resolves once the client and the server's only peer have no call left. */
export function settled(r: Rig): Promise<void> {
  return waitFor(
    () => r.client.pending === 0 && r.serverPeer().inflight === 0,
    "no call pending on the client nor in flight on the server",
  );
}

/**
 * What the test methods observed. Whoever changes it calls `changed()`, so
 * that `until` re-checks.
 */
export class Probe {
  #signal = new Signal();
  notified: unknown[] = [];
  /** What the server's onError received. */
  errors: { error: unknown; method: string; id: number }[] = [];
  aborted: { method: string; code: number }[] = [];
  contexts: CallContext[] = [];
  /** Items produced by `ticks` so far. */
  produced = 0;
  /** `ticks` generator's finally ran (return() or completion). */
  tickerClosed = false;
  onNotify: (() => void) | undefined;

  /** Something was recorded: waiters re-check. */
  changed(): void {
    this.#signal.notify();
  }

  /** Resolves once `check()` holds, re-checked at each change. */
  until(check: () => boolean, what: string): Promise<void> {
    return this.#signal.until(check, what);
  }
}

/** Demo methods plus methods for failures, cancellation and observation. */
export function testMethods(server: () => RpcServer, probe: Probe): Methods {
  const recordAbort = (ctx: CallContext) => {
    ctx.signal.addEventListener("abort", () => {
      probe.aborted.push({ method: ctx.method, code: (ctx.signal.reason as StreamwireError).code });
      probe.changed();
    }, { once: true });
  };
  return demoMethods(server)
    .unary("fail.code", () => {
      throw new StreamwireError(Status.NOT_FOUND, "No user 'ada'");
    })
    .unary("fail.plain", () => {
      throw new Error("plain boom");
    })
    .unary("fail.async", () => Promise.reject(new StreamwireError(Status.ABORTED, "async no")))
    .unary("hang", (_p, ctx) => {
      recordAbort(ctx);
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
    })
    .unary("ctx", (_p, ctx) => {
      probe.contexts.push(ctx);
      probe.changed();
      return {
        traceparent: ctx.traceparent ?? null,
        tracestate: ctx.tracestate ?? null,
        metadata: ctx.metadata,
        id: ctx.id,
        sessionId: ctx.session.id,
      };
    })
    .unary("note", (p) => {
      probe.notified.push(p);
      probe.changed();
      probe.onNotify?.();
    })
    .serverStream("ticks", (_p, ctx) => {
      recordAbort(ctx);
      return (async function* () {
        try {
          for (let i = 0;; i++) {
            probe.produced++;
            probe.changed();
            yield i;
            // Yields to the event loop now and then, as a real producer would.
            if (i % 64 === 63) await delay(0);
          }
        } finally {
          probe.tickerClosed = true;
          probe.changed();
        }
      })();
    })
    .serverStream("fast", (n: number) => {
      // A synchronous producer: counts what it handed out.
      return (function* () {
        for (let i = 0; i < n; i++) {
          probe.produced++;
          probe.changed();
          yield i;
        }
      })();
    })
    .serverStream("failing", function* () {
      yield 1;
      throw new StreamwireError(Status.DATA_LOSS, "lost it");
    })
    .clientStream("stall", (_input, ctx) => {
      // Never reads its input: credit is never granted back.
      recordAbort(ctx);
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
    })
    .bidi("upper", async function* (input: ReadableStream<string>) {
      for await (const s of input) yield s.toUpperCase();
    })
    .clientStream("collect", async (input: ReadableStream<unknown>) => {
      return await Array.fromAsync(input);
    });
}

export interface Rig {
  kind: Kind;
  server: RpcServer;
  client: RpcClient;
  probe: Probe;
  /** Server address (TCP only). */
  addr: string | undefined;
  /** The server's only session. */
  serverSession(): Session;
  /** The server's RpcPeer of its only session. */
  serverPeer(): RpcPeer;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface RigOptions {
  server?: Partial<RpcServerOptions>;
  client?: ClientOptions;
  methods?: (server: () => RpcServer, probe: Probe) => Methods;
  /** Wraps each connection the client opens (to spy on bytes). */
  wrap?: (conn: Connection) => Connection;
}

/** Starts a server and a connected client over `kind`. */
export async function rig(kind: Kind, options: RigOptions = {}): Promise<Rig> {
  const probe = new Probe();
  const server: RpcServer = new RpcServer({
    onError: (error, { method, id }) => {
      probe.errors.push({ error, method, id });
      probe.changed();
    },
    ...options.server,
    methods: (options.methods ?? testMethods)(() => server, probe),
  });
  const wrap = options.wrap ?? ((c: Connection) => c);
  let addr: string | undefined;
  let dial: () => Promise<Connection>;
  if (kind === "tcp") {
    addr = server.listen({ port: 0 });
    dial = async () => wrap(await tcpDial(addr!));
  } else {
    dial = () => {
      const [a, b] = memoryPair();
      server.accept(a);
      return Promise.resolve(wrap(b));
    };
  }
  let client: RpcClient;
  try {
    client = await connect("tcp://127.0.0.1:1", { reconnect: false, ...options.client, dial });
  } catch (error) {
    await server.shutdown({ deadlineMs: 0 });
    throw error;
  }
  const only = (): Session => {
    const sessions = [...server.transport.sessions()];
    if (sessions.length !== 1) throw new Error(`Expected 1 session, got ${sessions.length}`);
    return sessions[0];
  };
  return {
    kind,
    server,
    client,
    probe,
    addr,
    serverSession: only,
    serverPeer: () => server.peer(only())!,
    async [Symbol.asyncDispose]() {
      await client.close();
      await server.shutdown({ deadlineMs: 50 });
    },
  };
}

/** Asserts `promise` rejects with a StreamwireError of `code`; returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: number,
): Promise<StreamwireError> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof StreamwireError)) {
      throw new Error(`Expected a StreamwireError ${code}, got ${error}`);
    }
    if (error.code !== code) {
      throw new Error(
        `Expected code ${code}, got ${error.code} (${error.codeName}): ${error.message}`,
      );
    }
    return error;
  }
  throw new Error(`Expected a rejection with code ${code}, got success`);
}

/** A hand-driven client connected to `server` over `kind`, handshaken with json. */
export async function rawClient(
  kind: Kind,
  server: RpcServer,
  addr: string | undefined,
  hello: Record<string, unknown> = {},
): Promise<{ peer: RawPeer; ack: Record<string, unknown> }> {
  let peer: RawPeer;
  if (kind === "tcp") {
    peer = await RawPeer.tcp(addr!);
  } else {
    const [a, b] = memoryPair();
    server.accept(a);
    peer = new RawPeer(b, () => b.close());
  }
  await peer.send(frame(
    T.HELLO,
    0,
    json({
      version: 1,
      codecs: ["json"],
      compression: [],
      heartbeatMs: 30000,
      maxFrame: 16777216,
      window: 64,
      ...hello,
    }),
  ));
  const ack = await peer.next();
  if (ack.type !== T.HELLO_ACK) throw new Error(`Expected HELLO_ACK, got type ${ack.type}`);
  return { peer, ack: JSON.parse(new TextDecoder().decode(ack.body)) };
}

/** A server played by hand: `dial` for the client, `accepted()` for the raw side. */
export function fakeServer(kind: Kind): {
  dial: () => Promise<Connection>;
  accepted: () => Promise<RawPeer>;
  close(): void;
} {
  if (kind === "tcp") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    return {
      dial: () => tcpDial(`tcp://127.0.0.1:${port}`),
      accepted: async () => {
        const conn = await listener.accept();
        return new RawPeer(conn, () => {
          try {
            conn.close();
          } catch { /* closed */ }
        });
      },
      close: () => listener.close(),
    };
  }
  const peers: RawPeer[] = [];
  const waiters: ((p: RawPeer) => void)[] = [];
  return {
    dial: () => {
      const [a, b] = memoryPair();
      const peer = new RawPeer(a, () => a.close());
      const w = waiters.shift();
      if (w) w(peer);
      else peers.push(peer);
      return Promise.resolve(b);
    },
    accepted: () => {
      const p = peers.shift();
      return p ? Promise.resolve(p) : new Promise((resolve) => waiters.push(resolve));
    },
    close: () => {},
  };
}

/** Answers a client's HELLO by hand with these settings. */
export async function ackHello(
  peer: RawPeer,
  settings: Record<string, unknown> = {},
): Promise<void> {
  const hello = await peer.next();
  if (hello.type !== T.HELLO) throw new Error(`Expected HELLO, got type ${hello.type}`);
  await peer.send(frame(
    T.HELLO_ACK,
    0,
    json({
      version: 1,
      session: "fake",
      codec: "json",
      compression: [],
      heartbeatMs: 30000,
      maxFrame: 16777216,
      window: 64,
      ...settings,
    }),
  ));
}
