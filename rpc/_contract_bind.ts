// A contract's handlers bound to registry entries, with the contract's
// validators run before each handler sees its params or input.

import { Status } from "../codec/constants.ts";
import { StreamwireError } from "../codec/error.ts";
import type {
  Contract,
  ContractEntry,
  StandardIssue,
  StandardResult,
  Validator,
} from "./contract.ts";
import type { CallContext, MethodEntry } from "./methods.ts";

type AnyHandler = (arg: unknown, ctx: CallContext) => unknown;

/** The registry entries of `contract`, one per method, in definition order. */
export function bindContract(
  contract: Contract,
  handlers: unknown,
): { name: string; entry: MethodEntry }[] {
  const bound = [];
  for (const def of contract.methods.values()) {
    bound.push({ name: def.name, entry: bindOne(def, handlerAt(handlers, def)) });
  }
  return bound;
}

function handlerAt(handlers: unknown, def: ContractEntry): AnyHandler {
  let at = handlers;
  for (const key of def.path) {
    // Own keys only: a missing `toString` handler must not find Object's.
    at = typeof at === "object" && at !== null && Object.hasOwn(at, key)
      ? (at as Record<string, unknown>)[key]
      : undefined;
  }
  if (typeof at !== "function") {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Contract method '${def.name}' has no handler, got '${typeof at}'`,
    );
  }
  return at as AnyHandler;
}

function bindOne(def: ContractEntry, handler: AnyHandler): MethodEntry {
  const { kind, description, params, input } = def.method;
  const name = def.name;
  // Without validators the handler is registered as it is: no cost per call.
  let run = handler;
  if (input !== undefined) {
    const inner = run;
    run = (stream, ctx) => inner(checkedInput(stream as ReadableStream, input, name), ctx);
  }
  if (params !== undefined) {
    const inner = run;
    const streaming = kind === "client_stream" || kind === "bidi";
    run = (arg, ctx) => {
      const checked = check(params, ctx.params, `params of '${name}'`);
      const go = (value: unknown) => inner(streaming ? arg : value, withParams(ctx, value));
      if (!(checked instanceof Promise)) return go(checked);
      if (kind === "server_stream" || kind === "bidi") return deferred(checked.then(go));
      return checked.then(go);
    };
  }
  return { kind, handler: run, description } as MethodEntry;
}

/** A stream output known only once an asynchronous validator settles. */
async function* deferred(output: Promise<unknown>): AsyncGenerator<unknown> {
  yield* await output as AsyncIterable<unknown> | Iterable<unknown>;
}

/** `ctx` with the checked params in place of the decoded ones. */
function withParams(ctx: CallContext, params: unknown): CallContext {
  return {
    method: ctx.method,
    id: ctx.id,
    params,
    session: ctx.session,
    metadata: ctx.metadata,
    traceparent: ctx.traceparent,
    tracestate: ctx.tracestate,
    deadline: ctx.deadline,
    // The served call's signal is made on first use: read it only when asked.
    get signal() {
      return ctx.signal;
    },
  };
}

/** Each value of `input` checked, in order; the first wrong one errors the stream. */
function checkedInput(
  input: ReadableStream,
  validator: Validator<unknown>,
  name: string,
): ReadableStream {
  let index = 0;
  return input.pipeThrough(
    new TransformStream(
      {
        async transform(value, controller) {
          const checked = check(validator, value, `input value '${index++}' of '${name}'`);
          controller.enqueue(checked instanceof Promise ? await checked : checked);
        },
      },
      undefined,
      { highWaterMark: 0 },
    ),
  );
}

/**
 * Runs a validator; returns the value at once when the validator is
 * synchronous. Failures become `invalid_argument`, except a
 * `StreamwireError` a validator function throws, which stands as it is.
 */
export function check<T>(validator: Validator<T>, value: unknown, what: string): T | Promise<T> {
  if (
    (typeof validator === "object" || typeof validator === "function") && validator !== null &&
    "~standard" in validator
  ) {
    const result = validator["~standard"].validate(value);
    return result instanceof Promise
      ? result.then((r) => unwrap(r, what))
      : unwrap(result as StandardResult<T>, what);
  }
  let out: T | Promise<T>;
  try {
    out = (validator as (value: unknown) => T | Promise<T>)(value);
  } catch (error) {
    throw refused(error, what);
  }
  return out instanceof Promise ? out.catch((error) => Promise.reject(refused(error, what))) : out;
}

function unwrap<T>(result: StandardResult<T>, what: string): T {
  if (result.issues !== undefined) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `Invalid ${what}: ${result.issues.map(describeIssue).join("; ") || "rejected"}`,
    );
  }
  return result.value;
}

function describeIssue(issue: StandardIssue): string {
  const path = issue.path?.map((s) => String(typeof s === "object" ? s.key : s)).join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}

function refused(error: unknown, what: string): StreamwireError {
  if (error instanceof StreamwireError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StreamwireError(Status.INVALID_ARGUMENT, `Invalid ${what}: ${message}`, {
    cause: error,
  });
}
