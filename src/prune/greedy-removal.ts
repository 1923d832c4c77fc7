/**
 * Which FFN channels a compensated layer removes with --selection greedy (beyond the paper;
 * docs/compensation.md): greedily the channels whose removal the refitted down_proj misses least,
 * Optimal Brain Surgeon's cost for an input channel j of a linear layer,
 *     cost_j = ‖W_:,j‖² / [H⁻¹]_jj,    H = G + λI,
 * recomputed after every round on the weights and inverse Gram updated for the channels removed so
 * far (ZipLM's structured OBS), in rounds of ⌈I / ROUNDS_PER_LAYER⌉ channels. The order does not
 * depend on how many go, so candidates that share a Gram share one order (each takes a prefix).
 * With G diagonal the cost is act²·‖W_:,j‖²; the off-diagonal terms are what compensation uses,
 * so channels whose output the others can rebuild go first. The weights are refitted afterwards for the chosen channels
 * (compensate.ts), so the float32 updates here decide only which channels go.
 * Each round, R the channels it removes and X = (H⁻¹_RR)⁻¹ H⁻¹_R: [b, I]:
 *     W ← W − W_:R X,   H⁻¹ ← H⁻¹ − H⁻¹_:R X
 * (the Schur complement: afterwards H⁻¹ restricted to the channels left is the inverse of their H).
 */
import { PackedGram } from '../engine/gram-layout.js';
import { type Gemm, inverseSpd, type Matrix, solveClock, view } from './compensate.js';

/**
 * How compensation chooses the removed channels: the lowest common act² (the paper's channels,
 * refitted; the default), or greedily by OBS cost (below): better where many channels go, but its
 * A⁻¹ and updates (≈ 7/3·I³ + 2·r·I·(I + D) FLOPs per layer) cost more than the whole calibration
 * pass on real shapes (Qwen2.5-0.5B: 7× the sliced prune's time), so it is asked for.
 */
export const SELECTIONS = ['greedy', 'act2'] as const;
export type Selection = (typeof SELECTIONS)[number];
export const DEFAULT_SELECTION: Selection = 'act2';

/**
 * Rounds per layer if every channel went: rounds of ⌈I / 64⌉ channels. Measured on
 * tinystories-llama32k (I = 512), FFN-only I′ 256: rounds of 1, 8 and 32 channels give the same
 * held-out bits per byte (within 0.001), rounds of 128 lose 0.0017.
 */
export const ROUNDS_PER_LAYER = 64;
/** Rows of H⁻¹ updated per MatMul (bounds the update's scratch memory: 1024 × I f32). */
const UPDATE_ROWS = 1024;

/** The kept channels (ascending) when the first `remove` channels of a removal order go. */
export function keptAfter(order: readonly number[], I: number, remove: number): number[] {
  const gone = new Set(order.slice(0, remove));
  return [...Array(I).keys()].filter((j) => !gone.has(j));
}

