// A live server for the command-line tests: the demo methods plus a few
// that report what the command did on the wire.

import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer, type RpcServerOptions } from "../../rpc/server.ts";

/** A server on 127.0.0.1 and what it observed. */
export interface TestServer {
  server: RpcServer;
  addr: string;
  /** Resolves with the reason name of the first `forever` stream that ended. */
  foreverEnded: Promise<string>;
  close(): Promise<void>;
}

/** Starts the demo methods plus `forever`, `nothing`, `headers`, `double`, `poke`. */
export function startServer(options: Partial<RpcServerOptions> = {}): TestServer {
  const ended = Promise.withResolvers<string>();
  const server: RpcServer = new RpcServer({
    ...options,
    methods: demoMethods(() => server)
      // Runs until the caller goes; tells how it ended (CANCEL: cancelled).
      .serverStream("forever", async function* (_params, ctx) {
        try {
          for (let i = 0;; i++) {
            if (ctx.signal.aborted) break;
            yield i;
            if (i % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
          }
        } finally {
          ended.resolve(ctx.signal.reason?.codeName ?? "none");
        }
      })
      .unary("nothing", () => undefined)
      .unary("headers", (_params, ctx) => Object.fromEntries(ctx.metadata))
      .bidi("double", async function* (input) {
        for await (const value of input) yield (value as number) * 2;
      })
      .unary("poke", (params, ctx) => {
        // Answers, then pushes a NOTIFY to the caller.
        setTimeout(() => server.peer(ctx.session)?.notify("poked", params), 0);
        return "ok";
      }),
  });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  return { server, addr, foreverEnded: ended.promise, close: () => server.shutdown() };
}
