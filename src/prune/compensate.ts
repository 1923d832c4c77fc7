/**
 * Least-squares compensation of down_proj for removed FFN channels (beyond the paper; see
 * docs/compensation.md). For one layer with down_proj W [D, I], Gram G = Σ_t w_t h_t h_tᵀ of its
 * inputs [I, I], kept channels K and removed R:
 *     W′ = argmin Σ_t w_t ‖W h_t − W′ h_t[K]‖² + λ ‖W′ − W_K‖²  =  W_K + W_R G_RK (G_KK + λ I)⁻¹
 * with λ = damp · mean(diag G_KK), as SparseGPT damps its Hessian. Solved with a blocked Cholesky
 * of A = G_KK + λI whose O(n³) parts (W_R·G_RK, panel and trailing updates, the two triangular
 * solves against the D right-hand sides) are float32 ONNX Runtime MatMuls; only the nb × nb
 * diagonal blocks are factored and inverted in JavaScript, in float64. float32 because G itself is
 * a float32 sum and ONNX Runtime's float64 MatMul runs at about a tenth of the float32 rate: on the
 * oracle cases W′ stays within 3.5e-6 of max |W′| of the float64 NumPy solve (the test allows 1e-4).
 */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../engine/onnx-graph.js';
import type { PackedGram } from '../engine/gram-layout.js';
import { createSession } from '../engine/session.js';
import { CompactError } from '../util/errors.js';

/** Default damping: λ = DAMP · mean diag(G_KK) (measured in docs/compensation.md). */
export const DEFAULT_DAMP = 0.01;
/** Diagonal block size of the Cholesky (tests lower it so small layers take the blocked path). */
export const BLOCK = { size: 256 };

export interface Compensated {
  /** W′ [D, |K|] in f32. */
  weight: Float32Array;
  /** λ added to the diagonal (0 when nothing was removed). */
  lambda: number;
  /** Kept channels whose Gram diagonal is 0 (never active on a weighted token): held by the damping alone. */
  silentKept: number;
  /** No weighted calibration position reached the layer (G = 0): W′ = W_K, uncompensated. */
  noStatistics: boolean;
}

/** float32 a·bᵀ on ONNX Runtime: a [M, K], b [N, K] → [M, N] (the Transpose fuses into the MatMul). */
export class Gemm {
  private session?: Promise<ort.InferenceSession>;
  constructor(private readonly threads?: number) {}

  async abt(a: Float32Array, M: number, K: number, b: Float32Array, N: number): Promise<Float32Array> {
    if (M === 0 || N === 0 || K === 0) return new Float32Array(M * N);
    const session = await (this.session ??= createSession(gemmGraph(), this.threads));
    const out = await session.run({ a: new ort.Tensor('float32', a, [M, K]), b: new ort.Tensor('float32', b, [N, K]) });
    return out.y.data as Float32Array;
  }

  async release(): Promise<void> {
    if (this.session) await (await this.session).release();
    this.session = undefined;
  }
}

function gemmGraph(): Uint8Array {
  const g = new GraphBuilder();
  const a = g.input('a', ['M', 'K']);
  const b = g.input('b', ['N', 'K']);
  g.output(g.op('MatMul', [a, g.op('Transpose', [b], { perm: [1, 0] })]), 'y', ['M', 'N']);
  return g.toBytes('gemm');
}

/**
 * W′ for one layer. `down` is W [D, I] (f32, HF layout), `gram` G [I, I] (packed upper block
 * triangle, gram-layout.ts), `keep` the kept channels in ascending order.
 */
