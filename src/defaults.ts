/**
 * The default of every setting the `compact` command and the library share, defined once: the
 * CLI's option defaults and the library's option defaults are both read from here, so they
 * cannot drift apart.
 */
import { fileURLToPath } from 'node:url';
import type { OutputType } from './gguf/tensor-plan.js';
import { checkpointTextBits } from './eval/text-metrics.js';
import { DEFAULT_CALIBRATION } from './prune/calibration.js';
import { DEFAULT_DAMP } from './prune/compensate.js';
import { METHOD_TRAITS } from './prune/methods.js';
import type { PruneOptions } from './prune/options.js';

export { DEFAULT_CALIBRATION };

/** `compact prune` without flags (the budget has no default: give `ratio`, or `vocab` and/or `ffn`). */
export const PRUNE_DEFAULTS = {
  method: 'compact',
  vocabMode: 'rank',
  weighting: 'binary',
  criterion: 'act2',
  calib: [DEFAULT_CALIBRATION],
  calibField: 'text',
  samples: 16,
  seqLen: 512,
  seed: 0,
} as const satisfies Partial<PruneOptions>;

/** Prune options as a caller gives them: any may be left out (a budget is needed). */
export type PruneSettings = Partial<Omit<PruneOptions, 'version'>>;

/**
 * The options `compact prune` runs with when `given` are the ones set: PRUNE_DEFAULTS, then the
 * defaults that depend on the budget: `ratio` without a fixed split (`vocabShare`, `vocab`, `ffn`,
 * scores files, a calibration shard) searches the split and, unless `vocabMode` is given, the vocabulary mode;
 * least-squares compensation wherever channels are pruned by calibrated act²; damping DEFAULT_DAMP.
 */
export function withPruneDefaults(given: PruneSettings): Omit<PruneOptions, 'commandLine' | 'version'> {
  const set = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as PruneSettings;
  const method = set.method ?? PRUNE_DEFAULTS.method;
  const search =
    set.ratio != null &&
    set.vocabShare == null &&
    set.vocab == null &&
    set.ffn == null &&
    METHOD_TRAITS[method].vocabShare === 'chosen' &&
    !set.scoresIn?.length &&
    !set.calibShard;
  return {
    ...PRUNE_DEFAULTS,
    calib: [...PRUNE_DEFAULTS.calib],
    auto: search,
    autoModes: set.vocabMode ? [set.vocabMode] : ['rank', 'frequency'],
    compensate: 'auto',
    damp: DEFAULT_DAMP,
    measureTexts: (dir, texts) => checkpointTextBits(dir, texts, set.threads),
    ...set,
  };
}

/** `compact eval`: text windows, generation batch, agreement and --speed settings. */
export const EVAL_DEFAULTS = {
  window: 512,
  batchSize: 8,
  paragraphs: 64,
  continuationChars: 64,
  newTokens: 64,
  repeats: 3,
} as const;

/** Where the benchmark files are looked for without --data-dir (relative to the current directory). */
export const DEFAULT_DATA_DIR = '../shared/data';
/** The 50-document benchmark slices of the tests, used when DEFAULT_DATA_DIR is absent (a fresh clone). */
export const BUNDLED_TASK_DATA = fileURLToPath(new URL('../test/fixtures/tasks', import.meta.url));

/** `compact export` and `prune --gguf`. */
export const EXPORT_DEFAULTS: { type: OutputType } = { type: 'f16' };
