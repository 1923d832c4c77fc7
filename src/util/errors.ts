/**
 * A mistake in what the user gave us (a path, a file, a flag). The CLI prints its message as one
 * line and exits non-zero without a stack trace; anything else that escapes is a bug in compact.
 */
export class CompactError extends Error {
  override readonly name = 'CompactError';
}

/** Throws a CompactError unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new CompactError(typeof message === 'string' ? message : message());
}
