/**
 * Unary echo with client and server in separate processes (one core each on
 * this 2-core machine), against the raw framed echo split the same way:
 * `deno run -A tests/rpc/split_bench.ts`. The in-process figures are in
 * tests/rpc/rpc_bench.ts; both are in docs/PERFORMANCE.md.
 *
 * @module
 */

import { connect } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import { fmt, measure, PARAMS, PIPELINE, RawClient, rawEcho } from "./rpc_bench.ts";

/** Child side: serves `kind` on a free port, prints the port, runs until stdin closes. */
async function serve(kind: string): Promise<void> {
  let stop: () => Promise<void>;
  let port: number;
  if (kind === "raw") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = listener.addr.port;
    (async () => {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        rawEcho(conn);
      }
    })().catch(() => {});
    stop = () => Promise.resolve(listener.close());
  } else {
    const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
    port = Number(new URL(server.listen({ port: 0 })).port);
    stop = () => server.shutdown({ deadlineMs: 0 });
  }
  console.log(port);
  for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
  await stop();
}

async function withChild<T>(kind: string, run: (port: number) => Promise<T>): Promise<T> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--serve", kind],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  try {
    return await run(Number(text.trim()));
  } finally {
    await child.stdin.close();
    reader.cancel().catch(() => {});
    await child.status;
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--serve") {
    await serve(Deno.args[1]);
  } else {
    const raw = await withChild("raw", async (port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      const client = new RawClient(conn, PARAMS);
      const pingPong = await measure(1, () => client.pingPong());
      await client.pipelined(PIPELINE, 300);
      const pipelined = await client.pipelined(PIPELINE, 1000);
      client.close();
      return { pingPong, pipelined };
    });
    const rpc = await withChild("rpc", async (port) => {
      const client = await connect(`tcp://127.0.0.1:${port}`);
      const pingPong = await measure(1, () => client.call("echo", PARAMS));
      const pipelined = await measure(PIPELINE, () => client.call("echo", PARAMS));
      await client.close();
      return { pingPong, pipelined };
    });
    const line = (what: string, figure: number, ratio: string) =>
      console.log(`| ${what} | ${fmt(figure)} | ${ratio} |`);
    console.log("| what (separate processes) | per second | ratio |");
    console.log("| --- | --- | --- |");
    line("raw framed echo, 1 in flight", raw.pingPong, "baseline");
    line("raw framed echo, 128 in flight", raw.pipelined, "baseline");
    line(
      "streamwire echo, 1 in flight",
      rpc.pingPong,
      `latency x${(raw.pingPong / rpc.pingPong).toFixed(2)} raw`,
    );
    line(
      "streamwire echo, 128 in flight",
      rpc.pipelined,
      `${((rpc.pipelined / raw.pipelined) * 100).toFixed(0)}% of raw`,
    );
  }
}
