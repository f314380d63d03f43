// The demo methods served by a server made of nothing but `Deno.listen` and
// pipes: each connection's bytes run through the decode chain, the
// handshake, the RPC dispatcher and the encode chain, and back out.
//
//   deno run -A examples/pipes_server.ts [PORT]    (default 9000; 0 picks a free port)

import {
  catchStage,
  createDecodeStage,
  createEncodeChain,
  StageStream,
} from "@streamwire/streamwire/codec";
import { demoMethods } from "@streamwire/streamwire/demo";
import { CoalesceStream, Methods, RpcDispatcherStream } from "@streamwire/streamwire/rpc";
import { ServerHandshakeStream } from "@streamwire/streamwire/transport";

// The demo methods that need no RpcServer (chat.* needs a server's topics).
const demo = demoMethods(() => {
  throw new Error("chat.* needs an RpcServer");
});
const methods = new Methods();
for (const name of ["echo", "add", "time", "sleep", "count", "sum"]) {
  const entry = demo.get(name)!;
  if (entry.kind === "unary") methods.unary(name, entry.handler);
  else if (entry.kind === "server_stream") methods.serverStream(name, entry.handler);
  else if (entry.kind === "client_stream") methods.clientStream(name, entry.handler);
}

const port = Number(Deno.args[0] ?? 9000);
const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.log(`streamwire pipes server on tcp://127.0.0.1:${listener.addr.port}`);

for await (const conn of listener) serve(conn);

async function serve(conn: Deno.TcpConn): Promise<void> {
  // Bytes to one message per frame. Until the handshake a frame is a HELLO
  // of a few hundred bytes, so the limit starts small and nothing compressed
  // is accepted; the handshake below raises both. Garbage, a huge length or
  // a bad checksum becomes an error chunk instead of failing the pipe.
  const decode = createDecodeStage({ maxFrame: 64 * 1024, accept: [] });
  const handshake = new ServerHandshakeStream({
    maxFrame: 1024 * 1024,
    onOpen(settings) {
      decode.maxFrame = settings.maxFrame;
      decode.accept = settings.compression;
    },
  });
  try {
    await conn.readable
      // preventCancel: the socket stays open after a bad frame until its ERROR is written.
      .pipeThrough(new StageStream(catchStage(decode)), { preventCancel: true })
      // HELLO in, HELLO_ACK out; a bad token or a call before HELLO becomes an error chunk.
      .pipeThrough(handshake)
      // Calls in, answers out; an error chunk becomes ERROR (seq 0) and ends the output.
      .pipeThrough(new RpcDispatcherStream({ methods }))
      // The answers of one event-loop turn, one array: one write for many frames.
      .pipeThrough(new CoalesceStream())
      // Messages to frames, one chunk of bytes per array.
      .pipeThrough(createEncodeChain())
      // Closing the writable when the output ends closes the connection.
      .pipeTo(conn.writable);
  } catch {
    // The client went away: nothing left to answer.
  } finally {
    try {
      conn.close();
    } catch { /* closed with its writable */ }
  }
}
