import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { Methods, RpcServer } from "../../rpc/mod.ts";
import { Lines, run, spawn } from "./_run.ts";

interface Summary {
  calls: number;
  errorCount: number;
  errors: Record<string, { count: number; message: string }>;
  callsPerSecond: number;
  seconds: number;
  latencyMs: Record<"min" | "mean" | "p50" | "p90" | "p99" | "p999" | "max", number>;
  interrupted: boolean;
}

function assertOrdered(l: Summary["latencyMs"]): void {
  const ordered = [l.min, l.p50, l.p90, l.p99, l.p999, l.max];
  assert.deepEqual([...ordered].sort((a, b) => a - b), ordered, JSON.stringify(l));
}

/** The demo server, without its admin API. */
function demoServer() {
  return runServer({ ...DEFAULT_CONFIG, port: 0, admin: false });
}

/** A port nothing listens on: bound, then closed. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test("bench --count prints calls, ordered percentiles and no errors", async () => {
  const running = demoServer();
  try {
    const out = await run(["bench", running.addr, "--count", "2000", "--in-flight", "16"]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, "");
    const row = (name: string) =>
      out.stdout.split("\n").find((l) => l.startsWith(name.padEnd(12)))?.slice(12).trim();
    assert.match(row("target")!, /^tcp:\/\/127\.0\.0\.1:\d+ echo \(msgpack, 64-byte params\)$/);
    assert.equal(row("load"), "1 connection x 16 in flight");
    assert.match(row("calls")!, /^2000 in \d+\.\d{3} s, 0 failed$/);
    assert.match(row("calls/s")!, /^\d+$/);
    assert.equal(row("errors"), "none");
    const latency = row("latency ms")!.match(
      /^p50 ([\d.]+) {2}p90 ([\d.]+) {2}p99 ([\d.]+) {2}max ([\d.]+) {2}mean ([\d.]+)$/,
    );
    assert.ok(latency, out.stdout);
    const [p50, p90, p99, max] = latency.slice(1, 5).map(Number);
    assert.ok(p50 <= p90 && p90 <= p99 && p99 <= max, out.stdout);
  } finally {
    await running.shutdown();
  }
});

Deno.test("bench --json prints one object; every codec and connection count is measured", async () => {
  const running = demoServer();
  try {
    for (
      const args of [
        ["--codec", "msgpack"],
        ["--codec", "json", "--payload-size", "10", "-c", "3", "--in-flight", "4"],
        ["--codec", "cbor", "--payload-size", "0", "--warmup", "10ms"],
      ]
    ) {
      const out = await run(["bench", running.addr, "-n", "500", "--json", ...args]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.trim().split("\n").length, 1, out.stdout);
      const s: Summary = JSON.parse(out.stdout);
      assert.equal(s.calls, 500, out.stdout);
      assert.equal(s.errorCount, 0, out.stdout);
      assert.deepEqual(s.errors, {});
      assert.equal(s.interrupted, false);
      assert.ok(s.callsPerSecond > 0 && s.seconds > 0, out.stdout);
      assert.ok(s.latencyMs.min > 0, out.stdout);
      assertOrdered(s.latencyMs);
    }
  } finally {
    await running.shutdown();
  }
});

Deno.test("bench reports failed calls by status code and still exits 0", async () => {
  const running = demoServer();
  try {
    const out = await run(["bench", running.addr, "-n", "300", "--method", "nope", "--json"]);
    assert.equal(out.code, 0, out.stderr);
    const s: Summary = JSON.parse(out.stdout);
    assert.equal(s.calls, 300);
    assert.equal(s.errorCount, 300);
    assert.deepEqual(s.errors, {
      unimplemented: { count: 300, message: "Unknown method 'nope'" },
    });
    const text = await run([
      "bench",
      running.addr,
      "-n",
      "10",
      "--method",
      "add",
      "--params",
      "[1]",
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^errors {7}10 invalid_argument: add takes \[a, b\], got '\[1\]'$/m);
    const params = await run([
      "bench",
      running.addr,
      "-n",
      "10",
      "--method",
      "add",
      "--params",
      "[2,40]",
    ]);
    assert.match(params.stdout, /^calls {8}10 in [\d.]+ s, 0 failed$/m);
    assert.match(params.stdout, /^target .* add \(msgpack, params \[2,40\]\)$/m);
  } finally {
    await running.shutdown();
  }
});

Deno.test("bench exits 78 when the connection is refused and 80 for a bad token", async () => {
  const refused = await run(["bench", `tcp://127.0.0.1:${closedPort()}`, "-n", "10"]);
  assert.equal(refused.code, 78, refused.stderr);
  assert.match(refused.stderr, /^streamwire: unavailable: .*Connection refused/);
  assert.equal(refused.stdout, "");
  const json = await run(["bench", `tcp://127.0.0.1:${closedPort()}`, "-n", "10", "--json"]);
  assert.equal(JSON.parse(json.stderr).error.exit, 78);

  const running = runServer({ ...DEFAULT_CONFIG, port: 0, admin: false, token: "s3cret" });
  try {
    const bad = await run(["bench", running.addr, "-n", "10", "--token", "wrong"]);
    assert.equal(bad.code, 80, bad.stderr);
    const good = await run(["bench", running.addr, "-n", "10", "--token", "s3cret", "--json"]);
    assert.equal(JSON.parse(good.stdout).calls, 10);
    // As for call and batch, the token may come from the environment.
    const env = await run(["bench", running.addr, "-n", "10", "--json"], {
      env: { STREAMWIRE_TOKEN: "s3cret" },
    });
    assert.equal(JSON.parse(env.stdout).calls, 10, env.stderr);
  } finally {
    await running.shutdown();
  }
});

Deno.test("bench exits 2 for bad flags, before connecting", async () => {
  const url = `tcp://127.0.0.1:${closedPort()}`;
  for (
    const [args, pattern] of [
      [[url, "--bogus"], /Unknown option '--bogus'/],
      [[url, "--count", "0"], /--count must be an integer within 1\./],
      [[url, "--count", "5", "--duration", "1s"], /--count and --duration cannot be used together/],
      [[url, "--duration", "soon"], /--duration must be a duration such as 500ms/],
      [[url, "--codec", "xml"], /--codec must be one of msgpack, cbor, json, got 'xml'/],
      [[url, "--in-flight", "0"], /--in-flight must be an integer within 1\.\.65536/],
      [[url, "--params", "{"], /--params is not JSON/],
      [[url, "--params", "1", "--payload-size", "3"], /cannot be used together/],
      [["http://127.0.0.1:1"], /unsupported scheme 'http', expected tcp, tls or unix/],
      [[], /Missing arguments: streamwire bench <url>/],
      [[url, "extra"], /Unexpected argument 'extra'/],
    ] as const
  ) {
    const out = await run(["bench", ...args]);
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, /^streamwire: invalid_argument: /);
    assert.match(out.stderr, pattern);
  }
});

Deno.test("bench --help shows its options and an example", async () => {
  const out = await run(["bench", "--help"]);
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^Usage: streamwire bench <url> \[options\]/);
  assert.match(out.stdout, /--in-flight <n>/);
  assert.match(out.stdout, /Examples:\n {2}streamwire bench tcp:\/\//);
});

Deno.test("bench stops on SIGINT and prints what ran", async () => {
  const first = Promise.withResolvers<void>();
  const server = new RpcServer({
    methods: new Methods().unary("echo", (params) => {
      first.resolve();
      return params;
    }),
  });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const child = spawn(["bench", addr, "--duration", "10m", "--json"]);
    await first.promise;
    child.kill("SIGINT");
    const out = new Lines(child.stdout);
    const s: Summary = JSON.parse((await out.next())!);
    assert.equal(s.interrupted, true);
    assert.equal(s.errorCount, 0);
    // The signal may come before the first answer: then nothing was measured.
    assertOrdered(s.latencyMs);
    assert.equal((await child.status).code, 130);
    await child.stderr.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("bench ends when every connection is lost and reports what ran", async () => {
  const first = Promise.withResolvers<string>();
  const server = new RpcServer({
    methods: new Methods().unary("echo", (params, ctx) => {
      first.resolve(ctx.session.id);
      return params;
    }),
  });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const child = spawn(["bench", addr, "--duration", "10m", "--json"]);
    server.transport.kick(await first.promise, "maintenance");
    const s: Summary & { lostConnections: number } = JSON.parse(
      (await new Lines(child.stdout).next())!,
    );
    assert.equal(s.lostConnections, 1);
    assert.equal(s.interrupted, false);
    for (const name of Object.keys(s.errors)) assert.match(name, /^(unavailable|aborted)$/);
    assert.equal((await child.status).code, 0);
    await child.stderr.cancel();
  } finally {
    await server.shutdown();
  }
});
