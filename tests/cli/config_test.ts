import assert from "node:assert/strict";
import { DEFAULT_CONFIG, loadConfig } from "../../cli/config.ts";
import { StreamwireError } from "../../codec/error.ts";

const files: Record<string, string> = {
  "server.toml": 'port = 9200\nheartbeatMs = 1000\ntoken = "from-file"\n',
  "server.json": '{"port": 9300, "maxConnections": 5}',
  "bad.json": "{port: }",
  "unknown.json": '{"colour": "blue"}',
};
const readFile = (path: string) => {
  const text = files[path];
  return text === undefined ? Promise.reject(new Error(`no ${path}`)) : Promise.resolve(text);
};

Deno.test("loadConfig returns the embedded defaults without input", async () => {
  assert.deepEqual(await loadConfig({ args: [], env: {}, readFile }), DEFAULT_CONFIG);
  assert.equal(DEFAULT_CONFIG.host, "127.0.0.1");
  assert.equal(DEFAULT_CONFIG.port, 9000);
  assert.equal(DEFAULT_CONFIG.maxConnections, 10_000);
  assert.equal(DEFAULT_CONFIG.heartbeatMs, 30_000);
});

Deno.test("loadConfig layers file, environment and flags in rising precedence", async () => {
  const config = await loadConfig({
    args: ["--config", "server.toml", "--port", "9123"],
    env: { STREAMWIRE_HEARTBEAT_MS: "2000", STREAMWIRE_PORT: "9999" },
    readFile,
  });
  assert.equal(config?.port, 9123); // flag beats env and file
  assert.equal(config?.heartbeatMs, 2000); // env beats file
  assert.equal(config?.token, "from-file");
});

Deno.test("loadConfig reads JSON files and STREAMWIRE_CONFIG", async () => {
  const config = await loadConfig({
    args: [],
    env: { STREAMWIRE_CONFIG: "server.json" },
    readFile,
  });
  assert.equal(config?.port, 9300);
  assert.equal(config?.maxConnections, 5);
});

Deno.test("loadConfig rejects bad values with invalid_argument quoting them", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--port", "70000"], {}, /70000/],
    [["--port", "nine"], {}, /nine/],
    [["--colour", "blue"], {}, /colour/],
    [[], { STREAMWIRE_MAX_FRAME: "-1" }, /-1/],
    [["--config", "bad.json"], {}, /bad\.json/],
    [["--config", "unknown.json"], {}, /colour/],
    [["--cert-file", "c.pem"], {}, /keyFile/],
  ];
  for (const [args, env, pattern] of cases) {
    await assert.rejects(loadConfig({ args, env, readFile }), (error) => {
      assert.ok(error instanceof StreamwireError);
      assert.equal(error.codeName, "invalid_argument");
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("loadConfig returns undefined for --help", async () => {
  assert.equal(await loadConfig({ args: ["--help"], env: {}, readFile }), undefined);
});
