// Validation of the limits that stages take as options or properties: a
// mistyped limit (NaN, a negative number, a string from a config file) would
// otherwise disable the check it configures, since every comparison with NaN
// is false.

import { Status } from "./constants.ts";
import { StreamwireError } from "./error.ts";

/** Returns `value` if it is a non-negative safe integer, else throws `invalid_argument`. */
export function byteLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StreamwireError(
      Status.INVALID_ARGUMENT,
      `${name} '${value}' is not a non-negative integer`,
    );
  }
  return value;
}

/** Like {@linkcode byteLimit}, but `Infinity` (no limit) is allowed too. */
export function countLimit(name: string, value: number): number {
  return value === Infinity ? value : byteLimit(name, value);
}