export async function compensateLayer(
  gemm: Gemm,
  down: Float32Array,
  gram: PackedGram,
  keep: readonly number[],
  damp: number,
): Promise<Compensated> {
  const I = gram.I;
  const D = down.length / I;
  const n = keep.length;
  const kept = new Float32Array(D * n); // W_K [D, n]
  for (let d = 0; d < D; d++) for (let c = 0; c < n; c++) kept[d * n + c] = down[d * I + keep[c]];
  const isKept = new Uint8Array(I);
  for (const j of keep) isKept[j] = 1;
  const removed = [...Array(I).keys()].filter((j) => !isKept[j]);
  const r = removed.length;
  let diagSum = 0;
  let silentKept = 0;
  for (const j of keep) {
    const gjj = gram.at(j, j);
    diagSum += gjj;
    if (!(gjj > 0)) silentKept++;
  }
  if (r === 0) return { weight: kept, lambda: 0, silentKept, noStatistics: false }; // nothing to absorb: W′ = W exactly
  if (!(diagSum > 0)) return { weight: kept, lambda: 0, silentKept, noStatistics: true };
  const lambda = (damp * diagSum) / n;

  const A = new Float32Array(n * n); // G_KK + λI [n, n]
  const gKR = new Float32Array(n * r); // G_KR [n, r]
  const row = new Float64Array(I);
  for (let a = 0; a < n; a++) {
    gram.row(keep[a], row);
    for (let b = 0; b < n; b++) A[a * n + b] = row[keep[b]];
    A[a * n + a] = row[keep[a]] + lambda;
    for (let c = 0; c < r; c++) gKR[a * r + c] = row[removed[c]];
  }
  const wR = new Float32Array(D * r); // W_R [D, r]
  for (let d = 0; d < D; d++) for (let c = 0; c < r; c++) wR[d * r + c] = down[d * I + removed[c]];
  const Z = await gemm.abt(wR, D, r, gKR, n); // W_R G_RK [D, n]

  const inverses = await blockedCholesky(gemm, A, n);
  const X = await solveRight(gemm, A, inverses, Z, D, n); // Z A⁻¹ [D, n]
  const weight = new Float32Array(D * n);
  for (let i = 0; i < weight.length; i++) {
    weight[i] = kept[i] + X[i];
    if (!Number.isFinite(weight[i]))
      throw new CompactError(
        `compensation produced a non-finite weight (λ = ${lambda}); nothing was written — try --no-compensate or more calibration text`,
      );
  }
  return { weight, lambda, silentKept, noStatistics: false };
}

/** Diagonal blocks [j0, j0 + jb) of an n × n factorisation. */
function blocks(n: number): { j0: number; jb: number }[] {
  const out = [];
  for (let j0 = 0; j0 < n; j0 += BLOCK.size) out.push({ j0, jb: Math.min(BLOCK.size, n - j0) });
  return out;
}

/**
 * In place: the lower triangle of A [n, n] becomes L with A = L Lᵀ (right-looking, by blocks; the
 * strict upper triangle is left as scratch). Returns L_jj⁻¹ of every diagonal block.
 */
async function blockedCholesky(gemm: Gemm, A: Float32Array, n: number): Promise<Float32Array[]> {
  const inverses: Float32Array[] = [];
  for (const { j0, jb } of blocks(n)) {
    const Ljj = new Float64Array(jb * jb); // [jb, jb]
    for (let a = 0; a < jb; a++) for (let b = 0; b <= a; b++) Ljj[a * jb + b] = A[(j0 + a) * n + j0 + b];
    choleskySmall(Ljj, jb, j0);
    for (let a = 0; a < jb; a++) for (let b = 0; b <= a; b++) A[(j0 + a) * n + j0 + b] = Ljj[a * jb + b];
    const inv = Float32Array.from(invertLower(Ljj, jb));
    inverses.push(inv);
    const start = j0 + jb;
    const m = n - start;
    if (m === 0) break;
    const panel = new Float32Array(m * jb); // A[start:, j0:j0+jb] [m, jb]
    for (let a = 0; a < m; a++) for (let b = 0; b < jb; b++) panel[a * jb + b] = A[(start + a) * n + j0 + b];
    const P = await gemm.abt(panel, m, jb, inv, jb); // L[start:, j0 block] = A · L_jj⁻ᵀ [m, jb]
    for (let a = 0; a < m; a++) for (let b = 0; b < jb; b++) A[(start + a) * n + j0 + b] = P[a * jb + b];
    // Trailing update of the lower triangle, one block row at a time: A[i, start:i_end] −= P_i · P[0:i_end]ᵀ.
    for (let i0 = 0; i0 < m; i0 += BLOCK.size) {
      const ib = Math.min(BLOCK.size, m - i0);
      const width = i0 + ib;
      const S = await gemm.abt(P.subarray(i0 * jb, (i0 + ib) * jb), ib, jb, P.subarray(0, width * jb), width); // [ib, width]
      for (let a = 0; a < ib; a++) {
        const row = (start + i0 + a) * n + start;
        for (let b = 0; b < width; b++) A[row + b] -= S[a * width + b];
      }
    }
  }
  return inverses;
}

