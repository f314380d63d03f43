// What the runtime provides natively, found without a static import: Node's
// built-in modules where the runtime has them (Deno 2, Node 22.3+, Bun),
// through `process.getBuiltinModule`, and nothing in a web page. A static
// `node:` import would put the module into every graph that reaches the
// codec, a browser bundle's included; this way Deno keeps the same native
// functions (looked up once, at load) and a browser falls back to
// JavaScript or to its own web APIs.

type GetBuiltin = (id: string) => unknown;

const getBuiltin = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process
  ?.getBuiltinModule;

/** Node's built-in module `id` (such as `"node:zlib"`), or undefined where the runtime has none. */
export function nodeBuiltin<T>(id: string): T | undefined {
  if (typeof getBuiltin !== "function") return undefined;
  try {
    return getBuiltin(id) as T | undefined;
  } catch {
    return undefined;
  }
}

/** Output of node:zlib's `inflateSync` with `info: true`. */
export interface InflateInfo {
  buffer: Uint8Array;
  engine: { bytesWritten: number };
}

/** The part of node:zlib the codec uses. */
export interface NodeZlib {
  crc32?(data: Uint8Array, value?: number): number;
  deflateSync(data: Uint8Array, options: { level: number }): Uint8Array;
  inflateSync(
    data: Uint8Array,
    options: { info: true; maxOutputLength: number; chunkSize: number },
  ): InflateInfo;
  zstdCompressSync(
    data: Uint8Array,
    options: { pledgedSrcSize: number; params: Record<number, number> },
  ): Uint8Array;
  zstdDecompressSync(
    data: Uint8Array,
    options: { maxOutputLength: number; chunkSize: number },
  ): Uint8Array;
  constants: { ZSTD_c_compressionLevel: number };
}

/** node:zlib, where the runtime has it: synchronous zlib, Zstandard and a native CRC-32. */
export const nodeZlib: NodeZlib | undefined = nodeBuiltin<NodeZlib>("node:zlib");

/**
 * Runs `task` once the current event-loop turn is over: `setImmediate`
 * where the runtime has it (Deno, Node), else a `MessageChannel` message,
 * which browsers deliver as a task without the 4 ms clamp that nested
 * `setTimeout(0)` calls get (HTML Living Standard 8.6, timers).
 */
export const afterTurn: (task: () => void) => void = (() => {
  const timers = nodeBuiltin<{ setImmediate(task: () => void): unknown }>("node:timers");
  if (timers !== undefined) {
    const setImmediate = timers.setImmediate;
    return (task) => void setImmediate(task);
  }
  const queue: (() => void)[] = [];
  let channel: MessageChannel | undefined;
  return (task) => {
    if (channel === undefined) {
      channel = new MessageChannel();
      channel.port1.onmessage = () => queue.shift()?.();
    }
    queue.push(task);
    channel.port2.postMessage(undefined);
  };
})();
