/**
 * Typed contracts: one definition of a service's methods, each with its
 * kind and the types of its params and results, shared by the server that
 * implements it ({@linkcode Methods.implement}) and the clients that call it
 * ({@linkcode RpcClient.typed}). The types exist only for the type checker;
 * at run time a contract carries the kinds, descriptions (served by
 * reflection) and optional validators of params and stream input.
 *
 * Validators are [Standard Schema](https://standardschema.dev) objects
 * (zod, valibot, arktype and others implement the `~standard` interface)
 * or plain functions that return the value or throw.
 *
 * @module
 */

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type { CallContext, MethodKind } from "./methods.ts";
import type { CallOptions } from "./peer.ts";

/** One problem a Standard Schema validator found. */
export interface StandardIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where in the value, as keys or `{ key }` segments. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** What a Standard Schema validator returns: the value, or the issues. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

/**
 * The `~standard` interface of Standard Schema v1, as far as validation
 * needs it, so schemas of zod, valibot or arktype are accepted without a
 * dependency on any of them.
 *
 * @typeParam Input What the schema accepts.
 * @typeParam Output What validation yields.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": {
    /** Version of the interface. */
    readonly version: 1;
    /** The library that made the schema. */
    readonly vendor: string;
    /** Validates a value; may return a promise. */
    readonly validate: (
      value: unknown,
    ) => StandardResult<Output> | Promise<StandardResult<Output>>;
    /** Type-only: the input and output types. */
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/**
 * Checks a value at the server before the handler sees it: a Standard
 * Schema, or a function returning the (possibly converted) value, or a
 * promise of it, and throwing when the value is wrong.
 *
 * @typeParam T The type of the checked value.
 */
export type Validator<T> = StandardSchemaV1<unknown, T> | ((value: unknown) => T | Promise<T>);

/**
 * One method of a contract. `P` is the type of the params (of the call,
 * or of the OPEN of a client or bidirectional stream), `I` of the values a
 * client or bidirectional stream sends, `O` of the result (unary, client
 * stream) or of each value streamed back (server stream, bidi).
 */
export interface MethodDef<
  K extends MethodKind = MethodKind,
  P = unknown,
  I = unknown,
  O = unknown,
> {
  /** How the method exchanges messages. */
  readonly kind: K;
  /** What the method does, served by reflection. */
  readonly description: string | undefined;
  /** Checks the params at the server. */
  readonly params: Validator<P> | undefined;
  /** Checks each value of a client or bidirectional stream at the server. */
  readonly input: Validator<I> | undefined;
  /** Type-only: never set at run time. */
  readonly "~types"?: { readonly params: P; readonly input: I; readonly output: O };
}

/** A unary method: params `P` in, result `R` out. */
export type UnaryMethod<P, R> = MethodDef<"unary", P, never, R>;
/** A server-streaming method: params `P` in, a stream of `R` out. */
export type ServerStreamMethod<P, R> = MethodDef<"server_stream", P, never, R>;
/** A client-streaming method: a stream of `I` in (OPEN params `P`), one result `R` out. */
export type ClientStreamMethod<I, R, P = unknown> = MethodDef<"client_stream", P, I, R>;
/** A bidirectional method: a stream of `I` in (OPEN params `P`), a stream of `O` out. */
export type BidiMethod<I, O, P = unknown> = MethodDef<"bidi", P, I, O>;

/** Runtime parts of a unary or server-streaming method, all optional. */
export interface MethodOptions<P> {
  /** What the method does, served by reflection. */
  description?: string;
  /** Checks the params at the server; failures answer `invalid_argument`. */
  params?: Validator<P>;
}

/** Runtime parts of a client-streaming or bidirectional method, all optional. */
export interface StreamMethodOptions<P, I> extends MethodOptions<P> {
  /** Checks each value the client sends; a failure fails the call with `invalid_argument`. */
  input?: Validator<I>;
}

/**
 * A contract's methods by name; a nested object is a group whose methods
 * are named `group.method` on the wire.
 */
export type ContractShape = {
  readonly [name: string]: MethodDef | ContractShape;
};

/** One method of a contract, flattened. */
export interface ContractEntry {
  /** Wire name: the path joined with dots. */
  readonly name: string;
  /** Keys leading to the method in the shape (and in handlers and typed clients). */
  readonly path: readonly string[];
  /** The method. */
  readonly method: MethodDef;
}

/** A checked contract, made by {@linkcode defineContract}. */
export interface Contract<S extends ContractShape = ContractShape> {
  /** The shape as defined. */
  readonly shape: S;
  /** Every method by wire name, in definition order. */
  readonly methods: ReadonlyMap<string, ContractEntry>;
}

