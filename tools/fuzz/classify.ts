/**
 * What a run did, judged against the bad-input contract: a clean one-line error (exit 2, nothing
 * written, input unchanged) or a correct result (exit 0, finite numbers, an output that loads);
 * anything else is a defect class. When several apply, the first in CLASSES wins.
 */
import type { RunResult } from './run-cli.js';

export const CLASSES = [
  'hang',
  'memory',
  'abort',
  'stack-trace',
  'input-modified',
  'partial-output',
  'bad-output',
  'stray-temp',
  'nonfinite-exit0',
  'multi-line-error',
  'long-error',
  'bad-exit',
  'clean-error',
  'correct',
] as const;
export type RunClass = (typeof CLASSES)[number];
export const GOOD: readonly RunClass[] = ['clean-error', 'correct'];

export interface Observation {
  run: RunResult;
  inputChanged: boolean;
  /** The requested output exists after the run. */
  outputExists: boolean;
  /** For an output written with exit 0: it loads (prune: `compact eval` on it gives a finite bits per byte; export: a GGUF file). */
  outputLoads: boolean | null;
  /** Leftovers beside the output or in the temp folder. */
  strays: string[];
}

/** Longest clean error line: the CLI caps its message at 1,000 characters. */
export const MAX_LINE = 1100;

const NON_FINITE = /(^|[^\w])(NaN|-?Infinity)([^\w]|$)/m;

export function classify(o: Observation): RunClass {
  const { run } = o;
  if (run.timedOut) return 'hang';
  if (run.overMemory) return 'memory';
  if (
    run.signal != null ||
    (run.code != null && run.code >= 128) ||
    /FATAL ERROR|terminate called|Aborted|Segmentation fault|bad_alloc/.test(run.stderr)
  )
    return 'abort';
  if (/^\s+at .+[(:]/m.test(run.stderr) || /^(\w*Error|TypeError|RangeError)\b.*:/m.test(run.stderr)) return 'stack-trace';
  if (o.inputChanged) return 'input-modified';
  if (run.code !== 0 && o.outputExists) return 'partial-output';
  if (run.code === 0 && o.outputLoads === false) return 'bad-output';
  if (o.strays.length) return 'stray-temp';
  if (run.code === 0) return NON_FINITE.test(run.stdout) ? 'nonfinite-exit0' : 'correct';
  const lines = run.stderr.split('\n').filter((l) => l.length > 0);
  if (run.code === 2 && lines.length > 1 && lines[lines.length - 1].startsWith('compact: error: ')) return 'multi-line-error';
  // one line, and a short one: an excerpt of what was wrong, not the megabyte it was
  if (run.code === 2 && lines.length === 1 && lines[0].startsWith('compact: error: '))
    return lines[0].length > MAX_LINE ? 'long-error' : 'clean-error';
  return lines.length > 1 ? 'multi-line-error' : 'bad-exit';
}
