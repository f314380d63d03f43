import assert from "node:assert/strict";
import { selfSigned } from "../transport/_tls.ts";
import { Lines, run, spawn } from "./_run.ts";
import { startServer } from "./_server.ts";

Deno.test("call prints a unary result as one JSON line, and null for no value", async () => {
  const s = startServer();
  try {
    for (const codec of ["msgpack", "cbor", "json"]) {
      const add = await run(["call", s.addr, "add", "[2,40]", "--codec", codec]);
      assert.deepEqual([add.code, add.stdout, add.stderr], [0, "42\n", ""]);
    }
    const echo = await run(["call", s.addr, "echo", '{"a":[1,"x",null],"b":true}']);
    assert.equal(echo.stdout, '{"a":[1,"x",null],"b":true}\n');
    const nothing = await run(["call", s.addr, "nothing"]);
    assert.deepEqual([nothing.code, nothing.stdout], [0, "null\n"]);
    const stdin = await run(["call", s.addr, "add", "-d", "@"], { stdin: "[5, 6]\n" });
    assert.deepEqual([stdin.code, stdin.stdout], [0, "11\n"]);
    const data = await run(["call", s.addr, "add", "--data", "[1,1]"]);
    assert.equal(data.stdout, "2\n");
    const headers = await run(["call", s.addr, "headers", "-H", "x-user=ann", "-H", "X-Trace=a=b"]);
    assert.equal(headers.stdout, '{"x-user":"ann","x-trace":"a=b"}\n');
  } finally {
    await s.close();
  }
});

Deno.test("call prints a server stream one line per item", async () => {
  const s = startServer();
  try {
    const count = await run(["call", s.addr, "count", "5"]);
    assert.deepEqual([count.code, count.stdout, count.stderr], [0, "1\n2\n3\n4\n5\n", ""]);
    const many = await run(["call", s.addr, "count", "100000"]);
    assert.equal(many.code, 0);
    const lines = many.stdout.split("\n");
    assert.equal(lines.length, 100_001);
    assert.equal(lines[99_999], "100000");
  } finally {
    await s.close();
  }
});

Deno.test("call with stdout closed early (| head) exits 0 at once and the server sees CANCEL", async () => {
  const s = startServer();
  try {
    const child = spawn(["call", s.addr, "forever"]);
    await child.stdin.close();
    const out = new Lines(child.stdout);
    assert.deepEqual([await out.next(), await out.next(), await out.next()], ["0", "1", "2"]);
    await out.cancel();
    const status = await child.status;
    assert.equal(status.code, 0);
    assert.equal(await new Response(child.stderr).text(), "");
    assert.equal(await s.foreverEnded, "cancelled"); // a CANCEL, not a lost connection
  } finally {
    await s.close();
  }
});

