// QUIC needs Deno's unstable network API (--unstable-net), which the suite
// does not turn on. So this file checks the error without it, in process,
// and runs the QUIC tests proper (_quic_cases.ts) in a child that has it.

import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { StreamwireError } from "../../codec/error.ts";
import { connect } from "../../rpc/client.ts";
import { dial } from "../../transport/dial.ts";
import { listen } from "../../transport/listen.ts";
import { dialQuic, isQuic, listenQuic } from "../../transport/quic.ts";
import { hasQuic } from "../../transport/_quic_api.ts";

function unimplemented(error: unknown): boolean {
  assert.ok(error instanceof StreamwireError);
  assert.equal(error.code, Status.UNIMPLEMENTED);
  assert.match(error.message, /run with '--unstable-net'/);
  return true;
}

Deno.test({
  name: "quic:// without --unstable-net fails with unimplemented, naming the flag",
  ignore: hasQuic(),
  async fn() {
    assert.throws(() => listen("quic://127.0.0.1:0"), unimplemented);
    assert.throws(
      () => listen({ transport: "quic", port: 0, certFile: "c.pem", keyFile: "k.pem" }),
      unimplemented,
    );
    assert.throws(() => listenQuic({ port: 0 }), unimplemented);
    await assert.rejects(dial("quic://127.0.0.1:9443"), unimplemented);
    await assert.rejects(dial({ transport: "quic", port: 9443 }), unimplemented);
    await assert.rejects(dialQuic(new URL("quic://localhost:9443")), unimplemented);
    await assert.rejects(connect("quic://127.0.0.1:9443", { reconnect: false }), unimplemented);
  },
});

Deno.test("isQuic tells quic:// URLs and transport 'quic' from the rest", () => {
  assert.equal(isQuic("quic://127.0.0.1:9443"), true);
  assert.equal(isQuic("QUIC://[::1]:9443"), true);
  assert.equal(isQuic(new URL("quic://localhost")), true);
  assert.equal(isQuic({ transport: "quic" }), true);
  assert.equal(isQuic("tcp://127.0.0.1:9000"), false);
  assert.equal(isQuic({ transport: "tls" }), false);
  assert.equal(isQuic({}), false);
  assert.equal(isQuic(null), false);
});

Deno.test("QUIC transport tests pass in a child with --unstable-net", async () => {
  const cases = new URL("./_quic_cases.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--unstable-net", "-A", "--no-check", cases],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${out}\n${new TextDecoder().decode(stderr)}`);
  assert.match(out, /ok \| \d+ passed \| 0 failed/);
  // The throughput figure, for the record: measured, not asserted.
  const figures = out.match(/QUIC_FIGURES (\{.*\})/);
  if (figures) console.log(`unary calls/s, 128 in flight: ${figures[1]}`);
});
