/** The options several commands share, defined once so their spelling and help never drift apart. */
import { Option } from 'commander';
import { checkThreads } from '../engine/session.js';
import { positiveInt } from './parse.js';

export const outputOption = (placeholder: string, what: string): Option =>
  new Option(`-o, --output <${placeholder}>`, `${what} (written atomically; must not exist unless --force)`).makeOptionMandatory();
export const forceOption = (what: string): Option => new Option('--force', `replace the ${what} if it exists`);
export const jsonOption = (what = 'the report'): Option => new Option('--json', `print ${what} as JSON`);
export const threadsOption = (): Option =>
  new Option('--threads <n>', 'ONNX Runtime intra-op threads, at most the machine’s cores (default: all of them)');

/** --threads as given (undefined: all cores). */
export function threads(value: string | undefined): number | undefined {
  if (value == null) return undefined;
  const n = positiveInt(value, '--threads');
  checkThreads(n);
  return n;
}
