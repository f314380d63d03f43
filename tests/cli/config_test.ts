import assert from "node:assert/strict";
import { adminPortOf, DEFAULT_CONFIG, loadConfig } from "../../cli/config.ts";
import { StreamwireError } from "../../codec/error.ts";

const files: Record<string, string> = {
  "server.toml": 'port = 9200\nheartbeat-ms = 1000\ntoken = "from-file"\n',
  "server.json": '{"port": 9300, "max-connections": 5, "admin": false}',
  "bad.json": "{port: }",
  "typo.toml": "port = 9400\nmax-conections = 5\nmaxFrame = 65536\ncolour = 'blue'\n",
  "list.json": "[1, 2]",
};
const readFile = (path: string) => {
  const text = files[path];
  return text === undefined
    ? Promise.reject(new Deno.errors.NotFound(`No such file: ${path}`))
    : Promise.resolve(text);
};

Deno.test("loadConfig returns the embedded defaults without input", async () => {
  assert.deepEqual(await loadConfig({ args: [], env: {}, readFile }), DEFAULT_CONFIG);
  assert.equal(DEFAULT_CONFIG.host, "127.0.0.1");
  assert.equal(DEFAULT_CONFIG.port, 9000);
  assert.equal(DEFAULT_CONFIG.maxConnections, 10_000);
  assert.equal(DEFAULT_CONFIG.heartbeatMs, 30_000);
  assert.equal(adminPortOf(DEFAULT_CONFIG), 9001);
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

Deno.test("loadConfig spells keys as the flags in JSON files and reads STREAMWIRE_CONFIG", async () => {
  const config = await loadConfig({
    args: [],
    env: { STREAMWIRE_CONFIG: "server.json" },
    readFile,
  });
  assert.equal(config?.port, 9300);
  assert.equal(config?.maxConnections, 5);
  assert.equal(config?.admin, false);
  assert.equal(adminPortOf(config!), undefined);
});

Deno.test("the admin port follows --port, --admin-port and --no-admin", async () => {
  const at = async (...args: string[]) =>
    adminPortOf((await loadConfig({ args, env: {}, readFile }))!);
  assert.equal(await at("--port", "9100"), 9101);
  assert.equal(await at("--port", "0"), 0); // any free port, as the RPC port
  assert.equal(await at("--port", "9100", "--admin-port", "0"), 0);
  assert.equal(await at("--admin-port", "9555"), 9555);
  assert.equal(await at("--no-admin"), undefined);
  assert.equal(await at("--no-admin", "--admin"), 9001);
});

Deno.test("misspelled file keys and STREAMWIRE_ variables are ignored with a warning naming the nearest", async () => {
  const warnings: string[] = [];
  const config = await loadConfig({
    args: ["--config", "typo.toml"],
    env: { STREAMWIRE_PROT: "9", STREAMWIRE_VECTORS: "v.json", HOME: "/root" },
    readFile,
    warn: (message) => warnings.push(message),
  });
  assert.equal(config?.port, 9400);
  assert.equal(config?.maxConnections, DEFAULT_CONFIG.maxConnections);
  assert.deepEqual(warnings, [
    "streamwire: warning: config file 'typo.toml': unknown setting 'max-conections' ignored; did you mean 'max-connections'?",
    "streamwire: warning: config file 'typo.toml': unknown setting 'maxFrame' ignored; did you mean 'max-frame'?",
    "streamwire: warning: config file 'typo.toml': unknown setting 'colour' ignored",
    "streamwire: warning: unknown environment variable 'STREAMWIRE_PROT' ignored; did you mean 'STREAMWIRE_PORT'?",
  ]);
});

Deno.test("loadConfig refuses bad values and values that make every client fail", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--port", "70000"], {}, /'port' must be an integer within 0\.\.65535, got '70000'/],
    [["--port", "nine"], {}, /nine/],
    [["--colour", "blue"], {}, /colour/],
    [["--max-conections", "5"], {}, /did you mean '--max-connections'/],
    [[], { STREAMWIRE_MAX_FRAME: "-1" }, /STREAMWIRE_MAX_FRAME: 'max-frame' .* got '-1'/],
    [["--window", "0"], {}, /'window' must be an integer within 1\.\./],
    [["--max-frame", "4095"], {}, /'max-frame' must be an integer within 4096\.\./],
    [["--max-connections", "0"], {}, /'max-connections' .* within 1\.\./],
    [["--max-concurrent-calls", "0"], {}, /'max-concurrent-calls'/],
    [["--heartbeat-ms", "1"], {}, /'heartbeat-ms' must be an integer within 10\.\./],
    [["--handshake-timeout-ms", "0"], {}, /'handshake-timeout-ms'/],
    [["--host", ""], {}, /'host' must be a non-empty string/],
    [[], { STREAMWIRE_ADMIN: "maybe" }, /'admin' must be true or false, got 'maybe'/],
    [["--config", "bad.json"], {}, /bad\.json' does not parse/],
    [["--config", "missing.json"], {}, /missing\.json' cannot be read/],
    [["--config", "list.json"], {}, /must hold an object/],
    [["--cert-file", "c.pem"], {}, /cert-file and key-file/],
    [["--admin-host", "0.0.0.0"], {}, /non-loopback host '0\.0\.0\.0' needs admin-token/],
  ];
  for (const [args, env, pattern] of cases) {
    await assert.rejects(loadConfig({ args, env, readFile }), (error) => {
      assert.ok(error instanceof StreamwireError);
      assert.equal(error.codeName, "invalid_argument");
      assert.match(error.message, pattern);
      return true;
    }, `${args.join(" ")} ${JSON.stringify(env)}`);
  }
});

Deno.test("the admin API binds beyond loopback only with a token, or is off", async () => {
  for (
    const args of [
      ["--admin-host", "0.0.0.0", "--admin-token", "t"],
      ["--admin-host", "0.0.0.0", "--no-admin"],
      ["--admin-host", "127.0.0.2"],
      ["--admin-host", "localhost"],
    ]
  ) {
    assert.ok(await loadConfig({ args, env: {}, readFile }), args.join(" "));
  }
});

Deno.test("loadConfig returns undefined for --help", async () => {
  assert.equal(await loadConfig({ args: ["--help"], env: {}, readFile }), undefined);
});
