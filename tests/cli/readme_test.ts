// Runs every example of the README's "In the shell" section against a live
// demo server and compares what it prints.
//
// The section holds `console` blocks: a line `$ command` runs the command
// (in bash, so pipes work), the lines after it are what stdout must show,
// one per line; `…` in a line matches anything. A command ending in ` &`
// runs in the background until the block ends (then gets SIGINT and must
// exit 0); lines that a foreground command did not print are read from it.
// A background command with no lines of its own is ready at its first
// line on stderr.

import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { Lines, MAIN } from "./_run.ts";

const README = new URL("../../README.md", import.meta.url);
const INVOKE = "npx -y deno@2.9.6 task cli";

interface Step {
  command: string;
  background: boolean;
  expected: string[];
}

function blocks(markdown: string): Step[][] {
  const section = markdown.split(/^## In the shell$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, "README has no 'In the shell' section");
  const found: Step[][] = [];
  for (const [, body] of section.matchAll(/```console\n([\s\S]*?)```/g)) {
    const steps: Step[] = [];
    for (const line of body.split("\n")) {
      if (line.startsWith("$ ")) {
        const command = line.slice(2);
        const background = command.endsWith(" &");
        steps.push({
          command: background ? command.slice(0, -2) : command,
          background,
          expected: [],
        });
      } else if (line !== "") {
        assert.ok(steps.length > 0, `output before any command: ${line}`);
        steps.at(-1)!.expected.push(line);
      }
    }
    found.push(steps);
  }
  assert.ok(found.length > 0, "no console blocks in 'In the shell'");
  return found;
}

function matcher(expected: string, addresses: (text: string) => string): RegExp {
  expected = addresses(expected);
  const escaped = expected.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

Deno.test("every example of the README's 'In the shell' section prints what it shows", async () => {
  const running = runServer({ ...DEFAULT_CONFIG, port: 0, adminPort: 0 });
  const cwd = await Deno.makeTempDir();
  // A free port for the examples' own listeners (capture's 9100).
  const spare = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sparePort = spare.addr.port;
  spare.close();
  const addresses = (text: string) =>
    text
      .replaceAll("tcp://127.0.0.1:9000", running.addr)
      .replaceAll("http://127.0.0.1:9001", running.adminAddr!)
      .replaceAll("127.0.0.1:9100", `127.0.0.1:${sparePort}`);
  const substitute = (command: string) => {
    assert.ok(!command.includes("deno run") && command.includes(INVOKE), command);
    return addresses(command.replaceAll(INVOKE, `'${Deno.execPath()}' run -A '${MAIN}'`));
  };
  // A background command is exec'd, so that SIGINT reaches it and not bash.
  const bash = (command: string, background = false) =>
    new Deno.Command("bash", {
      args: [
        "-c",
        background ? `exec ${substitute(command)}` : `set -o pipefail; ${substitute(command)}`,
      ],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  try {
    for (const steps of blocks(await Deno.readTextFile(README))) {
      let background:
        | { child: Deno.ChildProcess; lines: Lines; errors: Lines; command: string }
        | undefined;
      for (const step of steps) {
        let expected = step.expected;
        if (step.background) {
          const child = bash(step.command, true).spawn();
          background = {
            child,
            lines: new Lines(child.stdout),
            errors: new Lines(child.stderr),
            command: step.command,
          };
          // A command that shows no output of its own (capture) is ready
          // once it says so on stderr.
          if (expected.length === 0) {
            assert.ok(await background.errors.next(), `${step.command} ended before it was ready`);
          }
        } else {
          const out = await bash(step.command).output();
          const text = new TextDecoder();
          const stderr = text.decode(out.stderr);
          assert.equal(out.code, 0, `${step.command}\n${stderr}`);
          const printed = text.decode(out.stdout).split("\n");
          assert.equal(printed.pop(), "", `${step.command}: output ends without a newline`);
          assert.ok(
            printed.length <= expected.length,
            `${step.command} printed\n${printed.join("\n")}`,
          );
          printed.forEach((line, i) =>
            assert.match(line, matcher(expected[i], addresses), step.command)
          );
          expected = expected.slice(printed.length);
        }
        for (const line of expected) {
          assert.ok(background, `${step.command}: no background command to print '${line}'`);
          const next = await background.lines.next();
          assert.match(next ?? "(end of output)", matcher(line, addresses), background.command);
        }
      }
      if (background) {
        background.child.kill("SIGINT");
        assert.equal(await background.lines.next(), undefined, background.command);
        const status = await background.child.status;
        assert.equal(status.code, 0, background.command);
        await background.errors.cancel();
      }
    }
  } finally {
    await running.shutdown();
    await Deno.remove(cwd, { recursive: true });
  }
});
