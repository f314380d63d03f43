/**
 * The RPC client of a web page: {@linkcode connect} opens sessions over the
 * browser's own `WebSocket` and offers only the compression a browser can
 * decode.
 *
 * @module
 */

import { Compression, type CompressionName, Status } from "../codec/constants.ts";
import { hasSyncCompression } from "../codec/compression.ts";
import { StreamwireError } from "../codec/error.ts";
import { type ClientOptions, RpcClient } from "../rpc/client.ts";
import { dialWebSocket, type WebSocketDialOptions } from "../transport/websocket_dial.ts";

/**
 * What a web page offers in HELLO, in its order of preference: LZ4 (the
 * codec's own TypeScript, synchronous) before zlib (inflated with
 * `DecompressionStream`, asynchronously); no Zstandard, which browsers do
 * not implement.
 */
export const BROWSER_COMPRESSION: readonly CompressionName[] = ["lz4", "zlib"];

/** Options of {@linkcode connect}. */
export interface BrowserClientOptions extends Omit<ClientOptions, "dial"> {
  /**
   * How each WebSocket is opened. Its `token` (sent as the `token` query
   * parameter, checked before the upgrade) defaults to `token`, the HELLO
   * secret, and its `maxFrame` to `maxFrame`.
   *
   * @default {{}}
   */
  webSocket?: WebSocketDialOptions;
}

/**
 * Connects to a streamwire server over WebSocket and resolves once the
 * handshake completes. The client is the same {@linkcode RpcClient} as
 * everywhere (calls, streams, pushes, typed contracts), and reconnects with
 * backoff when the connection drops: calls made meanwhile wait for the next
 * connection.
 *
 * Compression: `compression` defaults to {@linkcode BROWSER_COMPRESSION};
 * Zstandard is dropped from a list given here where the runtime cannot
 * decode it (every browser), so the server never sends it. zlib frames
 * from the server are inflated asynchronously, in order; the page itself
 * sends LZ4 or plain frames.
 *
 * @param url `ws://host:port/path` or `wss://host:port/path`.
 * @param options Handshake offer, limits, reconnection, WebSocket options.
 * @returns A ready client.
 * @throws {StreamwireError} `invalid_argument` for a URL that is not
 *   `ws:` or `wss:`; `unavailable` when no connection could be made within
 *   the retries.
 *
 * @example Connect over WebSocket (in Deno, whose global WebSocket is the browser's API)
 * ```ts
 * import { connect } from "@streamwire/streamwire/browser";
 * import { listenWebSocket } from "@streamwire/streamwire/transport";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("add", ([a, b]: number[]) => a + b) });
 * const listener = listenWebSocket("ws://127.0.0.1:0/");
 * server.serve(listener);
 * const client = await connect(listener.addr);
 * assert.equal(await client.call("add", [2, 40]), 42);
 * assert.deepEqual(client.session?.settings?.compression, ["lz4", "zlib"]);
 * await client.close();
 * await server.shutdown();
 * await listener.closed;
 * ```
 */
export async function connect(
  url: string | URL,
  options: BrowserClientOptions = {},
): Promise<RpcClient> {
  const text = String(url);
  if (!/^wss?:\/\//i.test(text)) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Address '${text}' is not a ws:// or wss:// URL`,
    );
  }
  const dialOptions: WebSocketDialOptions = {
    token: options.token,
    maxFrame: options.maxFrame,
    ...options.webSocket,
  };
  const client = new RpcClient(() => dialWebSocket(text, dialOptions), {
    ...options,
    compression: (options.compression ?? BROWSER_COMPRESSION).filter(decodable),
  });
  await client.start();
  return client;
}

/** Whether this runtime can decode `name`: zlib always (asynchronously if need be). */
function decodable(name: CompressionName): boolean {
  return name !== "zstd" || hasSyncCompression(Compression.ZSTD);
}
