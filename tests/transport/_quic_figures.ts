// Unary calls per second over QUIC and over TCP, measured in the same
// process and run, for docs/QUIC.md. Needs --unstable-net:
//
//   deno run --unstable-net -A tests/transport/_quic_figures.ts [calls] [inflight] [rounds]
//
// _quic_cases.ts prints a small run of it; nothing asserts a speed.

import { connect } from "../../rpc/client.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import type { ListenOptions } from "../../transport/listen.ts";
import type { DialOptions } from "../../transport/dial.ts";
import { type Certificates, makeCertificates } from "./_quic_certs.ts";

/** What {@linkcode measureCalls} measures. */
export interface CallFigures {
  calls: number;
  inflight: number;
  /** Unary calls per second over QUIC (one QUIC stream). */
  quic: number;
  /** The same over TCP, on the same machine in the same run. */
  tcp: number;
}

/** Calls/s of `calls` unary echo calls, `inflight` at a time, over one client. */
async function callsPerSecond(
  listenOptions: ListenOptions,
  dialOptions: (port: number) => DialOptions,
  calls: number,
  inflight: number,
): Promise<number> {
  const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
  const addr = server.listen(listenOptions);
  const client = await connect(dialOptions(Number(new URL(addr).port)), { reconnect: false });
  try {
    // Warm up: the JIT and both sides' buffers.
    await Promise.all(Array.from({ length: inflight }, (_, i) => client.call("echo", i)));
    let next = 0;
    const lane = async () => {
      while (next < calls) {
        next++;
        await client.call("echo", next);
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: inflight }, lane));
    return Math.round(calls / ((performance.now() - start) / 1000));
  } finally {
    await client.close();
    await server.shutdown();
  }
}

/**
 * Measures QUIC, then TCP, then QUIC and TCP again, and keeps the better
 * run of each, so that neither pays alone for a warm-up or a noisy moment.
 */
export async function measureCalls(
  certs: Certificates,
  { calls, inflight }: { calls: number; inflight: number },
): Promise<CallFigures> {
  const quic = () =>
    callsPerSecond(
      { transport: "quic", port: 0, certFile: certs.certFile, keyFile: certs.keyFile },
      (port) => ({ transport: "quic", hostname: "localhost", port, caFile: certs.caFile }),
      calls,
      inflight,
    );
  const tcp = () => callsPerSecond({ port: 0 }, (port) => ({ port }), calls, inflight);
  const q1 = await quic();
  const t1 = await tcp();
  const q2 = await quic();
  const t2 = await tcp();
  return { calls, inflight, quic: Math.max(q1, q2), tcp: Math.max(t1, t2) };
}

if (import.meta.main) {
  const [calls = 100_000, inflight = 128, rounds = 3] = Deno.args.map(Number);
  const dir = await Deno.makeTempDir({ prefix: "streamwire-quic-" });
  try {
    const certs = await makeCertificates(dir);
    for (let round = 0; round < rounds; round++) {
      console.log(JSON.stringify(await measureCalls(certs, { calls, inflight })));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
