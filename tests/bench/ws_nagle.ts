/**
 * Round-trip time of one JSON-RPC call at a time over WebSocket, by message
 * size, with Deno's global `WebSocket` as the client and, next to it, a
 * minimal client over `Deno.connect` that writes each frame in one write
 * (Nagle's algorithm on, as in the global client): `deno run -A
 * tests/bench/ws_nagle.ts`. Server: `_ws_jsonrpc_server.ts` in a child process.
 *
 * The global client turns TCP_NODELAY off and writes a frame whose payload
 * exceeds 1,024 bytes as two writes, header then payload: the payload then
 * waits for the ACK of the header, which the server delays (about 40 ms on
 * Linux). Frames up to 1,024 bytes go out in one write and do not stall.
 *
 * @module
 */

import { spawnServer } from "./_child.ts";

const ROUNDS = 200;
/** JSON-RPC envelope around the params string, in bytes: sizes 64 and 972 give frames of 116 and 1,024 bytes. */
const SIZES = [64, 972, 973, 10_000];

function request(id: number, size: number): string {
  return JSON.stringify({ jsonrpc: "2.0", id: id % 10, method: "echo", params: "x".repeat(size) });
}

async function globalClient(port: number, size: number, rounds: number): Promise<number[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve) => ws.onopen = resolve);
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const answered = new Promise((resolve) => ws.onmessage = resolve);
    const started = performance.now();
    ws.send(request(i, size));
    await answered;
    times.push(performance.now() - started);
  }
  ws.close();
  return times;
}

/** RFC 6455 client frames: FIN + text, masked (with a zero mask), in one write. */
function frame(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const header = body.length < 126 ? 2 : body.length < 65536 ? 4 : 10;
  const out = new Uint8Array(header + 4 + body.length);
  const view = new DataView(out.buffer);
  out[0] = 0x81;
  if (header === 2) {
    out[1] = 0x80 | body.length;
  } else if (header === 4) {
    out[1] = 0x80 | 126;
    view.setUint16(2, body.length);
  } else {
    out[1] = 0x80 | 127;
    view.setBigUint64(2, BigInt(body.length));
  }
  out.set(body, header + 4);
  return out;
}

async function oneWriteClient(port: number, size: number, rounds: number): Promise<number[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(false);
  await conn.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buf = new Uint8Array(1 << 20);
  let have = 0;
  for (;;) {
    have += (await conn.read(buf.subarray(have)))!;
    const end = new TextDecoder().decode(buf.subarray(0, have)).indexOf("\r\n\r\n");
    if (end < 0) continue;
    buf.copyWithin(0, end + 4, have);
    have -= end + 4;
    break;
  }
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const bytes = frame(request(i, size));
    const started = performance.now();
    await conn.write(bytes);
    // Server frames are unmasked: 2, 4 or 10 bytes of header, then the payload.
    for (let done = false; !done;) {
      if (have >= 2) {
        const short = buf[1] & 127;
        const header = short === 126 ? 4 : short === 127 ? 10 : 2;
        const view = new DataView(buf.buffer);
        const length = short === 126
          ? view.getUint16(2)
          : short === 127
          ? Number(view.getBigUint64(2))
          : short;
        if (have >= header + length) {
          buf.copyWithin(0, header + length, have);
          have -= header + length;
          done = true;
          continue;
        }
      }
      have += (await conn.read(buf.subarray(have)))!;
    }
    times.push(performance.now() - started);
  }
  conn.close();
  return times;
}

function median(times: number[]): string {
  const sorted = times.slice(Math.floor(times.length / 10)).sort((a, b) => a - b);
  return `${(sorted[sorted.length >> 1] * 1000).toFixed(0)} µs`;
}

const server = await spawnServer("_ws_jsonrpc_server.ts");
try {
  console.log("median round trip, 1 in flight (first 10% of rounds left out as warm-up):");
  for (const size of SIZES) {
    // Stalled rounds take about 40 ms each: fewer of them.
    const rounds = size > 972 ? ROUNDS / 10 : ROUNDS;
    const bytes = new TextEncoder().encode(request(0, size)).length;
    console.log(
      `  frame payload ${bytes} B: global WebSocket ${
        median(await globalClient(server.port, size, rounds))
      }, one write per frame ${median(await oneWriteClient(server.port, size, rounds))}`,
    );
  }
} finally {
  await server.stop();
}
