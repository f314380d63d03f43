// A streamwire RpcServer with the demo methods on a WebSocket listener at
// ws://127.0.0.1:<port>/, for the benches: `deno run -A tests/bench/_ws_rpc_server.ts`.

import { RpcServer } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { listenWebSocket } from "../../transport/mod.ts";
import { announce } from "./_child.ts";

const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
const listener = listenWebSocket("ws://127.0.0.1:0/");
server.serve(listener);
announce(Number(new URL(listener.addr).port));
