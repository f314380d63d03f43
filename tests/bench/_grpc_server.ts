// gRPC (grpc-js on Deno's node:http2) serving `Echo` (unary) and `Count`
// (server stream of 5-byte messages), Buffers passed through unchanged:
// `deno run -A tests/bench/_grpc_server.ts`.

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { announce } from "./_child.ts";

const passthrough = (b: Buffer) => b;
const method = (path: string, responseStream: boolean) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: passthrough,
  requestDeserialize: passthrough,
  responseSerialize: passthrough,
  responseDeserialize: passthrough,
});

/** A generic service without protobuf: the bytes sent are the bytes received. */
export const GRPC_SERVICE: grpc.ServiceDefinition = {
  echo: method("/bench.Echo/Echo", false),
  count: method("/bench.Echo/Count", true),
};

/** Handlers of {@linkcode GRPC_SERVICE}: `echo` returns its request, `count` streams n 5-byte counters. */
export const GRPC_HANDLERS: grpc.UntypedServiceImplementation = {
  echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
    callback(null, call.request),
  count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    let n = call.request.readUInt32BE(0);
    let cancelled = false;
    call.on("cancelled", () => (cancelled = true));
    const pump = () => {
      while (n > 0 && !cancelled) {
        // The counter as a msgpack uint32, like one streamwire DATA value.
        const item = Buffer.from([0xce, 0, 0, 0, 0]);
        item.writeUInt32BE(n--, 1);
        if (!call.write(item)) return call.once("drain", pump);
      }
      if (!cancelled) call.end();
    };
    pump();
  },
};

if (import.meta.main) {
  const server = new grpc.Server();
  server.addService(GRPC_SERVICE, GRPC_HANDLERS);
  server.bindAsync(
    "127.0.0.1:0",
    grpc.ServerCredentials.createInsecure(),
    (error, port) => {
      if (error) throw error;
      announce(port);
    },
  );
}