Deno.test("call feeds client-streaming and bidirectional methods from NDJSON on stdin", async () => {
  const s = startServer();
  try {
    const sum = await run(["call", s.addr, "sum"], { stdin: "1\n2\n\n3\n" });
    assert.deepEqual([sum.code, sum.stdout, sum.stderr], [0, "6\n", ""]);
    const empty = await run(["call", s.addr, "sum"], { stdin: "" });
    assert.equal(empty.stdout, "0\n");
    const lines = Array.from({ length: 3000 }, (_, i) => String(i)).join("\n");
    const big = await run(["call", s.addr, "sum"], { stdin: lines });
    assert.equal(big.stdout, `${(2999 * 3000) / 2}\n`);
    const double = await run(["call", s.addr, "double"], { stdin: "1\n2\n3\n" });
    assert.deepEqual([double.code, double.stdout], [0, "2\n4\n6\n"]);
    const bad = await run(["call", s.addr, "sum"], { stdin: "1\n{oops\n3\n" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^streamwire: invalid_argument: stdin line 2: not JSON/);
    const kind = await run(["call", s.addr, "sum", "--kind", "unary"]);
    assert.equal(kind.code, 76);
    assert.match(kind.stderr, /Method 'sum' is a client_stream method: open it with OPEN/);
  } finally {
    await s.close();
  }
});

Deno.test("call exits 64 + the status the server answers with", async () => {
  const s = startServer({ token: "s3cret" });
  try {
    const t = ["--token", "s3cret"];
    const cases: [string[], number, RegExp][] = [
      [["nope", ...t], 76, /^streamwire: unimplemented: Unknown method 'nope'\n$/],
      [["sleep", "5000", "--timeout", "50", ...t], 68, /^streamwire: deadline_exceeded: /],
      [["add", '"x"', ...t], 67, /^streamwire: invalid_argument: add takes \[a, b\]/],
      [["add", "[1,2]", "--token", "wrong"], 80, /^streamwire: unauthenticated: /],
      [["add", "[1,2]"], 80, /^streamwire: unauthenticated: /],
    ];
    for (const [args, code, pattern] of cases) {
      const out = await run(["call", s.addr, ...args]);
      assert.equal(out.code, code, `${args.join(" ")}: ${out.stderr}`);
      assert.equal(out.stdout, "");
      assert.match(out.stderr, pattern);
    }
    const env = await run(["call", s.addr, "add", "[1,2]"], {
      env: { STREAMWIRE_TOKEN: "s3cret" },
    });
    assert.equal(env.stdout, "3\n");
    const json = await run(["call", s.addr, "nope", ...t, "--json"]);
    assert.deepEqual(JSON.parse(json.stderr), {
      error: { code: "unimplemented", status: 12, exit: 76, message: "Unknown method 'nope'" },
    });
  } finally {
    await s.close();
  }
  // Nothing listens there any more: a refused connection is unavailable.
  const refused = await run(["call", s.addr, "add", "[1,2]"]);
  assert.equal(refused.code, 78);
  assert.match(refused.stderr, /^streamwire: unavailable: .*refused/);
});

Deno.test("call exits 2 on usage errors without connecting", async () => {
  const cases: [string[], RegExp][] = [
    [["call"], /Missing arguments/],
    [["call", "tcp://127.0.0.1:1"], /Missing <method>/],
    [["call", "tcp://127.0.0.1:1", "add", "[1,"], /params is not JSON/],
    [["call", "tcp://127.0.0.1:1", "add", "1", "2"], /Unexpected argument '2'/],
    [["call", "tcp://127.0.0.1:1", "add", "--timout", "5"], /did you mean '--timeout'/],
    [["call", "tcp://127.0.0.1:1", "add", "--timeout", "0"], /--timeout must be an integer/],
    [["call", "tcp://127.0.0.1:1", "add", "-H", "novalue"], /--header takes key=value/],
    [["call", "tcp://127.0.0.1:1", "add", "--codec", "xml"], /--codec must be one of/],
    [["call", "tcp://127.0.0.1:1", "add", "--kind", "river"], /--kind must be one of/],
    [["call", "http://127.0.0.1:1", "add"], /unsupported scheme 'http'/],
    [["call", "tcp://127.0.0.1:1", "add", "[1]", "-d", "[2]"], /Params given twice/],
    [["call", "tcp://127.0.0.1:1", "add", "--list"], /--list takes no <method>/],
    [["call", "tcp://127.0.0.1:1", "add", "--ca-file", "x.pem"], /--ca-file needs a tls:/],
    [["cal"], /Unknown command 'cal'; did you mean 'call'\?/],
  ];
  for (const [args, pattern] of cases) {
    const out = await run(args);
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, /^streamwire: invalid_argument: [^\n]+\n$/);
    assert.match(out.stderr, pattern);
  }
});

