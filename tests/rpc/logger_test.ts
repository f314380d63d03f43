import assert from "node:assert/strict";
import { adminApp } from "../../rpc/admin.ts";
import { connect } from "../../rpc/client.ts";
import { asLogger, jsonLogger, type LogFields } from "../../rpc/logger.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";

interface Line {
  level: string;
  msg: string;
  fields: LogFields;
}

/** A log kept in memory; `next(msg)` resolves with the first line of that message not yet taken. */
function memoryLog() {
  const lines: Line[] = [];
  const waiting: { msg: string; resolve: (line: Line) => void }[] = [];
  const taken = new Set<Line>();
  const find = (msg: string) => lines.find((l) => l.msg === msg && !taken.has(l));
  return {
    lines,
    log(level: string, msg: string, fields: LogFields) {
      const line = { level, msg, fields };
      lines.push(line);
      const i = waiting.findIndex((w) => w.msg === msg);
      if (i >= 0) {
        taken.add(line);
        waiting.splice(i, 1)[0].resolve(line);
      }
    },
    next(msg: string): Promise<Line> {
      const line = find(msg);
      if (line !== undefined) {
        taken.add(line);
        return Promise.resolve(line);
      }
      return new Promise((resolve) => waiting.push({ msg, resolve }));
    },
  };
}

Deno.test("jsonLogger writes one JSON line per entry at or above its level", () => {
  const lines: string[] = [];
  const log = jsonLogger({ level: "warn", write: (line) => lines.push(line) });
  log.debug("d");
  log.info("i");
  log.warn("w", { n: 1n, bytes: new Uint8Array(3), level: "shadowed", skip: undefined });
  log.error("e", { error: new RangeError("bad") });
  assert.equal(lines.length, 2);
  const w = JSON.parse(lines[0]);
  assert.equal(w.level, "warn");
  assert.equal(w.msg, "w");
  assert.match(w.time, /^\d{4}-\d\d-\d\dT/);
  assert.equal(w.n, "1");
  assert.equal(w.bytes, "<3 bytes>");
  assert.equal(w._level, "shadowed");
  assert.ok(!("skip" in w));
  assert.deepEqual(JSON.parse(lines[1]).error, { name: "RangeError", message: "bad" });

  const none: string[] = [];
  const off = jsonLogger({ level: "off", write: (line) => none.push(line) });
  off.error("nothing");
  assert.deepEqual(none, []);
  assert.throws(() => jsonLogger({ level: "verbose" as "info" }), TypeError);
});

