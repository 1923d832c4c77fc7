/**
 * FFN channel scores. The COMPACT criterion is common act²: score_j = Σ_t w_t · h_{t,j}², with
 * h the input of down_proj and w_t = 1 when the input token at t survives vocabulary pruning.
 * Baselines share the code path: plain act² (w = 1), frequency weighting, weight magnitude, random.
 * Scores are additive over calibration shards and saved with what they were computed on; act²
 * scores also carry their exact sums (exact-sum.ts), so shards sum to the single run bit for bit.
 */
import type { Precision } from '../engine/precision.js';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { layerPrefix, LAYER_TENSORS } from '../model/tensor-names.js';
import { check } from '../util/errors.js';
import { MAX_TEXT_BYTES, readUserJson } from '../util/files.js';
import type { CalibShard } from './calib-shard.js';
import { formatExact, parseExact, scaledToNumber } from './exact-sum.js';
import { seededRandom } from './random.js';

export const WEIGHTINGS = ['binary', 'frequency', 'none'] as const;
export const CRITERIA = ['act2', 'magnitude', 'random'] as const;
export type Weighting = (typeof WEIGHTINGS)[number];
export type Criterion = (typeof CRITERIA)[number];
/** /2: exact sums and calibration shards (a /1 file has neither and is refused: recompute it). */
export const SCORES_FORMAT = 'compact-scores/2';

/** What one calibration pass was run on; `shard` when it ran only part of the windows (calib-shard.ts). */
export interface CalibrationRecord {
  sha256: string;
  field: string;
  samples: number;
  seqLen: number;
  seed: number;
  shard: CalibShard | null;
  /** Precision of the calibration forward pass, when not fp32 (src/engine/precision.ts). */
  precision?: Precision;
}

/** The sums behind layers/influence/weightTotal, exactly (exact-sum.ts formatExact). */
export interface ExactScores {
  layers: string[][];
  influence: string[];
  weightTotal: string;
}

export interface ChannelScores {
  format: typeof SCORES_FORMAT;
  /** Fingerprint of the checkpoint the scores belong to (see model/fingerprint.ts). */
  model: { fingerprint: string; numLayers: number; intermediateSize: number };
  criterion: Criterion;
  weighting: Weighting | null;
  /** sha256 of the kept-token set the weights used (null when no weighting depends on it). */
  keptVocabSha256: string | null;
  /** Calibrations summed into these scores (a whole calibration, or one shard of one). */
  calibrations: CalibrationRecord[];
  /** [L][I] channel scores (act²: the double nearest each exact sum). */
  layers: number[][];
  /** Per layer Σ_t w_t · (1 − cos(x_t, y_t)) and Σ_t w_t: ShortGPT's Block Influence is their ratio. */
  influence: number[] | null;
  weightTotal: number;
  /** act²: the exact sums (null for magnitude and random scores, which are not sums over tokens). */
  exact: ExactScores | null;
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
  const parsed = readUserJson(file, { maxBytes: MAX_TEXT_BYTES }) as ChannelScores;
  const format = parsed?.format;
  check(
    !(typeof format === 'string' && format.startsWith('compact-scores/') && format !== SCORES_FORMAT),
    `${file}: scores file format ${format} is not this version's (${SCORES_FORMAT}); recompute it with --scores-out`,
  );
  check(format === SCORES_FORMAT, `${file}: not a compact scores file (format ${JSON.stringify(format)}, expected ${SCORES_FORMAT})`);
  const L = parsed.layers?.length;
  const rows = (v: unknown, what: (x: unknown) => boolean) =>
    Array.isArray(v) && v.length === L && v.every((r) => Array.isArray(r) && r.length === parsed.layers[0].length && r.every(what));
  check(
    Array.isArray(parsed.layers) && L > 0 && rows(parsed.layers, (x) => typeof x === 'number') && Array.isArray(parsed.calibrations),
    `${file}: a compact scores file, but its layers or calibrations are malformed`,
  );
  check(
    parsed.exact == null ||
      (rows(parsed.exact.layers, (x) => typeof x === 'string') &&
        Array.isArray(parsed.exact.influence) &&
        parsed.exact.influence.length === L),
    `${file}: a compact scores file, but its exact sums are malformed`,
  );
  return parsed;
}

const describeShard = (s: CalibShard) => `shard ${s.index}/${s.count}`;

