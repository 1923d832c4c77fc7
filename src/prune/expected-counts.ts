/**
 * The dense model's expected token counts on the calibration windows: Σ over every position of its
 * next-token probabilities. A frequency vocabulary keeps the tokens its text shows, most frequent
 * first, and fills the rest of V′ in this order: the tokens the model expects in that domain
 * rather than the lowest ids. (A text of a few thousand distinct tokens leaves most of a large V′
 * to this order; see docs/compensation.md.) A calibration pass over the same windows sums them
 * itself (ForwardRequest.expected, see ScoredCandidates); this pass of their own serves prunes
 * without one (vocabulary only, magnitude scores, --vocab-corpus).
 */
import { Engine } from '../engine/engine.js';
import type { Checkpoint } from '../model/checkpoint.js';
import { check } from '../util/errors.js';
import type { CalibrationPassOptions, OutputOptions } from './options.js';

export async function expectedCounts(
  ckpt: Checkpoint,
  windows: number[][],
  o: Pick<CalibrationPassOptions, 'threads' | 'precision'> & Pick<OutputOptions, 'onProgress'>,
): Promise<Float64Array> {
  const expected = new Float64Array(ckpt.spec.vocabSize);
  const engine = new Engine(ckpt, { threads: o.threads, precision: o.precision });
  try {
    await engine.forward(windows, { expected, onLayer: (l, n) => o.onProgress?.('vocabulary', l, n) });
  } finally {
    await engine.release();
  }
  check(
    expected.every(Number.isFinite),
    "vocabulary: the model's forward pass produces NaN or infinity: its weights or config.json are broken",
  );
  return expected;
}