Deno.test("jsonLogger bounds every line: long fields are cut, fields past the line limit left out", () => {
  const lines: string[] = [];
  const log = jsonLogger({
    write: (line) => lines.push(line),
    maxFieldLength: 100,
    maxLineLength: 1000,
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  log.info("x".repeat(5000), {
    reason: "y".repeat(5000),
    nested: { list: Array.from({ length: 500 }, (_, i) => i) },
    cyclic,
  });
  const fields: LogFields = {};
  for (let i = 0; i < 100; i++) fields[`f${i}`] = "z".repeat(90);
  log.info("many", fields);
  for (const line of lines) assert.ok(line.length <= 1000, `${line.length}`);
  const first = JSON.parse(lines[0]);
  assert.equal(first.msg.length, 100);
  assert.match(first.msg, /…\(\+4\d{3}\)$/);
  assert.match(first.reason, /^y+…\(\+4\d{3}\)$/);
  assert.equal(typeof first.nested, "string"); // its JSON, cut
  assert.match(first.cyclic, /^\[unserializable: /);
  const many = JSON.parse(lines[1]);
  assert.ok(many.truncated > 0);
  assert.equal(Object.keys(many).filter((k) => k.startsWith("f")).length, 100 - many.truncated);
});

Deno.test("asLogger takes an object or a function and never throws", () => {
  const seen: string[] = [];
  const fromObject = asLogger({
    debug: () => seen.push("debug"),
    info: (m) => seen.push(`info ${m}`),
    warn: () => {
      throw new Error("sink down");
    },
    error: () => seen.push("error"),
  });
  fromObject.info("hi");
  fromObject.warn("lost");
  asLogger((level, message, fields) => seen.push(`${level} ${message} ${JSON.stringify(fields)}`))
    .error("boom");
  assert.deepEqual(seen, ["info hi", "error boom {}"]);
});

Deno.test("RpcServer logs a session's open and close with its counters and reason, never a line per call", async () => {
  const log = memoryLog();
  const server = new RpcServer({
    methods: new Methods().unary("echo", (p) => p),
    logger: log.log,
  });
  const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await connect(addr, { reconnect: false });
  const opened = await log.next("session opened");
  assert.equal(opened.level, "info");
  assert.equal(opened.fields.session, client.session!.id);
  assert.equal(opened.fields.transport, "tcp");
  assert.match(opened.fields.remote as string, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  for (let i = 0; i < 50; i++) assert.equal(await client.call("echo", i), i);
  await client.close();
  const closed = await log.next("session closed");
  assert.equal(closed.level, "info");
  assert.equal(closed.fields.session, opened.fields.session);
  assert.ok((closed.fields.framesIn as number) >= 51, JSON.stringify(closed.fields));
  assert.ok((closed.fields.framesOut as number) >= 51, JSON.stringify(closed.fields));
  assert.ok((closed.fields.bytesIn as number) > 0);
  assert.ok((closed.fields.bytesOut as number) > 0);
  assert.equal(typeof closed.fields.durationMs, "number");
  assert.equal(closed.fields.reason, "connection closed");
  // Two lines for a session that made 50 calls.
  assert.deepEqual(log.lines.map((l) => l.msg), ["session opened", "session closed"]);

  const kicked = await connect(addr, { reconnect: false });
  const id = (await log.next("session opened")).fields.session as string;
  server.transport.kick(id, "Kicked by test");
  const kickClosed = await log.next("session closed");
  assert.equal(kickClosed.fields.reason, "Kicked by test");
  assert.equal(kickClosed.fields.codeName, "aborted");
  assert.equal(kickClosed.fields.code, 10);
  await kicked.close();
  await server.shutdown();
});

Deno.test("RpcServer logs a handler failure with its code, message and stack; the client gets code 2 only", async () => {
  const log = memoryLog();
  const server = new RpcServer({
    methods: new Methods().unary("leak", () => {
      throw new Error("password=hunter2 rejected");
    }),
    logger: log.log,
  });
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
  });
  try {
    const error = await client.call("leak").catch((e: Error & { code: number }) => e) as Error & {
      code: number;
    };
    assert.equal(error.code, 2);
    assert.ok(!error.message.includes("hunter2"), error.message);
    const failed = await log.next("call failed");
    assert.equal(failed.level, "error");
    assert.equal(failed.fields.method, "leak");
    assert.equal(failed.fields.code, 2);
    assert.equal(failed.fields.codeName, "unknown");
    assert.equal(failed.fields.error, "Error: password=hunter2 rejected");
    assert.match(failed.fields.stack as string, /logger_test\.ts/);
    assert.equal(failed.fields.session, client.session!.id);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("an admin action is one 'admin' line of the server's log: who, what, when", async () => {
  const log = memoryLog();
  const server = new RpcServer({ methods: new Methods(), logger: log.log });
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
  });
  try {
    const res = await adminApp(server).request("/broadcast", {
      method: "POST",
      body: JSON.stringify({ method: "news", params: 1 }),
    });
    assert.equal(res.status, 200);
    const line = await log.next("admin");
    assert.equal(line.level, "info");
    assert.equal(line.fields.action, "broadcast");
    assert.equal(line.fields.target, "*");
    assert.deepEqual(line.fields.detail, { method: "news" });
    assert.deepEqual(line.fields.by, { remoteAddr: undefined, authenticated: false });
    assert.match(line.fields.at as string, /^\d{4}-\d\d-\d\dT/);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("RpcServer's logger level filters: at warn, sessions are not logged but failures are", async () => {
  const lines: string[] = [];
  const server = new RpcServer({
    methods: new Methods().unary("fail", () => {
      throw new TypeError("nope");
    }),
    logger: jsonLogger({ level: "warn", write: (line) => lines.push(line) }),
  });
  const client = await connect(server.listen({ hostname: "127.0.0.1", port: 0 }), {
    reconnect: false,
  });
  await assert.rejects(client.call("fail"), { code: 2 });
  await client.close();
  await server.shutdown();
  assert.deepEqual(lines.map((l) => [JSON.parse(l).level, JSON.parse(l).msg]), [
    ["error", "call failed"],
  ]);
});