/** A {@linkcode CallContext} whose params have the contract's type. */
export interface TypedCallContext<P> extends CallContext {
  /** The params, checked when the contract has a validator. */
  readonly params: P;
}

/** What a streaming handler returns. */
export type StreamOf<T> = ReadableStream<T> | AsyncIterable<T> | Iterable<T>;

/** The handler a method's definition asks for. */
export type HandlerOf<M> = M extends MethodDef<"unary", infer P, unknown, infer R>
  ? (params: P, ctx: TypedCallContext<P>) => R | Promise<R>
  : M extends MethodDef<"server_stream", infer P, unknown, infer R>
    ? (params: P, ctx: TypedCallContext<P>) => StreamOf<R>
  : M extends MethodDef<"client_stream", infer P, infer I, infer R>
    ? (input: ReadableStream<I>, ctx: TypedCallContext<P>) => R | Promise<R>
  : M extends MethodDef<"bidi", infer P, infer I, infer O>
    ? (input: ReadableStream<I>, ctx: TypedCallContext<P>) => StreamOf<O>
  : never;

/** Handlers of a contract: the same shape, a handler for every method. */
export type Handlers<S extends ContractShape> = {
  [K in keyof S]: S[K] extends MethodDef ? HandlerOf<S[K]>
    : S[K] extends ContractShape ? Handlers<S[K]>
    : never;
};

/** Arguments of a typed call: params (optional when they may be undefined), then options. */
export type ParamsArgs<P> = undefined extends P ? [params?: P, options?: CallOptions]
  : [params: P, options?: CallOptions];
/** Options of a typed client stream, with its OPEN params (required unless they may be undefined). */
export type UploadArgs<P> = undefined extends P ? [options?: CallOptions & { params?: P }]
  : [options: CallOptions & { params: P }];

/** The client function a method's definition gives. */
export type ClientMethod<M> = M extends MethodDef<"unary", infer P, unknown, infer R>
  ? (...args: ParamsArgs<P>) => Promise<R>
  : M extends MethodDef<"server_stream", infer P, unknown, infer R>
    ? (...args: ParamsArgs<P>) => ReadableStream<R>
  : M extends MethodDef<"client_stream", infer P, infer I, infer R> ? (
      input: ReadableStream<I> | AsyncIterable<I> | Iterable<I>,
      ...args: UploadArgs<P>
    ) => Promise<R>
  : M extends MethodDef<"bidi", infer P, infer I, infer O>
    ? (...args: ParamsArgs<P>) => { readable: ReadableStream<O>; writable: WritableStream<I> }
  : never;

/** A typed client of a contract: the same shape, a function for every method. */
export type TypedClient<S extends ContractShape> = {
  readonly [K in keyof S]: S[K] extends MethodDef ? ClientMethod<S[K]>
    : S[K] extends ContractShape ? TypedClient<S[K]>
    : never;
};

function method<K extends MethodKind, P, I, O>(
  kind: K,
  options: StreamMethodOptions<P, I>,
): MethodDef<K, P, I, O> {
  return Object.freeze({
    kind,
    description: options.description,
    params: options.params,
    input: options.input,
  });
}

/**
 * Defines a unary method. The type arguments are the params and the
 * result; the params type may instead be inferred from a validator.
 *
 * @typeParam P Params.
 * @typeParam R Result.
 * @param options Description and params validator.
 * @returns The method's definition.
 *
 * @example Usage
 * ```ts
 * import { unary } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const add = unary<[number, number], number>({ description: "Adds two numbers" });
 * assert.equal(add.kind, "unary");
 * assert.equal(add.description, "Adds two numbers");
 * ```
 */
export function unary<P = unknown, R = unknown>(
  options: MethodOptions<P> = {},
): UnaryMethod<P, R> {
  return method("unary", options);
}

/**
 * Defines a server-streaming method.
 *
 * @typeParam P Params.
 * @typeParam R Each value streamed back.
 * @param options Description and params validator.
 * @returns The method's definition.
 *
 * @example Usage
 * ```ts
 * import { serverStream } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(serverStream<number, number>().kind, "server_stream");
 * ```
 */
export function serverStream<P = unknown, R = unknown>(
  options: MethodOptions<P> = {},
): ServerStreamMethod<P, R> {
  return method("server_stream", options);
}