/** The first `remove` channels, in removal order, of a layer whose down_proj is `down` [D, I]. */
export async function removalOrder(gemm: Gemm, down: Float32Array, gram: PackedGram, remove: number, damp: number): Promise<number[]> {
  const I = gram.I;
  const D = down.length / I;
  let mean = 0;
  for (let j = 0; j < I; j++) mean += gram.at(j, j) / I;
  // No statistics (compensate.ts reports it): the last channels go, as the act² ranking of all-zero scores has it.
  if (!(mean > 0)) return [...Array(I).keys()].reverse().slice(0, remove);
  const order: number[] = [];
  if (remove === 0) return order;
  const t0 = performance.now();
  const A: Matrix = { data: gram.full(), rows: I, cols: I }; // G + λI [I, I]
  for (let j = 0; j < I; j++) A.data[j * I + j] += damp * mean;
  const H = await inverseSpd(gemm, A); // [I, I]
  const W: Matrix = { data: Float32Array.from(down), rows: D, cols: I };
  const alive = new Uint8Array(I).fill(1);
  const silent = Uint8Array.from({ length: I }, (_, j) => (gram.at(j, j) === 0 ? 1 : 0));
  const perRound = Math.ceil(I / ROUNDS_PER_LAYER);
  for (;;) {
    const R = cheapest(W, H, alive, silent, Math.min(perRound, remove - order.length));
    R.forEach((j) => (alive[j] = 0));
    order.push(...R);
    if (order.length === remove) {
      solveClock.selectMs += performance.now() - t0;
      return order;
    }
    const b = R.length;
    const hR: Matrix = { data: new Float32Array(I * b), rows: I, cols: b }; // H⁻¹_:R [I, b]
    for (let i = 0; i < I; i++) for (let p = 0; p < b; p++) hR.data[i * b + p] = H.data[i * I + R[p]];
    const hRR = new Float64Array(b * b); // H⁻¹_RR [b, b]
    for (let p = 0; p < b; p++) for (let q = 0; q < b; q++) hRR[p * b + q] = H.data[R[p] * I + R[q]];
    // X = (H⁻¹_RR)⁻¹ H⁻¹_R: = ((H⁻¹_RR)⁻¹ · H⁻¹_:Rᵀ) [b, I]
    const X: Matrix = { data: await gemm.abt(Float32Array.from(invertSmall(hRR, b)), b, b, hR.data, I), rows: b, cols: I };
    const wR: Matrix = { data: new Float32Array(D * b), rows: D, cols: b }; // W_:R [D, b]
    for (let d = 0; d < D; d++) for (let p = 0; p < b; p++) wR.data[d * b + p] = W.data[d * I + R[p]];
    await gemm.subtract('ab', view(W, 0, D, 0, I), view(wR, 0, D, 0, b), view(X, 0, b, 0, I));
    for (let r0 = 0; r0 < I; r0 += UPDATE_ROWS) {
      const r1 = Math.min(I, r0 + UPDATE_ROWS);
      await gemm.subtract('ab', view(H, r0, r1, 0, I), view(hR, r0, r1, 0, b), view(X, 0, b, 0, I));
    }
  }
}

/**
 * The `b` live channels of lowest cost ‖W_:,j‖² / H⁻¹_jj (ties: lower index). A channel that never
 * fires on a counted token costs nothing (the damping alone would charge it λ‖W_:,j‖²).
 */
function cheapest(W: Matrix, H: Matrix, alive: Uint8Array, silent: Uint8Array, b: number): number[] {
  const I = W.cols;
  const norms = new Float64Array(I);
  for (let d = 0; d < W.rows; d++) for (let j = 0; j < I; j++) norms[j] += W.data[d * I + j] ** 2;
  // A non-positive H⁻¹_jj can only be float32 drift on a channel the others rebuild exactly: keep it.
  const costs = norms.map((w2, j) => (silent[j] ? 0 : H.data[j * I + j] > 0 ? w2 / H.data[j * I + j] : Infinity));
  const live = [...Array(I).keys()].filter((j) => alive[j]);
  return live.sort((a, c) => costs[a] - costs[c] || a - c).slice(0, b);
}

/** Inverse of a small symmetric positive definite [b, b] (Gauss-Jordan, float64). */
function invertSmall(M: Float64Array, b: number): Float64Array {
  const A = Float64Array.from(M);
  const X = new Float64Array(b * b);
  for (let i = 0; i < b; i++) X[i * b + i] = 1;
  for (let c = 0; c < b; c++) {
    const p = A[c * b + c];
    for (let j = 0; j < b; j++) [A[c * b + j], X[c * b + j]] = [A[c * b + j] / p, X[c * b + j] / p];
    for (let r = 0; r < b; r++) {
      const f = A[r * b + c];
      if (r === c || f === 0) continue;
      for (let j = 0; j < b; j++) [A[r * b + j], X[r * b + j]] = [A[r * b + j] - f * A[c * b + j], X[r * b + j] - f * X[c * b + j]];
    }
  }
  return X;
}
