// The raw baseline of the server-stream bench: on each request frame (u32
// length 4, u32 count), writes `count` frames of a u32 length and a 5-byte
// payload (the counter as a msgpack uint32, like one streamwire DATA value)
// in writes of up to 64 KiB, by a plain loop on Deno.listen.
// Run by the benches: `deno run -A tests/bench/_raw_push_server.ts`.

import { announce } from "./_child.ts";
import { writeAll } from "./_clients.ts";

const FRAME = 9;
const CHUNK = Math.floor(64 * 1024 / FRAME) * FRAME;

async function push(conn: Deno.Conn, count: number): Promise<void> {
  const chunk = new Uint8Array(CHUNK);
  const view = new DataView(chunk.buffer);
  for (let i = 1; i <= count;) {
    let at = 0;
    for (; at < CHUNK && i <= count; at += FRAME, i++) {
      view.setUint32(at, 5);
      chunk[at + 4] = 0xce;
      view.setUint32(at + 5, i);
    }
    await writeAll(conn, chunk.subarray(0, at));
  }
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(8);
  for (;;) {
    for (let have = 0; have < 8;) {
      const n = await conn.read(buf.subarray(have));
      if (n === null) return;
      have += n;
    }
    await push(conn, new DataView(buf.buffer).getUint32(4));
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
announce(listener.addr.port);
for await (const conn of listener) serve(conn).catch(() => {}).finally(() => conn.close());
