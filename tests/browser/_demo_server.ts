// Demo servers for the browser tests. startDemoServer runs the demo server
// itself (runServer: TCP, WebSocket, and the admin port with the demo page);
// startZlibServer is a server that prefers zlib, with the page and the
// WebSocket on one port.

import { demoAssets } from "../../browser/demo_assets.ts";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { webSocketHandler } from "../../transport/websocket_listen.ts";

/** A running demo server. */
export interface DemoServer {
  /** The demo page, `http://127.0.0.1:<port>/demo`. */
  url: string;
  /** Ports to start it again on: TCP, WebSocket, admin (the page). */
  ports: { port: number; wsPort: number; adminPort: number };
  /** GOAWAY, drain, and release the ports. */
  stop(): Promise<void>;
}

const portOf = (addr: string) => Number(new URL(addr).port);

/**
 * Starts the demo server as `deno task serve --ws-port …` does.
 *
 * @param ports Ports to listen on; 0 or none picks free ones.
 * @returns The running server.
 */
export function startDemoServer(
  ports: { port: number; wsPort: number; adminPort: number } = {
    port: 0,
    wsPort: 0,
    adminPort: 0,
  },
): DemoServer {
  const running = runServer({ ...DEFAULT_CONFIG, ...ports });
  const adminPort = portOf(running.adminAddr!);
  return {
    url: `${running.adminAddr}/demo`,
    ports: { port: portOf(running.addr), wsPort: portOf(running.wsAddr!), adminPort },
    stop: () => running.shutdown(),
  };
}

/** One bundle for every zlib server of a test process. */
let zlibAssets: ReturnType<typeof demoAssets> | undefined;

/**
 * Starts the demo methods on a server whose compression preference is
 * zlib only, with the page and its WebSocket on one HTTP port.
 *
 * @returns The running server.
 */
export function startZlibServer(): DemoServer {
  const server: RpcServer = new RpcServer({
    methods: demoMethods(() => server),
    compression: ["zlib"],
  });
  const ws = webSocketHandler({ path: "/" });
  const serving = server.serve(ws.listener);
  const assets = zlibAssets ??= demoAssets();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) =>
      request.headers.get("upgrade")?.toLowerCase() === "websocket"
        ? ws.handle(request, info)
        : assets(request) ?? new Response("Not found\n", { status: 404 }),
  );
  const port = http.addr.port;
  return {
    url: `http://127.0.0.1:${port}/demo`,
    ports: { port, wsPort: port, adminPort: port },
    async stop() {
      await server.shutdown({ deadlineMs: 1000 });
      ws.listener.close();
      await serving;
      await http.shutdown();
    },
  };
}