/** Unblocked Cholesky of a small SPD block in place (lower triangle). */
function choleskySmall(L: Float64Array, m: number, offset: number): void {
  for (let j = 0; j < m; j++) {
    let d = L[j * m + j];
    for (let k = 0; k < j; k++) d -= L[j * m + k] ** 2;
    // G is PSD and λ > 0, so this only fails on non-finite statistics.
    if (!(d > 0))
      throw new CompactError(
        `compensation: the damped Gram matrix is not positive definite at kept channel ${offset + j} (pivot ${d}); nothing was written — try --no-compensate`,
      );
    const s = Math.sqrt(d);
    L[j * m + j] = s;
    for (let i = j + 1; i < m; i++) {
      let v = L[i * m + j];
      for (let k = 0; k < j; k++) v -= L[i * m + k] * L[j * m + k];
      L[i * m + j] = v / s;
    }
  }
}

/** L⁻¹ of a lower-triangular [m, m] (forward substitution on the identity). */
function invertLower(L: Float64Array, m: number): Float64Array {
  const inv = new Float64Array(m * m);
  for (let c = 0; c < m; c++) {
    for (let i = c; i < m; i++) {
      let v = i === c ? 1 : 0;
      for (let k = c; k < i; k++) v -= L[i * m + k] * inv[k * m + c];
      inv[i * m + c] = v / L[i * m + i];
    }
  }
  return inv;
}

/** X = Z A⁻¹ for Z [D, n] with A = L Lᵀ: first Y Lᵀ = Z (blocks ascending), then X L = Y (descending). */
async function solveRight(
  gemm: Gemm,
  L: Float32Array,
  inverses: Float32Array[],
  Z: Float32Array,
  D: number,
  n: number,
): Promise<Float32Array> {
  const cols = (M: Float32Array, from: number, to: number): Float32Array => {
    const w = to - from;
    const out = new Float32Array(D * w); // [D, w]
    for (let d = 0; d < D; d++) out.set(M.subarray(d * n + from, d * n + to), d * w);
    return out;
  };
  const setCols = (M: Float32Array, from: number, part: Float32Array, w: number) => {
    for (let d = 0; d < D; d++) M.set(part.subarray(d * w, (d + 1) * w), d * n + from);
  };
  const transpose = (M: Float32Array, rows: number, cs: number): Float32Array => {
    const out = new Float32Array(rows * cs);
    for (let a = 0; a < rows; a++) for (let b = 0; b < cs; b++) out[b * rows + a] = M[a * cs + b];
    return out;
  };
  const bs = blocks(n);
  const Y = new Float32Array(D * n);
  for (const [k, { j0, jb }] of bs.entries()) {
    const rhs = cols(Z, j0, j0 + jb); // [D, jb]
    if (j0 > 0) {
      const Lrow = new Float32Array(jb * j0); // L[j0 block, 0:j0] [jb, j0]
      for (let a = 0; a < jb; a++) Lrow.set(L.subarray((j0 + a) * n, (j0 + a) * n + j0), a * j0);
      const T = await gemm.abt(cols(Y, 0, j0), D, j0, Lrow, jb); // Y[:, :j0] · L[j, :j0]ᵀ [D, jb]
      for (let i = 0; i < rhs.length; i++) rhs[i] -= T[i];
    }
    setCols(Y, j0, await gemm.abt(rhs, D, jb, inverses[k], jb), jb); // · L_jj⁻ᵀ
  }
  const X = new Float32Array(D * n);
  for (let k = bs.length - 1; k >= 0; k--) {
    const { j0, jb } = bs[k];
    const start = j0 + jb;
    const m = n - start;
    const rhs = cols(Y, j0, start); // [D, jb]
    if (m > 0) {
      const LcolT = new Float32Array(jb * m); // L[start:, j0 block]ᵀ [jb, m]
      for (let a = 0; a < m; a++) for (let b = 0; b < jb; b++) LcolT[b * m + a] = L[(start + a) * n + j0 + b];
      const T = await gemm.abt(cols(X, start, n), D, m, LcolT, jb); // X[:, start:] · L[start:, j] [D, jb]
      for (let i = 0; i < rhs.length; i++) rhs[i] -= T[i];
    }
    setCols(X, j0, await gemm.abt(rhs, D, jb, transpose(inverses[k], jb, jb), jb), jb); // · L_jj⁻¹
  }
  return X;
}
