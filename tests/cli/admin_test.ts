import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { run } from "./_run.ts";

const TOKEN = "s3cret";
const ENV = { STREAMWIRE_ADMIN_TOKEN: TOKEN };

/** The demo server with its admin API on a free port, and `clients` connected to it. */
async function setup(clients = 1) {
  const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0, adminToken: TOKEN });
  const admin = running.adminAddr;
  assert.ok(admin, "the admin API runs");
  const connected: RpcClient[] = [];
  for (let i = 0; i < clients; i++) {
    connected.push(await connect(running.addr, { reconnect: false, codecs: ["json"] }));
  }
  return {
    admin,
    clients: connected,
    async close() {
      await Promise.all(connected.map((c) => c.close()));
      await running.shutdown();
    },
  };
}

function admin(args: string[], env: Record<string, string> = ENV) {
  return run(["admin", ...args], { env });
}

Deno.test("admin sessions lists connected clients as a table or JSON, a page or all", async () => {
  const t = await setup(3);
  try {
    const ids = t.clients.map((c) => c.session!.id);
    const table = await admin([t.admin, "sessions"]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^ID +REMOTE +STATE +CODEC +AGE +FRAMES IN\/OUT +BYTES IN\/OUT/);
    assert.equal(lines.length, 4, table.stdout);
    for (const id of ids) {
      assert.ok(
        lines.some((l) => l.startsWith(id) && /\bactive\b/.test(l) && /\bjson\b/.test(l)),
        `${id} in\n${table.stdout}`,
      );
    }
    assert.equal(table.stderr, "");

    const json = await admin([t.admin, "sessions", "--json"]);
    const page = JSON.parse(json.stdout);
    assert.equal(page.total, 3);
    assert.deepEqual(page.sessions.map((s: { id: string }) => s.id).sort(), [...ids].sort());

    const second = await admin([t.admin, "sessions", "--offset", "1", "--limit", "1"]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trimEnd().split("\n").length, 2);
    assert.equal(second.stderr, "sessions 2-2 of 3; --offset, --limit or --all for others\n");

    const all = JSON.parse((await admin([t.admin, "sessions", "--all", "--json"])).stdout);
    assert.equal(all.sessions.length, 3);

    const one = await admin([t.admin, "session", ids[0]]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).id, ids[0]);
    assert.match(one.stdout, /^\{\n {2}"id": /, "indented JSON");
  } finally {
    await t.close();
  }
});

Deno.test("admin kick closes the client's session", async () => {
  const t = await setup();
  try {
    const [client] = t.clients;
    const id = client.session!.id;
    const closed = client.session!.closed;
    const out = await admin([t.admin, "kick", id, "maintenance", "--json"]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { kicked: id, reason: "maintenance" });
    await closed;
    assert.equal(client.state, "disconnected");
    const again = await admin([t.admin, "kick", id]);
    assert.equal(again.code, 69, again.stderr);
  } finally {
    await t.close();
  }
});

Deno.test("admin notify reaches the client", async () => {
  const t = await setup();
  try {
    const [client] = t.clients;
    const pushes = client.pushes.getReader();
    const out = await admin([t.admin, "notify", client.session!.id, "hello", '{"n":42}']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { sent: true });
    const { value } = await pushes.read();
    assert.equal(value?.method, "hello");
    assert.deepEqual(value?.params, { n: 42 });
    pushes.releaseLock();
  } finally {
    await t.close();
  }
});

Deno.test("admin broadcast --topic reaches the members who joined, topics lists them", async () => {
  const t = await setup(2);
  try {
    const [member, other] = t.clients;
    assert.equal(await member.call("chat.join", { room: "lobby" }), true);
    const got = Promise.withResolvers<unknown>();
    member.subscribe("news", (params) => got.resolve(params));
    other.subscribe("news", (params) => got.reject(new Error(`not a member, got ${params}`)));

    const topics = await admin([t.admin, "topics"]);
    assert.equal(topics.code, 0, topics.stderr);
    assert.match(topics.stdout, /^TOPIC +MEMBERS\nlobby +1\n$/);
    assert.deepEqual(JSON.parse((await admin([t.admin, "topics", "--json"])).stdout), {
      topics: [{ topic: "lobby", members: 1 }],
    });

    const out = await admin([t.admin, "broadcast", "news", '{"text":"hi"}', "--topic", "lobby"]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).delivered, 1);
    assert.deepEqual(await got.promise, { text: "hi" });
  } finally {
    await t.close();
  }
});

