/**
 * A typed client of a contract: one function per method, in the
 * contract's shape, over any side that makes calls (an {@linkcode RpcClient}
 * or an {@linkcode RpcPeer}).
 *
 * @module
 */

import type { Contract, ContractShape, TypedClient } from "./contract.ts";
import type { CallOptions } from "./peer.ts";

/** What a typed client calls through: the calling methods of `RpcClient` and `RpcPeer`. */
export interface ContractCaller {
  /** Calls a unary method. */
  call(method: string, params?: unknown, options?: CallOptions): Promise<unknown>;
  /** Opens a server stream. */
  stream(method: string, params?: unknown, options?: CallOptions): ReadableStream<unknown>;
  /** Makes a client-streaming call. */
  upload(
    method: string,
    input: ReadableStream<unknown> | AsyncIterable<unknown>,
    options?: CallOptions & { params?: unknown },
  ): Promise<unknown>;
  /** Makes a bidirectional call. */
  duplex(
    method: string,
    params?: unknown,
    options?: CallOptions,
  ): { readable: ReadableStream<unknown>; writable: WritableStream<unknown> };
}

type Fn = (...args: never[]) => unknown;

/**
 * Makes a typed client of `contract` calling through `caller`. Each method
 * is a function at the method's path: `api.add([2, 40])` for `add`,
 * `api.chat.join(params)` for a method `join` in group `chat`, and
 * `api["chat.join"](params)` for a key holding a dot. Options (timeout,
 * signal, metadata, idempotency) are the last argument; a client stream's
 * OPEN params go in its options as `params`. {@linkcode RpcClient.typed}
 * is the usual way in.
 *
 * @typeParam S The contract's shape.
 * @param caller The side that makes the calls.
 * @param contract Made by {@linkcode defineContract}.
 * @returns The typed client; its objects are frozen.
 *
 * @example Call the server's methods from a peer's other side
 * ```ts
 * import { bidi, defineContract, typedClient } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const contract = defineContract({ shout: bidi<string, string>() });
 * const sent: string[] = [];
 * const api = typedClient({
 *   call: () => Promise.resolve(),
 *   stream: () => ReadableStream.from([]),
 *   upload: () => Promise.resolve(),
 *   duplex: (method) => {
 *     sent.push(method);
 *     return new TransformStream<unknown, unknown>();
 *   },
 * }, contract);
 * const { readable, writable } = api.shout();
 * const writer = writable.getWriter();
 * writer.write("hi");
 * writer.close();
 * const out: string[] = await Array.fromAsync(readable);
 * assert.deepEqual(out, ["hi"]);
 * assert.deepEqual(sent, ["shout"]);
 * ```
 */
export function typedClient<S extends ContractShape>(
  caller: ContractCaller,
  contract: Contract<S>,
): TypedClient<S> {
  // Groups without a prototype: a method or group named `__proto__` or
  // `toString` is a plain key.
  const root: Record<string, unknown> = Object.create(null);
  for (const { name, path, method } of contract.methods.values()) {
    let group = root;
    for (const key of path.slice(0, -1)) {
      group = (group[key] ??= Object.create(null)) as Record<string, unknown>;
    }
    group[path[path.length - 1]] = clientFunction(caller, name, method.kind);
  }
  return deepFreeze(root) as TypedClient<S>;
}

function clientFunction(caller: ContractCaller, name: string, kind: string): Fn {
  switch (kind) {
    case "unary":
      return (params?: unknown, options?: CallOptions) => caller.call(name, params, options);
    case "server_stream":
      return (params?: unknown, options?: CallOptions) => caller.stream(name, params, options);
    case "client_stream":
      return (
        input: ReadableStream | AsyncIterable<unknown> | Iterable<unknown>,
        options?: CallOptions & { params?: unknown },
      ) =>
        caller.upload(
          name,
          input instanceof ReadableStream || Symbol.asyncIterator in input
            ? input as ReadableStream | AsyncIterable<unknown>
            : ReadableStream.from(input),
          options,
        );
    default:
      return (params?: unknown, options?: CallOptions) => caller.duplex(name, params, options);
  }
}

function deepFreeze(group: Record<string, unknown>): Record<string, unknown> {
  for (const value of Object.values(group)) {
    if (typeof value === "object" && value !== null) deepFreeze(value as Record<string, unknown>);
  }
  return Object.freeze(group);
}
