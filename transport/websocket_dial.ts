/**
 * Opening a streamwire connection over WebSocket with the global
 * `WebSocket` of a browser (or any runtime that has one). It imports nothing
 * of Deno nor of Node, so a browser bundle can take it:
 * `connect(url, { dial: () => dialWebSocket(url) })`. In Deno, `dial("ws://…")`
 * uses streamwire's own RFC 6455 client instead (one write per message,
 * Nagle's algorithm off); the mapping is in docs/PROTOCOL.md, "WebSocket".
 *
 * @module
 */

import { DEFAULT_MAX_FRAME, HEADER_SIZE, Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Connection } from "./connection.ts";
import { ApiChannel } from "./_websocket_api.ts";
import { WebSocketConnection } from "./_websocket_connection.ts";
import { SUBPROTOCOL } from "./_websocket_frames.ts";

/** Options of {@linkcode dialWebSocket}. */
export interface WebSocketDialOptions {
  /**
   * A secret for the server's pre-upgrade check. The browser API cannot set
   * headers, so it goes in the `token` query parameter (where proxies may
   * log it); streamwire's own Deno client sends `authorization: Bearer`.
   */
  token?: string;
  /**
   * Largest frame body accepted until the handshake names the negotiated
   * one; a larger message is refused with ERROR 8.
   *
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Bytes of received messages not read yet (the API cannot pause the
   * server); past it the connection is refused with ERROR 8.
   *
   * @default {4194304}
   */
  maxInboundBytes?: number;
  /**
   * `bufferedAmount` above which a write waits for the socket to drain.
   *
   * @default {1048576}
   */
  maxBufferedAmount?: number;
  /**
   * Bound in ms on opening: past it the dial rejects with `deadline_exceeded`.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Aborting it gives up on the dial (`cancelled`). */
  signal?: AbortSignal;
  /** The `WebSocket` class to use (global WebSocket only). @default {globalThis.WebSocket} */
  WebSocket?: typeof WebSocket;
  /** Extra root certificates in PEM (wss, streamwire's Deno client only). */
  caCerts?: string[];
  /** Path of a PEM file of extra root certificates (wss, Deno client only). */
  caFile?: string;
}

/** A WebSocket address with its options, as `dial()` takes them. */
export interface WebSocketDialTarget extends WebSocketDialOptions {
  /** `ws://host:port/path` or `wss://…`. */
  url: string | URL;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_INBOUND_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_BUFFERED_AMOUNT = 1024 * 1024;

/**
 * Opens a connection over WebSocket, subprotocol `streamwire.v1`, with the
 * global `WebSocket` (`binaryType` "arraybuffer"). Resolves once the socket
 * is open; a server that refuses the upgrade (404, 401, 403) or the
 * subprotocol makes it reject with `unavailable`: the API does not say why.
 *
 * @param url `ws://host:port/path` or `wss://…`.
 * @param options Token, bounds, timeout and signal.
 * @returns The open connection.
 * @throws {StreamwireError} `invalid_argument` for a bad URL, `unavailable`
 *   when the socket cannot be opened, `deadline_exceeded` past `timeoutMs`,
 *   `cancelled` when `signal` is aborted.
 *
 * @example An RPC client over the global WebSocket
 * ```ts
 * import { dialWebSocket, listenWebSocket } from "@streamwire/streamwire/transport";
 * import { connect, Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const server = new RpcServer({ methods: new Methods().unary("echo", (p) => p) });
 * const listener = listenWebSocket("ws://127.0.0.1:0/");
 * server.serve(listener);
 * const client = await connect(listener.addr, { dial: () => dialWebSocket(listener.addr) });
 * assert.equal(client.session?.conn.transport, "ws");
 * assert.equal(await client.call("echo", "hi"), "hi");
 * await client.close();
 * await server.shutdown();
 * await listener.closed;
 * ```
 */
export function dialWebSocket(
  url: string | URL,
  options: WebSocketDialOptions = {},
): Promise<Connection> {
  const text = String(url);
  let target: URL;
  try {
    target = new URL(text);
  } catch {
    return Promise.reject(
      new StreamwireError(Status.INVALID_ARGUMENT, `Address '${text}' is not a URL`),
    );
  }
  const transport = target.protocol.slice(0, -1);
  if (transport !== "ws" && transport !== "wss") {
    return Promise.reject(
      new StreamwireError(
        Status.INVALID_ARGUMENT,
        `Address '${text}' has scheme '${transport}', expected ws or wss`,
      ),
    );
  }
  if (options.token !== undefined) target.searchParams.set("token", options.token);
  const Socket = options.WebSocket ?? globalThis.WebSocket;
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal;
  return new Promise<Connection>((resolve, reject) => {
    if (signal?.aborted) {
      return reject(new StreamwireError(Status.CANCELLED, `Dial to '${text}' was cancelled`));
    }
    let socket: WebSocket;
    try {
      socket = new Socket(target, [SUBPROTOCOL]);
    } catch (error) {
      return reject(
        new StreamwireError(Status.INVALID_ARGUMENT, `Cannot open '${text}': ${error}`, {
          cause: error,
        }),
      );
    }
    const channel = new ApiChannel(socket, {
      maxInboundBytes: options.maxInboundBytes ?? DEFAULT_MAX_INBOUND_BYTES,
      maxBufferedAmount: options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED_AMOUNT,
      maxMessage: maxFrame + HEADER_SIZE,
    });
    const settle = (error?: StreamwireError) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.onopen = null;
      socket.onerror = null;
      if (error === undefined) return;
      channel.close(1000, "");
      reject(error);
    };
    const onAbort = () =>
      settle(new StreamwireError(Status.CANCELLED, `Dial to '${text}' was cancelled`));
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() =>
      settle(
        new StreamwireError(
          Status.DEADLINE_EXCEEDED,
          `Dial to '${text}' did not complete within timeoutMs '${timeoutMs}'`,
        ),
      ), timeoutMs);
    socket.onerror = () =>
      settle(new StreamwireError(Status.UNAVAILABLE, `Cannot connect to '${text}'`));
    socket.onopen = () => {
      settle();
      if (socket.protocol !== SUBPROTOCOL) {
        channel.close(1000, "");
        return reject(
          new StreamwireError(
            Status.UNAVAILABLE,
            `Server at '${text}' did not agree to subprotocol '${SUBPROTOCOL}'`,
          ),
        );
      }
      resolve(
        new WebSocketConnection(channel, {
          transport,
          localAddr: `${transport}://local`,
          remoteAddr: `${transport}://${target.host}${target.pathname}`,
          maxFrame,
        }),
      );
    };
  });
}
