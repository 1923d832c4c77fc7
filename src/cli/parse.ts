/** Parsing of option values and text-file arguments: every command uses these, so a mistake reads the same everywhere. */
import { CompactError } from '../util/errors.js';
import { readUserText } from '../util/files.js';

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0)
    throw new CompactError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n))
    throw new CompactError(`${flag} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

/** A finite number (range checks belong to whoever knows the range); undefined stays undefined. */
export function finiteNumber(value: string | undefined, flag: string): number | undefined {
  if (value == null) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new CompactError(`${flag} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** A 32-bit seed (it feeds a 32-bit generator, so larger values would silently wrap). */
export function seed(value: string, flag = '--seed'): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < -(2 ** 31) || n >= 2 ** 32)
    throw new CompactError(`${flag} must be an integer in [-2^31, 2^32), got ${JSON.stringify(value)}`);
  return n | 0;
}

/** A text file that must not be empty. */
export function readTextFile(file: string): string {
  const text = readUserText(file);
  if (text.length === 0) throw new CompactError(`${file}: the text is empty`);
  return text;
}
