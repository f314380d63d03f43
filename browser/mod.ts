/**
 * streamwire in a web page: the same protocol and RPC client over the
 * browser's `WebSocket`. Nothing here, nor anything it imports, needs Deno
 * or Node: CRC-32 and LZ4 are the codec's own JavaScript, zlib is inflated
 * with `DecompressionStream`, and the HELLO offers no Zstandard.
 *
 * {@linkcode connect} returns the same {@linkcode RpcClient} as
 * `@streamwire/streamwire/rpc` (reconnection with backoff, streams with
 * credit, pushes, interceptors, `client.typed(contract)`). `deno task
 * bundle` makes one ES module of it, which the demo server serves at
 * `/streamwire.js`; docs/BROWSER.md tells the rest.
 *
 * @example A page calling the demo server typed
 * ```ts ignore
 * // In a page: <script type="module"> served next to /streamwire.js.
 * // Not run by `deno test`: it needs a running demo server.
 * import { connect, demoContract } from "/streamwire.js";
 *
 * const client = await connect(`ws://${location.host}/`);
 * const demo = client.typed(demoContract);
 * console.log(await demo.add([2, 40])); // 42
 * for await (const n of demo.count(3)) console.log(n); // 1 2 3
 * ```
 *
 * @example Connect from Deno, whose WebSocket is the browser's API
 * ```ts
 * import { connect, demoContract } from "@streamwire/streamwire/browser";
 * import { demoMethods } from "@streamwire/streamwire/demo";
 * import { listenWebSocket } from "@streamwire/streamwire/transport";
 * import { RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
 * const listener = listenWebSocket("ws://127.0.0.1:0/");
 * server.serve(listener);
 * const client = await connect(listener.addr);
 * const demo = client.typed(demoContract);
 * assert.deepEqual(await Array.fromAsync(demo.count(3)), [1, 2, 3]);
 * await client.close();
 * await server.shutdown();
 * await listener.closed;
 * ```
 *
 * @module
 */

export * from "./connect.ts";
export {
  type ClientOptions,
  ClientState,
  type ReconnectOptions,
  RpcClient,
} from "../rpc/client.ts";
export * from "../rpc/methods.ts";
export * from "../rpc/contract.ts";
export {
  type ChatMessage,
  demoContract,
  type DemoShape,
  type RoomParams,
  type SayParams,
} from "../rpc/demo.ts";
export { Compression, type CompressionName, FrameType, Status } from "../codec/constants.ts";
export { StreamwireError } from "../codec/error.ts";
// Types only from here on: they cost the bundle nothing.
export type * from "../rpc/peer.ts";
export type * from "../rpc/interceptor.ts";
export type { CodecName, PayloadCodec } from "../codec/payload_codec.ts";
export type { Frame } from "../codec/frame.ts";
export type * from "../codec/message.ts";
export type { Stage } from "../codec/stage.ts";
export type * from "../transport/connection.ts";
export type * from "../transport/session.ts";
export type * from "../transport/session_options.ts";
export type { HelloOptions, SessionSettings } from "../transport/handshake.ts";
export type { WebSocketDialOptions } from "../transport/websocket_dial.ts";