Deno.test("call --list prints the methods and their kinds from the server's reflection", async () => {
  const s = startServer();
  try {
    const out = await run(["call", s.addr, "--list"]);
    assert.equal(out.code, 0, out.stderr);
    const rows = out.stdout.trimEnd().split("\n").map((l) => l.split(/\s+/).slice(0, 2));
    assert.deepEqual(rows.find(([name]) => name === "count"), ["count", "server_stream"]);
    assert.deepEqual(rows.find(([name]) => name === "sum"), ["sum", "client_stream"]);
    assert.deepEqual(rows.find(([name]) => name === "double"), ["double", "bidi"]);
    const json = await run(["call", s.addr, "--list", "--json"]);
    const echo = JSON.parse(json.stdout)[0];
    assert.deepEqual([echo.name, echo.kind], ["echo", "unary"]);
  } finally {
    await s.close();
  }
  const silent = startServer({ reflection: false });
  try {
    const out = await run(["call", silent.addr, "--list"]);
    assert.equal(out.code, 76);
    assert.match(out.stderr, /does not list its methods/);
    // Without reflection a method is called as unary unless --kind says otherwise.
    const count = await run(["call", silent.addr, "count", "2", "--kind", "server_stream"]);
    assert.equal(count.stdout, "1\n2\n");
  } finally {
    await silent.close();
  }
});

Deno.test("call --follow prints the room's broadcasts and NOTIFYs until interrupted", async () => {
  const s = startServer();
  try {
    const child = spawn(["call", s.addr, "chat.join", '{"room":"lobby"}', "--follow"]);
    await child.stdin.close();
    const out = new Lines(child.stdout);
    assert.equal(await out.next(), "true");
    const say = await run(["call", s.addr, "chat.say", '{"room":"lobby","text":"hi"}']);
    assert.equal(say.stdout, "1\n"); // delivered to the one member
    const line = JSON.parse((await out.next())!);
    assert.equal(line.type, "BROADCAST");
    assert.equal(line.method, "lobby");
    assert.equal(line.params.text, "hi");
    child.kill("SIGINT");
    assert.equal(await out.next(), undefined);
    assert.equal((await child.status).code, 0);
    assert.equal(await new Response(child.stderr).text(), "");

    const poke = spawn(["call", s.addr, "poke", '"you"', "--follow"]);
    await poke.stdin.close();
    const pokeOut = new Lines(poke.stdout);
    assert.equal(await pokeOut.next(), '"ok"');
    assert.equal(await pokeOut.next(), '{"type":"NOTIFY","method":"poked","params":"you"}');
    poke.kill("SIGTERM");
    assert.equal((await poke.status).code, 0);
    await poke.stderr.cancel();
  } finally {
    await s.close();
  }
});

Deno.test("call over TLS: --ca-file trusts a self-signed certificate; a plain openssl one gets told how to fix it", async () => {
  const dir = await Deno.makeTempDir();
  const s = startServer();
  try {
    const good = await selfSigned(dir);
    const tls = s.server.listen({ transport: "tls", hostname: "127.0.0.1", port: 0, ...good });
    const ok = await run(["call", tls, "add", "[2,40]", "--ca-file", good.certFile]);
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, "42\n", ""]);
    const untrusted = await run(["call", tls, "add", "[2,40]"]);
    assert.equal(untrusted.code, 78);
    assert.match(untrusted.stderr, /pass it as caFile \(--ca-file\)/);

    // What a plain `openssl req -x509` makes: a CA certificate, no subjectAltName.
    const plain = { certFile: `${dir}/plain.pem`, keyFile: `${dir}/plain.key` };
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
      ]
        .concat(["-keyout", plain.keyFile, "-out", plain.certFile]),
      stdout: "null",
      stderr: "null",
    }).output();
    assert.ok(made.success);
    const plainAddr = s.server.listen({
      transport: "tls",
      hostname: "127.0.0.1",
      port: 0,
      ...plain,
    });
    const refused = await run(["call", plainAddr, "add", "[2,40]", "--ca-file", plain.certFile]);
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /is a CA certificate, as a plain 'openssl req -x509' makes/);
    assert.match(refused.stderr, /-addext basicConstraints=critical,CA:FALSE/);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});
