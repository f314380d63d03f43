import assert from "node:assert/strict";
import { loadConfig } from "../../cli/config.ts";
import { connect } from "../../rpc/client.ts";
import { Lines, spawn } from "./_run.ts";

// deno-lint-ignore no-explicit-any
type Entry = Record<string, any>;

/**
 * Reads a child's stderr as JSON log lines; a line that is not JSON fails
 * the test. Lines passed over by `until` stay for later calls, so events
 * that race (a kick's audit line and its session's close) are taken in
 * either order.
 */
class Log {
  #lines: Lines;
  #skipped: Entry[] = [];
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#lines = new Lines(stream);
  }
  /** The first line not taken yet with this `msg`. */
  async until(msg: string): Promise<Entry> {
    const i = this.#skipped.findIndex((e) => e.msg === msg);
    if (i >= 0) return this.#skipped.splice(i, 1)[0];
    for (;;) {
      const line = await this.#lines.next();
      if (line === undefined) throw new Error(`No '${msg}' line: ${this.#lines.seen.join("\n")}`);
      const entry = JSON.parse(line);
      if (entry.msg === msg) return entry;
      this.#skipped.push(entry);
    }
  }
  /** Every line not taken yet, to the end. */
  async rest(): Promise<Entry[]> {
    const rest = this.#skipped.splice(0);
    for (let line; (line = await this.#lines.next()) !== undefined;) rest.push(JSON.parse(line));
    return rest;
  }
  get seen(): Entry[] {
    return this.#lines.seen.map((line) => JSON.parse(line));
  }
}

Deno.test("log-level is a setting: --log-level, STREAMWIRE_LOG or STREAMWIRE_LOG_LEVEL, a file key", async () => {
  const warnings: string[] = [];
  const warn = (message: string) => warnings.push(message);
  assert.equal((await loadConfig({ args: [], env: {} }))?.logLevel, "info");
  assert.equal((await loadConfig({ args: ["--log-level", "debug"], env: {} }))?.logLevel, "debug");
  assert.equal(
    (await loadConfig({ args: [], env: { STREAMWIRE_LOG: "warn" }, warn }))?.logLevel,
    "warn",
  );
  const both = await loadConfig({
    args: [],
    env: { STREAMWIRE_LOG: "warn", STREAMWIRE_LOG_LEVEL: "error" },
    warn,
  });
  assert.equal(both?.logLevel, "error");
  const file = await loadConfig({
    args: ["--config", "s.json"],
    env: { STREAMWIRE_LOG: "off" },
    readFile: () => Promise.resolve(JSON.stringify({ "log-level": "debug" })),
    warn,
  });
  assert.equal(file?.logLevel, "off"); // the environment over the file
  assert.deepEqual(warnings, []);
  await loadConfig({ args: [], env: { STREAMWIRE_LGO: "info" }, warn });
  assert.deepEqual(warnings, [
    "streamwire: warning: unknown environment variable 'STREAMWIRE_LGO' ignored; " +
    "did you mean 'STREAMWIRE_LOG'?",
  ]);
  await assert.rejects(loadConfig({ args: ["--log-level", "verbose"], env: {} }), {
    codeName: "invalid_argument",
    message: "--log-level: 'log-level' must be one of debug, info, warn, error, off, got 'verbose'",
  });
  await assert.rejects(loadConfig({ args: [], env: { STREAMWIRE_LOG: "loud" } }), {
    message: /^environment STREAMWIRE_LOG: 'log-level' must be one of/,
  });
});

Deno.test("serve logs its settings without secrets, sessions, admin actions and its stop as JSON lines on stderr", async () => {
  const child = spawn([
    "serve",
    "--port",
    "0",
    "--admin-port",
    "0",
    "--token",
    "s3cret-token",
    "--admin-token",
    "adm1n-token",
  ]);
  const out = new Lines(child.stdout);
  const log = new Log(child.stderr);
  const started = await log.until("started");
  assert.equal(started.level, "info");
  assert.match(started.addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.match(started.adminAddr, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(started.settings.token, "[redacted]");
  assert.equal(started.settings["admin-token"], "[redacted]");
  assert.equal(started.settings["log-level"], "info");
  assert.equal(started.settings["max-connections"], 10_000);

  const client = await connect(started.addr, { token: "s3cret-token", reconnect: false });
  const opened = await log.until("session opened");
  assert.equal(opened.session, client.session!.id);
  assert.equal(await client.call("add", [2, 40]), 42);
  const kicked = await fetch(`${started.adminAddr}/sessions/${opened.session}`, {
    method: "DELETE",
    headers: { authorization: "Bearer adm1n-token" },
    body: JSON.stringify({ reason: "maintenance" }),
  });
  assert.equal(kicked.status, 204);
  const admin = await log.until("admin");
  assert.equal(admin.action, "kick");
  assert.equal(admin.target, opened.session);
  assert.deepEqual(admin.detail, { reason: "maintenance" });
  assert.equal(admin.by.authenticated, true);
  assert.match(admin.by.remoteAddr, /^127\.0\.0\.1:\d+$/);
  const closed = await log.until("session closed");
  assert.equal(closed.session, opened.session);
  assert.equal(closed.reason, "maintenance");
  assert.equal(closed.codeName, "aborted");
  assert.ok(closed.framesIn >= 2 && closed.framesOut >= 2, JSON.stringify(closed));
  await client.close();

  await assert.rejects(connect(started.addr, { token: "wrong", reconnect: false }), {
    codeName: "unauthenticated",
  });
  const refused = await log.until("handshake failed");
  assert.equal(refused.level, "warn");
  assert.equal(refused.codeName, "unauthenticated");

  child.kill("SIGTERM");
  await out.until((l) => l === "streamwire stopped");
  const rest = await log.rest();
  assert.deepEqual(rest.map((e) => e.msg), ["stopping", "stopped"]);
  assert.equal((await child.status).code, 0);
  const text = JSON.stringify(log.seen);
  assert.ok(!text.includes("s3cret-token") && !text.includes("adm1n-token"), text);
  // One line per session event, none per call or frame.
  assert.deepEqual(
    log.seen.map((e) => e.msg).sort(),
    [
      "started",
      "session opened",
      "admin",
      "session closed",
      "handshake failed",
      "stopping",
      "stopped",
    ].sort(),
  );
});

Deno.test("serve with STREAMWIRE_LOG=warn logs warnings only, and off nothing", async () => {
  for (const level of ["warn", "off"]) {
    const child = spawn(["serve", "--port", "0", "--no-admin", "--token", "t0ken"], {
      STREAMWIRE_LOG: level,
    });
    const out = new Lines(child.stdout);
    const addr = (await out.until((l) => l.startsWith("streamwire listening on "))).split(" ")[3];
    const client = await connect(addr, { token: "t0ken", reconnect: false });
    assert.equal(await client.call("echo", "hi"), "hi");
    await client.close();
    await assert.rejects(connect(addr, { token: "wrong", reconnect: false }), {
      codeName: "unauthenticated",
    });
    child.kill("SIGTERM");
    await out.until((l) => l === "streamwire stopped");
    assert.equal((await child.status).code, 0);
    const entries = await new Log(child.stderr).rest();
    assert.deepEqual(
      entries.map((e) => [e.level, e.msg]),
      level === "warn" ? [["warn", "handshake failed"]] : [],
    );
  }
});
