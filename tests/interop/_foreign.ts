// Runs the Python client written from PROTOCOL.md alone (foreign_client.py)
// against a server on 127.0.0.1 and returns the checks it printed.

const SCRIPT = new URL("./foreign_client.py", import.meta.url).pathname;

/** Runs the foreign client against `addr` and returns the checks it printed. */
export async function runForeignClient(
  port: number,
): Promise<{ code: number; checks: { check: string; ok: boolean; detail: string }[] }> {
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: [SCRIPT, "127.0.0.1", String(port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(stdout).trim().split("\n").filter(Boolean);
  if (code !== 0) console.error(new TextDecoder().decode(stderr));
  return { code, checks: lines.map((line) => JSON.parse(line)) };
}

export const EXPECTED_CHECKS = [
  "unary",
  "unknown method",
  "batch",
  "server stream with credit",
  "ping",
  "garbage gets ERROR 3",
  "huge length gets ERROR 8",
  "bad checksum gets ERROR 15",
];
