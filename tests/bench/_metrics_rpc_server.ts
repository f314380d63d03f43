// A streamwire RpcServer with the demo methods on 127.0.0.1, for
// metrics_cost.ts: `deno run -A tests/bench/_metrics_rpc_server.ts <on|off>`,
// `on` being the defaults (call metrics kept) and `off` the same server with
// `metrics: false`. No tracer provider is registered in either.

import { RpcServer } from "../../rpc/mod.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { announce } from "./_child.ts";

const mode = Deno.args[0];
if (mode !== "on" && mode !== "off") throw new Error(`Mode must be 'on' or 'off', got '${mode}'`);
const server: RpcServer = new RpcServer({
  methods: demoMethods(() => server),
  metrics: mode === "on",
});
announce(Number(new URL(server.listen({ hostname: "127.0.0.1", port: 0 })).port));
