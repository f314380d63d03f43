import assert from "node:assert/strict";
import { connect } from "../../rpc/client.ts";

const ENTRY = new URL("../../cli/serve.ts", import.meta.url).pathname;

Deno.test("serve prints its address, serves the demo and drains on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ENTRY, "--port", "0", "--token", "s3cret", "--admin-port", "0"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) break;
    output += value;
  }
  const addr = output.match(/listening on (tcp:\/\/\S+)/)?.[1];
  assert.ok(addr, `no address in ${JSON.stringify(output)}`);
  assert.match(addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  await assert.rejects(
    connect(addr, { token: "wrong", reconnect: false }),
    { codeName: "unauthenticated" },
  );
  const client = await connect(addr, { token: "s3cret" });
  assert.equal(await client.call("add", [2, 40]), 42);
  await client.close();
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    output += value;
  }
  const status = await child.status;
  assert.equal(status.code, 0);
  assert.match(output, /streamwire stopped/);
});

Deno.test("serve exits with status 2 and a message on a bad flag", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ENTRY, "--port", "not-a-port"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /not-a-port/);
});
