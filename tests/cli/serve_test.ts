import assert from "node:assert/strict";
import { connect } from "../../rpc/client.ts";
import { Lines, run, spawn } from "./_run.ts";

Deno.test("serve prints its addresses, serves the demo and drains on SIGTERM", async () => {
  const child = spawn(["serve", "--port", "0", "--token", "s3cret", "--admin-port", "0"]);
  const out = new Lines(child.stdout);
  const addr = (await out.until((l) => l.startsWith("streamwire listening on ")))
    .match(/listening on (tcp:\/\/\S+) \(token required\)$/)?.[1];
  assert.ok(addr, out.seen.join("\n"));
  assert.match(addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const admin = (await out.until((l) => l.startsWith("admin API on "))).slice(13);
  assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const health = await fetch(`${admin}/health`);
  assert.equal((await health.json()).status, "ok");
  await assert.rejects(
    connect(addr, { token: "wrong", reconnect: false }),
    { codeName: "unauthenticated" },
  );
  const client = await connect(addr, { token: "s3cret" });
  assert.equal(await client.call("add", [2, 40]), 42);
  await client.close();
  child.kill("SIGTERM");
  await out.until((l) => l === "streamwire stopped");
  assert.equal(await out.next(), undefined);
  const status = await child.status;
  assert.equal(status.code, 0);
  // Standard error holds the log: JSON lines, none of them an error.
  for (const line of (await new Response(child.stderr).text()).trimEnd().split("\n")) {
    assert.notEqual(JSON.parse(line).level, "error", line);
  }
});

Deno.test("serve --ws-port serves the demo over WebSocket too, in the same rooms", async () => {
  const child = spawn([
    "serve",
    "--port",
    "0",
    "--no-admin",
    "--ws-port",
    "0",
    "--ws-path",
    "/rpc",
  ]);
  const out = new Lines(child.stdout);
  const addr = (await out.until((l) => l.startsWith("streamwire listening on "))).slice(24);
  const ws = (await out.until((l) => l.startsWith("websocket on "))).slice(13);
  assert.match(ws, /^ws:\/\/127\.0\.0\.1:\d+\/rpc$/);
  const viaWs = await connect(ws, { reconnect: false });
  const viaTcp = await connect(addr, { reconnect: false });
  assert.equal(viaWs.session?.conn.transport, "ws");
  for (const client of [viaWs, viaTcp]) {
    assert.equal(await client.call("chat.join", { room: "lobby" }), true);
  }
  assert.equal(await viaWs.call("chat.say", { room: "lobby", text: "hi" }), 2);
  await Promise.all([viaWs.close(), viaTcp.close()]);
  child.kill("SIGTERM");
  await out.until((l) => l === "streamwire stopped");
  assert.equal((await child.status).code, 0);
  await child.stderr.cancel();
});

Deno.test("serve --no-admin runs no admin API", async () => {
  const child = spawn(["serve", "--port", "0", "--no-admin"]);
  const out = new Lines(child.stdout);
  await out.until((l) => l.startsWith("streamwire listening on "));
  child.kill("SIGINT");
  await out.until((l) => l === "streamwire stopped");
  assert.ok(!out.seen.some((l) => l.startsWith("admin API")), out.seen.join("\n"));
  assert.equal((await child.status).code, 0);
  await child.stderr.cancel();
});

Deno.test("serve exits 2 with one line for a bad flag or a value every client would fail on", async () => {
  for (
    const [args, pattern] of [
      [["--port", "not-a-port"], /'port' must be an integer within 0\.\.65535, got 'not-a-port'/],
      [["--window", "0"], /'window' must be an integer within 1\./],
      [["--max-frame", "1024"], /'max-frame' must be an integer within 4096\./],
      [["--bogus"], /Unknown option '--bogus'/],
      [["extra"], /Unexpected argument 'extra'/],
    ] as const
  ) {
    const out = await run(["serve", ...args]);
    assert.equal(out.code, 2, out.stderr);
    assert.equal(out.stdout, "");
    assert.match(out.stderr, /^streamwire: invalid_argument: .+\n$/);
    assert.match(out.stderr, pattern);
  }
});

Deno.test("serve exits 2 with one line when it cannot listen", async () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(busy.addr.port);
  const cases: [string[], RegExp][] = [
    [
      ["--port", port, "--no-admin"],
      /^streamwire: already_exists: Cannot listen on .*:\d+'.*in use/,
    ],
    [
      ["--port", "0", "--admin-port", port],
      /^streamwire: already_exists: Cannot listen on 'http:\/\/127\.0\.0\.1:\d+' \(admin API\).*in use/,
    ],
    [["--host", "no-such-host.invalid", "--no-admin"], /^streamwire: unavailable: Cannot listen/],
    [
      ["--port", "0", "--no-admin", "--cert-file", "/nonexistent/c.pem", "--key-file", "k.pem"],
      /^streamwire: invalid_argument: Cannot read certFile '\/nonexistent\/c\.pem'/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const out = await run(["serve", ...args]);
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assert.equal(out.stderr.split("\n").length, 2, out.stderr); // one line
    assert.match(out.stderr, pattern);
  }
});

Deno.test("serve --help prints every setting and an example", async () => {
  const out = await run(["serve", "--help"]);
  assert.equal(out.code, 0);
  for (const flag of ["--max-connections", "--admin-port", "--no-admin", "--window", "Example:"]) {
    assert.ok(out.stdout.includes(flag), flag);
  }
});
