/**
 * Calibration split over machines. `--calib-shard i/n` draws the same windows a single run draws
 * (same --calib, --samples, --seq-len, --seed) and runs only window w with w mod n = i − 1 (window
 * order as buildCalibration returns them); every weight (token groups, frequency weights) is still
 * derived from all windows. Each window's statistics come from the graph for that window alone
 * (Engine's onSequenceStats) and are summed exactly (exact-sum.ts), so the n shards' scores summed
 * with --scores-in are, bit for bit, the single run's, whatever the micro-batching.
 */
import { check, CompactError } from '../util/errors.js';
import { exactAdd, ExactSums, scaledToNumber } from './exact-sum.js';

/** Shard `index` (1-based) of `count`. */
export interface CalibShard {
  index: number;
  count: number;
}

/** `i/n` → { index: i, count: n }; anything else is one clear error. */
export function parseCalibShard(spec: string): CalibShard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) throw new CompactError(`--calib-shard must be i/n (e.g. 2/3: the second of three parts), got ${JSON.stringify(spec)}`);
  const shard = { index: Number(m[1]), count: Number(m[2]) };
  checkCalibShard(shard);
  return shard;
}

export function checkCalibShard(s: CalibShard): void {
  check(Number.isSafeInteger(s.count) && s.count >= 1, `--calib-shard ${s.index}/${s.count}: the number of shards must be at least 1`);
  check(
    Number.isSafeInteger(s.index) && s.index >= 1 && s.index <= s.count,
    `--calib-shard ${s.index}/${s.count}: the shard index must be in 1…${s.count}`,
  );
}

/** Indices of the windows shard s runs (all of them without a shard). */
export function shardWindows(windows: number, s: CalibShard | undefined): number[] {
  const all = [...Array(windows).keys()];
  if (!s) return all;
  check(
    s.count <= windows,
    `--calib-shard ${s.index}/${s.count}: ${windows} calibration windows cannot be split into ${s.count} non-empty shards; use fewer shards or more --samples`,
  );
  return all.filter((w) => w % s.count === s.index - 1);
}

/**
 * A calibration pass's statistics, summed exactly: per layer act² [G, I], block influence, and
 * the total statistic weight. Non-finite values are not summed; the first layer that had one is kept.
 */
export class ExactStats {
  readonly act2: ExactSums[];
  readonly influence: ExactSums;
  readonly weightTotal = new ExactSums(1);
  /** First layer whose statistics were NaN or infinite (−1: none). */
  broken = -1;

  constructor(
    layers: number,
    readonly groups: number,
    readonly I: number,
  ) {
    this.act2 = Array.from({ length: layers }, () => new ExactSums(groups * I));
    this.influence = new ExactSums(layers);
  }

  /** Engine onSequenceStats: one sequence's act² [G, I] and influence at a layer. */
  add(layer: number, act2: Float32Array, influence: number): void {
    const sums = this.act2[layer];
    let finite = Number.isFinite(influence);
    for (let j = 0; j < act2.length; j++) {
      if (Number.isFinite(act2[j])) sums.add(j, act2[j]);
      else finite = false;
    }
    if (finite) this.influence.add(layer, influence);
    else if (this.broken < 0 || layer < this.broken) this.broken = layer;
  }

  addWeights(weights: Float32Array): void {
    for (const w of weights) this.weightTotal.add(0, w);
  }

  /**
   * layerScores rounded to doubles, without BigInts where the sum is exactly a double (almost
   * always): the same numbers, cheaply (the split search asks for many candidates per layer).
   */
  layerNumbers(layer: number, included: boolean[]): number[] {
    const sums = this.act2[layer];
    const out = new Array<number>(this.I);
    for (let j = 0; j < this.I; j++) {
      let s: number | null = 0;
      for (let g = 0; g < included.length && s != null; g++) {
        if (!included[g]) continue;
        const x = sums.double(g * this.I + j);
        s = x == null ? null : exactAdd(s, x);
      }
      out[j] = s ?? scaledToNumber(included.reduce((sum, inc, g) => (inc ? sum + sums.scaled(g * this.I + j) : sum), 0n));
    }
    return out;
  }

  /** A candidate's exact channel scores at a layer: the sum of the act² groups it counts ([I], scaled). */
  layerScores(layer: number, included: boolean[]): bigint[] {
    const sums = this.act2[layer];
    return Array.from({ length: this.I }, (_, j) => included.reduce((sum, inc, g) => (inc ? sum + sums.scaled(g * this.I + j) : sum), 0n));
  }
}
