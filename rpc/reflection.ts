/**
 * Reflection: a server says which methods it serves and how each exchanges
 * messages, so a generic client (the `streamwire` command) can call any of
 * them without being told its kind.
 *
 * @module
 */

import { type MethodEntry, type MethodKind, Methods } from "./methods.ts";

/** Name of the reflection method every {@linkcode RpcServer} serves unless turned off. */
export const REFLECTION_METHOD = "reflection.list";

/** One method as reflection describes it. */
export interface MethodInfo {
  /** Method name. */
  name: string;
  /** How it exchanges messages. */
  kind: MethodKind;
  /** What it does, when its contract says (see `defineContract`). */
  description?: string;
}

/**
 * A registry that serves `methods` and answers {@linkcode REFLECTION_METHOD}
 * with the list of them (itself included), read at each call, so methods
 * registered later are listed. A method of that name in `methods` wins.
 *
 * @param methods The application's methods; not modified.
 * @returns A registry to serve.
 *
 * @example Usage
 * ```ts
 * import { Methods, REFLECTION_METHOD, withReflection } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const served = withReflection(new Methods().unary("add", ([a, b]: number[]) => a + b));
 * assert.equal(served.get(REFLECTION_METHOD)?.kind, "unary");
 * assert.deepEqual([...served.names()], ["add", REFLECTION_METHOD]);
 * ```
 */
export function withReflection(methods: Methods): Methods {
  return new ReflectedMethods(methods);
}

class ReflectedMethods extends Methods {
  #inner: Methods;
  #entry: MethodEntry;

  constructor(inner: Methods) {
    super();
    this.#inner = inner;
    this.#entry = {
      kind: "unary",
      handler: (): MethodInfo[] => {
        const list: MethodInfo[] = [];
        for (const name of this.names()) {
          const { kind, description } = this.get(name)!;
          list.push(description === undefined ? { name, kind } : { name, kind, description });
        }
        return list;
      },
    };
  }

  override get(name: string): MethodEntry | undefined {
    return this.#inner.get(name) ?? (name === REFLECTION_METHOD ? this.#entry : undefined);
  }

  override *names(): IterableIterator<string> {
    yield* this.#inner.names();
    if (this.#inner.get(REFLECTION_METHOD) === undefined) yield REFLECTION_METHOD;
  }
}
