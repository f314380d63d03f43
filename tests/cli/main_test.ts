import assert from "node:assert/strict";
import { type CliIo, Interrupted } from "../../cli/_command.ts";
import { Output } from "../../cli/_output.ts";
import { main } from "../../cli/main.ts";
import { run } from "./_run.ts";

const COMMANDS = [
  "serve",
  "call",
  "batch",
  "encode",
  "decode",
  "inspect",
  "capture",
  "bench",
  "admin",
];

Deno.test("streamwire without a command prints the command list on stderr and exits 2", async () => {
  const out = await run([]);
  assert.equal(out.code, 2);
  assert.equal(out.stdout, "");
  assert.match(out.stderr, /^Usage: streamwire <command>/);
  for (const name of COMMANDS) {
    assert.match(out.stderr, new RegExp(`\\n  ${name} `), name);
  }
});

Deno.test("the JSR entry (cli/mod.ts) runs the same command", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../cli/mod.ts", import.meta.url).pathname, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  assert.match(new TextDecoder().decode(out.stdout), /^Usage: streamwire <command>/);
});

Deno.test("every command has --help with an example", async () => {
  for (const name of COMMANDS) {
    const out = await run([name, "--help"]);
    assert.equal(out.code, 0, `${name}: ${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^Usage: streamwire ${name}`), name);
    assert.match(out.stdout, /Example/, name);
  }
});

/** An in-process io whose stdout fails like a pipe whose reader went away. */
function brokenPipeIo(): CliIo & { written: string[]; errors: string[] } {
  const controller = new AbortController();
  const written: string[] = [];
  const errors: string[] = [];
  let writes = 0;
  const stdout = new Output(async (chunk) => {
    if (writes++ > 0) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    written.push(new TextDecoder().decode(chunk));
    await Promise.resolve();
  }, () => controller.abort(new Error("stdout closed")));
  const stderr = new Output((chunk) => {
    errors.push(new TextDecoder().decode(chunk));
    return Promise.resolve();
  });
  return {
    stdin: ReadableStream.from<Uint8Array>([]),
    stdout,
    stderr,
    env: {},
    terminal: { stdout: false, stderr: false },
    signal: controller.signal,
    written,
    errors,
  };
}

Deno.test("Output batches lines into few writes and goes quiet after a broken pipe", async () => {
  const io = brokenPipeIo();
  for (let i = 0; i < 1000; i++) io.stdout.line(String(i));
  await io.stdout.flush();
  assert.equal(io.written.length, 1); // one write for 1,000 lines
  assert.equal(io.written[0].split("\n").length, 1001);
  io.stdout.line("after");
  await io.stdout.flush(); // the second write breaks the pipe
  assert.equal(io.stdout.closed, true);
  assert.equal(io.signal.aborted, true);
  assert.equal(io.stdout.line("dropped"), undefined);
  await io.stdout.flush();
  assert.equal(io.written.length, 1);
});

Deno.test("main maps an interrupt to 130 and a usage error to 2 with one line", async () => {
  const io = brokenPipeIo();
  assert.equal(await main(["call", "tcp://127.0.0.1:1", "add", "--nope"], io), 2);
  assert.deepEqual(io.errors, [
    "streamwire: invalid_argument: Unknown option '--nope' (see 'streamwire call --help')\n",
  ]);
  const interrupted = new AbortController();
  interrupted.abort(new Interrupted("SIGINT"));
  const code = await main(["call", "tcp://127.0.0.1:1", "add", "[1,2]"], {
    ...brokenPipeIo(),
    signal: interrupted.signal,
  });
  assert.equal(code, 130);
});