/**
 * Defines a client-streaming method.
 *
 * @typeParam I Each value the client sends.
 * @typeParam R Result.
 * @typeParam P Params of the OPEN.
 * @param options Description, params validator and input validator.
 * @returns The method's definition.
 *
 * @example Usage
 * ```ts
 * import { clientStream } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(clientStream<number, number>().kind, "client_stream");
 * ```
 */
export function clientStream<I = unknown, R = unknown, P = unknown>(
  options: StreamMethodOptions<P, I> = {},
): ClientStreamMethod<I, R, P> {
  return method("client_stream", options);
}

/**
 * Defines a bidirectional method.
 *
 * @typeParam I Each value the client sends.
 * @typeParam O Each value streamed back.
 * @typeParam P Params of the OPEN.
 * @param options Description, params validator and input validator.
 * @returns The method's definition.
 *
 * @example Usage
 * ```ts
 * import { bidi } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bidi<string, string>().kind, "bidi");
 * ```
 */
export function bidi<I = unknown, O = unknown, P = unknown>(
  options: StreamMethodOptions<P, I> = {},
): BidiMethod<I, O, P> {
  return method("bidi", options);
}

const KINDS: ReadonlySet<unknown> = new Set<MethodKind>([
  "unary",
  "server_stream",
  "client_stream",
  "bidi",
]);

function isMethod(value: unknown): value is MethodDef {
  return typeof value === "object" && value !== null &&
    KINDS.has((value as { kind?: unknown }).kind);
}

/**
 * Checks a contract's shape and lists its methods. Methods are named by
 * their key; a nested object is a group, whose methods are named
 * `group.method` on the wire and reached as `api.group.method` on a typed
 * client. A key may itself hold dots (`"chat.join"`): it names the same
 * wire method, reached as `api["chat.join"]`.
 *
 * @typeParam S The shape.
 * @param shape Methods made by {@linkcode unary}, {@linkcode serverStream},
 *   {@linkcode clientStream} and {@linkcode bidi}, and groups of them.
 * @returns The contract.
 * @throws {StreamwireError} `invalid_argument` when a key is empty, a value
 *   is neither a method nor a group, or two paths name the same method.
 *
 * @example Define, implement and call a contract
 * ```ts
 * import {
 *   clientStream,
 *   connect,
 *   defineContract,
 *   Methods,
 *   RpcServer,
 *   serverStream,
 *   unary,
 * } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const calc = defineContract({
 *   add: unary<[number, number], number>({ description: "Adds two numbers" }),
 *   count: serverStream<number, number>(),
 *   sum: clientStream<number, number>(),
 *   text: { upper: unary<string, string>() },
 * });
 * assert.deepEqual([...calc.methods.keys()], ["add", "count", "sum", "text.upper"]);
 *
 * const server = new RpcServer({
 *   methods: new Methods().implement(calc, {
 *     add: ([a, b]) => a + b,
 *     count: function* (n) {
 *       for (let i = 1; i <= n; i++) yield i;
 *     },
 *     sum: async (input) => {
 *       let total = 0;
 *       for await (const n of input) total += n;
 *       return total;
 *     },
 *     text: { upper: (s) => s.toUpperCase() },
 *   }),
 * });
 * const client = await connect(server.listen({ port: 0 }));
 * const api = client.typed(calc);
 * const n: number = await api.add([2, 40]);
 * assert.equal(n, 42);
 * assert.deepEqual(await Array.fromAsync(api.count(3)), [1, 2, 3]);
 * assert.equal(await api.sum([1, 2, 3]), 6);
 * assert.equal(await api.text.upper("hi"), "HI");
 * await client.close();
 * await server.shutdown();
 * ```
 */
export function defineContract<S extends ContractShape>(shape: S): Contract<S> {
  const methods = new Map<string, ContractEntry>();
  const walk = (group: ContractShape, path: string[]): void => {
    if (typeof group !== "object" || group === null || Array.isArray(group)) {
      throw invalid(`Contract group '${path.join(".")}' must be an object of methods`);
    }
    for (const [key, value] of Object.entries(group)) {
      const at = [...path, key];
      const name = at.join(".");
      if (key.length === 0) throw invalid(`Contract key in '${path.join(".")}' is empty`);
      if (!isMethod(value)) {
        walk(value as ContractShape, at);
        continue;
      }
      if (methods.has(name)) {
        throw invalid(`Contract method '${name}' is defined twice`);
      }
      methods.set(name, Object.freeze({ name, path: Object.freeze(at), method: value }));
    }
  };
  walk(shape, []);
  return Object.freeze({ shape, methods });
}

function invalid(message: string): StreamwireError {
  return new StreamwireError(Status.INVALID_ARGUMENT, message);
}
