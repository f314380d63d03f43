// A streamwire RpcServer with the demo methods (`echo`, `count`, ...) on
// 127.0.0.1, for the benches: `deno run -A tests/bench/_rpc_server.ts`.

import { RpcServer } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { announce } from "./_child.ts";

const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
announce(Number(new URL(server.listen({ hostname: "127.0.0.1", port: 0 })).port));