Deno.test("admin metrics prints the Prometheus text, health its JSON", async () => {
  const t = await setup();
  try {
    const metrics = await admin([t.admin, "metrics"]);
    assert.equal(metrics.code, 0, metrics.stderr);
    assert.match(metrics.stdout, /^# HELP streamwire_sessions /m);
    assert.match(metrics.stdout, /^streamwire_sessions\{state="active"\} 1$/m);
    assert.match(metrics.stdout, /^streamwire_connections_accepted_total \d+$/m);
    const health = await admin([t.admin.replace("http://", ""), "health", "--json"]);
    assert.equal(health.code, 0, health.stderr);
    assert.equal(health.stdout, '{"status":"ok","accepting":true,"sessions":1}\n');
  } finally {
    await t.close();
  }
});

Deno.test("admin exits 80 for a bad token, 69 for an unknown session, 78 when unreachable", async () => {
  const t = await setup();
  try {
    const none = await admin([t.admin, "health"], {});
    assert.equal(none.code, 80, none.stderr);
    assert.equal(none.stderr, "streamwire: unauthenticated: Missing bearer token\n");
    const bad = await admin([t.admin, "health", "--token", "wrong"]);
    assert.equal(bad.code, 80, bad.stderr);
    const flag = await admin([t.admin, "health", "--token", TOKEN], {});
    assert.equal(flag.code, 0, flag.stderr);

    const missing = await admin([t.admin, "session", "nope", "--json"]);
    assert.equal(missing.code, 69);
    assert.deepEqual(JSON.parse(missing.stderr).error, {
      code: "not_found",
      status: 5,
      exit: 69,
      message: "No session 'nope'",
    });
    const notify = await admin([t.admin, "notify", "nope", "hello"]);
    assert.equal(notify.code, 69, notify.stderr);
  } finally {
    await t.close();
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const unreachable = await admin([`http://127.0.0.1:${port}`, "health"]);
  assert.equal(unreachable.code, 78, unreachable.stderr);
  assert.match(
    unreachable.stderr,
    /^streamwire: unavailable: Admin API at 'http:\/\/127\.0\.0\.1:\d+\/' is unreachable/,
  );
});

Deno.test("admin exits 2 for usage errors, before any request", async () => {
  const url = "http://127.0.0.1:1";
  for (
    const [args, pattern] of [
      [[url, "nope"], /Unknown action 'nope'; one of health, metrics, sessions/],
      [[url, "session"], /Usage: streamwire admin <admin-url> session <id>/],
      [[url, "health", "extra"], /Usage: streamwire admin <admin-url> health/],
      [[url, "notify", "s1", "m", "{"], /params is not JSON/],
      [[url, "broadcast", "m", "[1", "--topic", "t"], /params is not JSON/],
      [[url, "health", "--topic", "t"], /--topic applies to 'broadcast' only/],
      [[url, "sessions", "--all", "--limit", "5"], /--all reads every page/],
      [[url, "sessions", "--limit", "0"], /--limit must be an integer within 1\./],
      [["ftp://127.0.0.1:1", "health"], /must be http:\/\/ or https:\/\//],
      [[url, "health", "--bogus"], /Unknown option '--bogus'/],
      [[url], /Missing arguments/],
    ] as const
  ) {
    const out = await admin([...args]);
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, /^streamwire: invalid_argument: /);
    assert.match(out.stderr, pattern);
  }
  const help = await admin(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: streamwire admin <admin-url> <action>/);
  assert.match(help.stdout, /Examples:\n {2}streamwire admin http:\/\//);
});
