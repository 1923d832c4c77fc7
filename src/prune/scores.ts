/**
 * FFN channel scores. The COMPACT criterion is common act²: score_j = Σ_t w_t · h_{t,j}², with
 * h the input of down_proj and w_t = 1 when the input token at t survives vocabulary pruning.
 * Baselines share the code path: plain act² (w = 1), frequency weighting, weight magnitude, random.
 * Scores are additive over calibration shards and saved with what they were computed on.
 */
import type { Engine } from '../engine/engine.js';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { layerPrefix, LAYER_TENSORS } from '../model/tensor-names.js';
import { check } from '../util/errors.js';
import { readUserJson } from '../util/files.js';
import { seededRandom } from './random.js';

export const WEIGHTINGS = ['binary', 'frequency', 'none'] as const;
export const CRITERIA = ['act2', 'magnitude', 'random'] as const;
export type Weighting = (typeof WEIGHTINGS)[number];
export type Criterion = (typeof CRITERIA)[number];
export const SCORES_FORMAT = 'compact-scores/1';

export interface ChannelScores {
  format: typeof SCORES_FORMAT;
  /** Fingerprint of the checkpoint the scores belong to (see model/fingerprint.ts). */
  model: { fingerprint: string; numLayers: number; intermediateSize: number };
  criterion: Criterion;
  weighting: Weighting | null;
  /** sha256 of the kept-token set the weights used (null when no weighting depends on it). */
  keptVocabSha256: string | null;
  /** Calibration shards summed into these scores. */
  calibrations: { sha256: string; samples: number; seqLen: number; seed: number }[];
  /** [L][I] channel scores. */
  layers: number[][];
  /** Per layer Σ_t w_t · (1 − cos(x_t, y_t)) and Σ_t w_t: ShortGPT's Block Influence is their ratio. */
  influence: number[] | null;
  weightTotal: number;
}

/** One layer-wise pass of the unpruned model; act² ([G, I] per layer) and block influence reduced in the graph. */
export async function activationScores(
  engine: Engine,
  windows: number[][],
  weights: Float32Array[],
  groups = 1,
  onLayer?: (layer: number, layers: number) => void,
): Promise<{ act2: Float64Array[]; influence: number[]; weightTotal: number }> {
  const { act2, influence } = await engine.forward(windows, { statWeights: weights, statGroups: groups, onLayer });
  const weightTotal = weights.reduce((n, w) => n + w.reduce((a, b) => a + b, 0), 0);
  return { act2: act2!, influence: influence!, weightTotal };
}

/** Weight magnitude: Σ of squares of gate row j, up row j and down column j. */
export function magnitudeScores(ckpt: Checkpoint): number[][] {
  const { hiddenSize: D, intermediateSize: I, numLayers } = ckpt.spec;
  return Array.from({ length: numLayers }, (_, l) => {
    const score = new Float64Array(I);
    for (const role of ['gate', 'up'] as const) {
      const w = loadF32(ckpt, layerPrefix(l) + LAYER_TENSORS[role]); // [I, D]
      for (let j = 0; j < I; j++) for (let d = 0; d < D; d++) score[j] += w[j * D + d] ** 2;
    }
    const down = loadF32(ckpt, layerPrefix(l) + LAYER_TENSORS.down); // [D, I]
    for (let d = 0; d < D; d++) for (let j = 0; j < I; j++) score[j] += down[d * I + j] ** 2;
    return Array.from(score);
  });
}

export function randomScores(numLayers: number, intermediateSize: number, seed: number): number[][] {
  const random = seededRandom(seed ^ 0x5eed);
  return Array.from({ length: numLayers }, () => Array.from({ length: intermediateSize }, random));
}

/** The `count` best channels (ties: lower index first), in ascending index order. */
export function topChannels(scores: ArrayLike<number>, count: number): number[] {
  const order = Array.from({ length: scores.length }, (_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, count).sort((a, b) => a - b);
}

export function readScores(file: string): ChannelScores {
  const parsed = readUserJson(file) as ChannelScores;
  check(
    parsed?.format === SCORES_FORMAT,
    `${file}: not a compact scores file (format ${JSON.stringify(parsed?.format)}, expected ${SCORES_FORMAT})`,
  );
  return parsed;
}

/** Sums scores files computed on different calibration shards of the same model and settings. */
export function sumScores(files: string[], all: ChannelScores[]): ChannelScores {
  const [first, ...rest] = all;
  rest.forEach((s, i) => {
    const where = files[i + 1];
    check(s.model.fingerprint === first.model.fingerprint, `${where}: scores of another model than ${files[0]}`);
    check(
      s.criterion === first.criterion && s.weighting === first.weighting,
      `${where}: criterion/weighting ${s.criterion}/${s.weighting} differ from ${files[0]} (${first.criterion}/${first.weighting})`,
    );
    check(s.keptVocabSha256 === first.keptVocabSha256, `${where}: computed with another kept vocabulary than ${files[0]}`);
  });
  return {
    ...first,
    calibrations: all.flatMap((s) => s.calibrations),
    layers: first.layers.map((row, l) => row.map((v, j) => all.reduce((sum, s) => sum + s.layers[l][j], 0))),
    influence: first.influence && first.influence.map((_, l) => all.reduce((sum, s) => sum + (s.influence?.[l] ?? 0), 0)),
    weightTotal: all.reduce((sum, s) => sum + s.weightTotal, 0),
  };
}
