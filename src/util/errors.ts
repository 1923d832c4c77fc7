/**
 * A mistake in what the user gave us (a path, a file, a flag). The CLI prints its message as one
 * line and exits non-zero without a stack trace; anything else that escapes is a bug in compact.
 */
export class CompactError extends Error {
  override readonly name = 'CompactError';
}

/**
 * A library caller's value of an option with fixed choices, refused as the CLI's choices refuse
 * one, in the same words with the library's option name.
 */
export function checkChoice<T extends string>(option: string, value: unknown, choices: readonly T[]): void {
  if (value !== undefined && !choices.includes(value as T))
    throw new CompactError(`option '${option}' argument '${String(value)}' is invalid. Allowed choices are ${choices.join(', ')}`);
}

/** Throws a CompactError unless `value` is a positive (safe) integer: "NAME must be a positive integer, got VALUE". */
export function checkPositiveInteger(value: unknown, name: string): void {
  check(Number.isSafeInteger(value) && (value as number) > 0, `${name} must be a positive integer, got ${String(value)}`);
}

/** Throws a CompactError unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new CompactError(typeof message === 'string' ? message : message());
}