/**
 * Settings that make two calibrations the same (sha256, field, samples, seqLen, seed, and any
 * setting a later version records): the one that differs, or null.
 */
function calibrationDifference(a: CalibrationRecord, b: CalibrationRecord): string | null {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => k !== 'shard') as (keyof CalibrationRecord)[];
  // A setting a file does not record has its default (e.g. precision fp32 is left out).
  const shown = (v: unknown) => (v === undefined ? 'the default' : JSON.stringify(v));
  for (const key of keys) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return `${key} ${shown(a[key])} vs ${shown(b[key])}`;
  if (a.shard?.count !== b.shard?.count) return `split into ${a.shard?.count} vs ${b.shard?.count} shards`;
  return null;
}

/**
 * Sums scores files of the same model and settings. Calibration shards must be exactly the n shards
 * of one calibration, each once (any order); their sum is that calibration's single-run scores, bit
 * for bit. Whole-calibration files (e.g. two corpora) are summed as before, exactly where they carry exact sums.
 */
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
    check(
      s.layers.length === first.layers.length && s.layers[0].length === first.layers[0].length,
      `${where}: scores for ${s.layers.length} × ${s.layers[0].length} channels, ${files[0]} has ${first.layers.length} × ${first.layers[0].length}`,
    );
  });
  let calibrations = all.flatMap((s) => s.calibrations);
  const sharded = all.findIndex((s) => s.calibrations.some((c) => c.shard));
  if (sharded >= 0) {
    const shardOf = (i: number) => (all[i].calibrations.length === 1 ? all[i].calibrations[0].shard : null);
    const n = shardOf(sharded)!.count;
    const seen = new Map<number, string>();
    all.forEach((s, i) => {
      const shard = shardOf(i);
      check(
        shard,
        `${files[i]}: not a calibration shard, and ${files[sharded]} is one (${describeShard(shardOf(sharded)!)}): give only the ${n} shards of one calibration`,
      );
      const difference = calibrationDifference(s.calibrations[0], all[sharded].calibrations[0]);
      check(difference == null, `${files[i]}: ${describeShard(shard)} of another calibration than ${files[sharded]} (${difference})`);
      check(
        Number.isSafeInteger(shard.index) && shard.index >= 1 && shard.index <= n,
        `${files[i]}: malformed shard ${JSON.stringify(shard)}`,
      );
      check(s.exact != null, `${files[i]}: a calibration shard without exact sums`);
      const twice = seen.get(shard.index);
      check(twice == null, `${twice} and ${files[i]} are both ${describeShard(shard)} (a shard given twice)`);
      seen.set(shard.index, files[i]);
    });
    const missing = [...Array(n).keys()].map((k) => k + 1).filter((k) => !seen.has(k));
    check(
      missing.length === 0,
      `shard ${missing.map((k) => `${k}/${n}`).join(', ')} missing: the files given cover only part of the calibration`,
    );
    calibrations = [{ ...first.calibrations[0], shard: null }]; // the whole calibration, as one run records it
  }
  if (all.every((s) => s.exact)) {
    const sum = (pick: (s: ExactScores) => string, where: string) =>
      all.reduce((total, s, i) => total + parseExact(pick(s.exact!), `${files[i]}: ${where}`), 0n);
    const layers = first.layers.map((row, l) => row.map((_, j) => sum((e) => e.layers[l][j], `layer ${l} channel ${j}`)));
    const influence = first.layers.map((_, l) => sum((e) => e.influence[l], `influence of layer ${l}`));
    const weightTotal = sum((e) => e.weightTotal, 'weight total');
    return {
      ...first,
      calibrations,
      layers: layers.map((row) => row.map(scaledToNumber)),
      influence: influence.map(scaledToNumber),
      weightTotal: scaledToNumber(weightTotal),
      exact: {
        layers: layers.map((row) => row.map(formatExact)),
        influence: influence.map(formatExact),
        weightTotal: formatExact(weightTotal),
      },
    };
  }
  return {
    ...first,
    calibrations,
    layers: first.layers.map((row, l) => row.map((v, j) => all.reduce((sum, s) => sum + s.layers[l][j], 0))),
    influence: first.influence && first.influence.map((_, l) => all.reduce((sum, s) => sum + (s.influence?.[l] ?? 0), 0)),
    weightTotal: all.reduce((sum, s) => sum + s.weightTotal, 0),
    exact: null,
  };
}
