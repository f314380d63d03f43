/**
 * The method registry: names bound to handlers of one of four kinds.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { Session } from "../transport/session.ts";
import { bindContract } from "./_contract_bind.ts";
import type { Contract, ContractShape, Handlers } from "./contract.ts";

/** How a method exchanges messages. */
export type MethodKind = "unary" | "server_stream" | "client_stream" | "bidi";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** Method name. */
  readonly method: string;
  /** Call id (0 for NOTIFY and BROADCAST). */
  readonly id: number;
  /** Decoded params of the call entry. */
  readonly params: unknown;
  /** The caller's session. */
  readonly session: Session;
  /** Metadata entries of the call, in wire order. */
  readonly metadata: readonly [string, string][];
  /** W3C `traceparent` of the caller, if it sent one. */
  readonly traceparent: string | undefined;
  /** W3C `tracestate` of the caller, if it sent one. */
  readonly tracestate: string | undefined;
  /**
   * When the caller stops waiting, in ms since epoch; `Infinity` for a
   * stream whose caller set no timeout.
   */
  readonly deadline: number;
  /** Fires on CANCEL, deadline, disconnect or shutdown; `reason` is a {@linkcode StreamwireError}. */
  readonly signal: AbortSignal;
}

/** A unary handler: params in, one result out (or a thrown error). */
export type UnaryHandler = (params: unknown, ctx: CallContext) => unknown;
/** A server-streaming handler: params in, a stream of results out. */
export type ServerStreamHandler = (
  params: unknown,
  ctx: CallContext,
) => ReadableStream<unknown> | AsyncIterable<unknown> | Iterable<unknown>;
/** A client-streaming handler: a stream of values in (params in `ctx.params`), one result out. */
export type ClientStreamHandler = (input: ReadableStream<unknown>, ctx: CallContext) => unknown;
/** A bidirectional handler: a stream in, a stream out. */
export type BidiHandler = (
  input: ReadableStream<unknown>,
  ctx: CallContext,
) => ReadableStream<unknown> | AsyncIterable<unknown> | Iterable<unknown>;

/** A registered method; `description` comes from a contract and is served by reflection. */
export type MethodEntry =
  & (
    | { kind: "unary"; handler: UnaryHandler }
    | { kind: "server_stream"; handler: ServerStreamHandler }
    | { kind: "client_stream"; handler: ClientStreamHandler }
    | { kind: "bidi"; handler: BidiHandler }
  )
  & { description?: string | undefined };

/**
 * Names bound to handlers. Registering a name twice replaces the handler.
 *
 * @example Usage
 * ```ts
 * import { Methods } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const methods = new Methods()
 *   .unary("add", ([a, b]: [number, number]) => a + b)
 *   .serverStream("count", function* (n: number) {
 *     for (let i = 1; i <= n; i++) yield i;
 *   });
 * assert.equal(methods.get("add")?.kind, "unary");
 * assert.deepEqual([...methods.names()], ["add", "count"]);
 * ```
 */
export class Methods {
  #entries = new Map<string, MethodEntry>();

  /**
   * Registers a unary method.
   *
   * @param name Method name.
   * @typeParam P Type of the decoded params, as the handler expects them (not checked).
   * @param handler Returns the result or a promise of it.
   * @returns This registry.
   */
  // deno-lint-ignore no-explicit-any
  unary<P = any>(name: string, handler: (params: P, ctx: CallContext) => unknown): this {
    return this.#add(name, { kind: "unary", handler: handler as UnaryHandler });
  }

  /**
   * Registers a server-streaming method.
   *
   * @param name Method name.
   * @param handler Returns a stream or (async) iterable of results.
   * @returns This registry.
   */
  // deno-lint-ignore no-explicit-any
  serverStream<P = any>(
    name: string,
    handler: (params: P, ctx: CallContext) => ReturnType<ServerStreamHandler>,
  ): this {
    return this.#add(name, { kind: "server_stream", handler: handler as ServerStreamHandler });
  }

  /**
   * Registers a client-streaming method.
   *
   * @param name Method name.
   * @param handler Reads the input stream and returns one result.
   * @returns This registry.
   */
  // deno-lint-ignore no-explicit-any
  clientStream<T = any>(
    name: string,
    handler: (input: ReadableStream<T>, ctx: CallContext) => unknown,
  ): this {
    return this.#add(name, { kind: "client_stream", handler: handler as ClientStreamHandler });
  }

  /**
   * Registers a bidirectional method.
   *
   * @param name Method name.
   * @param handler Reads the input stream and returns an output stream.
   * @returns This registry.
   */
  // deno-lint-ignore no-explicit-any
  bidi<T = any>(
    name: string,
    handler: (input: ReadableStream<T>, ctx: CallContext) => ReturnType<BidiHandler>,
  ): this {
    return this.#add(name, { kind: "bidi", handler: handler as BidiHandler });
  }

  /**
   * Registers every method of a contract, with the handlers in the same
   * shape. The type checker rejects a missing handler and a handler of the
   * wrong kind or types; the contract's validators check params (and the
   * values of client streams) before a handler runs, answering
   * `invalid_argument` when they fail.
   *
   * @typeParam S The contract's shape.
   * @param contract Made by {@linkcode defineContract}.
   * @param handlers A handler for every method, grouped as in the contract.
   * @returns This registry.
   * @throws {StreamwireError} `invalid_argument` when a handler is not a function.
   *
   * @example Usage
   * ```ts
   * import { defineContract, Methods, unary } from "@streamwire/streamwire/rpc";
   * import assert from "node:assert/strict";
   *
   * const contract = defineContract({ chat: { join: unary<{ room: string }, boolean>() } });
   * const methods = new Methods().implement(contract, { chat: { join: () => true } });
   * assert.equal(methods.get("chat.join")?.kind, "unary");
   * ```
   */
  implement<S extends ContractShape>(contract: Contract<S>, handlers: NoInfer<Handlers<S>>): this {
    for (const { name, entry } of bindContract(contract, handlers)) this.#add(name, entry);
    return this;
  }

  /**
   * Looks a method up.
   *
   * @param name Method name.
   * @returns The entry, if registered.
   */
  get(name: string): MethodEntry | undefined {
    return this.#entries.get(name);
  }

  /**
   * Registered names.
   *
   * @returns An iterator over method names in registration order.
   */
  names(): IterableIterator<string> {
    return this.#entries.keys();
  }

  #add(name: string, entry: MethodEntry): this {
    if (typeof name !== "string" || name.length === 0) {
      throw new StreamwireError(Status.INVALID_ARGUMENT, `Method name must be a non-empty string`);
    }
    this.#entries.set(name, entry);
    return this;
  }
}
