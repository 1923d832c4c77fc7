/**
 * The dense model's expected token counts on the calibration windows: Σ over every position of its
 * next-token probabilities. A frequency vocabulary keeps the tokens its text shows, most frequent
 * first, and fills the rest of V′ in this order: the tokens the model expects in that domain
 * rather than the lowest ids. (A text of a few thousand distinct tokens leaves most of a large V′
 * to this order; see docs/compensation.md.)
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
  const V = ckpt.spec.vocabSize;
  const expected = new Float64Array(V);
  const engine = new Engine(ckpt, { threads: o.threads, precision: o.precision });
  const exps = new Float64Array(V); // [V] one position's exp(logit − max)
  let broken = false;
  await engine.forward(windows, {
    onLogits: (_s, _t, logits) => {
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logits[v] > max) max = logits[v];
      let sum = 0;
      for (let v = 0; v < V; v++) sum += exps[v] = Math.exp(logits[v] - max);
      if (!Number.isFinite(sum) || !Number.isFinite(max)) broken = true;
      const scale = 1 / sum;
      for (let v = 0; v < V; v++) expected[v] += exps[v] * scale;
    },
    onLayer: (l, n) => o.onProgress?.('vocabulary', l, n),
  });
  await engine.release();
  check(!broken, "vocabulary: the model's forward pass produces NaN or infinity: its weights or config.json are broken");
  return expected;
}
