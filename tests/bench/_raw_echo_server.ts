// The raw baseline of the unary benches: frames of a u32 big-endian length
// and a payload, echoed back by a plain read/write loop on Deno.listen, all
// the complete frames of one read in one write.
// Run by the benches: `deno run -A tests/bench/_raw_echo_server.ts`.

import { announce } from "./_child.ts";
import { writeAll } from "./_clients.ts";

/** Echoes every complete frame of each read back in one write, until EOF. */
export async function echo(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  let buf = new Uint8Array(64 * 1024);
  let have = 0;
  for (;;) {
    if (have === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await conn.read(buf.subarray(have));
    if (n === null) return;
    have += n;
    let end = 0;
    while (have - end >= 4) {
      const length = new DataView(buf.buffer, end).getUint32(0);
      if (have - end < 4 + length) break;
      end += 4 + length;
    }
    if (end > 0) {
      await writeAll(conn, buf.subarray(0, end));
      buf.copyWithin(0, end, have);
      have -= end;
    }
  }
}

if (import.meta.main) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  announce(listener.addr.port);
  for await (const conn of listener) echo(conn).catch(() => {}).finally(() => conn.close());
}
