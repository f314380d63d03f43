// JSON-RPC 2.0 over WebSocket, the comparison point of the unary benches:
// Deno.serve with Deno.upgradeWebSocket, method `echo` returns its params.
// Run by the benches: `deno run -A tests/bench/_ws_jsonrpc_server.ts`.

import { announce } from "./_child.ts";

type Request = { jsonrpc?: string; id?: number | string | null; method?: string; params?: unknown };

function answer(request: Request): object | undefined {
  if (request?.jsonrpc !== "2.0" || typeof request.method !== "string") {
    return {
      jsonrpc: "2.0",
      id: request?.id ?? null,
      error: { code: -32600, message: "Invalid Request" },
    };
  }
  // JSON-RPC 2.0 section 4.1: a request without an id is a notification, never answered.
  if (request.id === undefined) return undefined;
  if (request.method !== "echo") {
    return { jsonrpc: "2.0", id: request.id, error: { code: -32601, message: "Method not found" } };
  }
  return { jsonrpc: "2.0", id: request.id, result: request.params };
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => announce(port),
}, (req) => {
  if (req.headers.get("upgrade") !== "websocket") {
    return new Response("WebSocket only", { status: 426 });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (event) => {
    let message: Request | Request[];
    try {
      message = JSON.parse(event.data);
    } catch {
      socket.send(
        JSON.stringify({
          jsonrpc: "2.0",
          id: null,
          error: { code: -32700, message: "Parse error" },
        }),
      );
      return;
    }
    // Section 6: a batch is answered by an array of the non-notification answers.
    const out = Array.isArray(message) ? message.map(answer).filter(Boolean) : answer(message);
    if (out !== undefined && !(Array.isArray(out) && out.length === 0)) {
      socket.send(JSON.stringify(out));
    }
  };
  return response;
});
