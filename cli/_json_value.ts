// Decoded values as JSON text for the shell: bytes as base64 (as the
// protobuf JSON mapping writes them), 64-bit integers as numbers when
// exact and as strings otherwise, maps as objects, no value as null.

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return toBase64(value);
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/** One line of JSON for a decoded value; `undefined` (no value) is `null`. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value, replacer) ?? "null";
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
