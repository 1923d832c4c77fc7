/**
 * Least-squares compensation of down_proj for removed FFN channels (beyond the paper; see
 * docs/compensation.md). For one layer with down_proj W [D, I], Gram G = Σ_t w_t h_t h_tᵀ of its
 * inputs [I, I], kept channels K and removed R:
 *     W′ = argmin Σ_t w_t ‖W h_t − W′ h_t[K]‖² + λ ‖W′ − W_K‖²  =  W_K + W_R G_RK (G_KK + λ I)⁻¹
 * with λ = damp · mean(diag G_KK), as SparseGPT damps its Hessian. Solved with a Cholesky of
 * A = G_KK + λI and two triangular solves against the D right-hand sides, all recursive by halves
 * so that their O(n³) parts are wide float32 ONNX Runtime MatMuls; only the nb × nb diagonal
 * blocks are factored and inverted in JavaScript, in float64. float32 because G itself is
 * a float32 sum and ONNX Runtime's float64 MatMul runs at about a tenth of the float32 rate: on the
 * oracle cases W′ stays within 3.5e-6 of max |W′| of the float64 NumPy solve (the test allows 1e-4).
 */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../engine/onnx-graph.js';
import { type GramRowBlock, GramRowGroups, gramLayout, PackedGram } from '../engine/gram-layout.js';
import { createSession } from '../engine/session.js';
import { CompactError } from '../util/errors.js';
import type { Selection } from './greedy-removal.js';
import { keptGramParts } from './kept-gram.js';

/** Default damping: λ = DAMP · mean diag(G_KK) (measured in docs/compensation.md). */
export const DEFAULT_DAMP = 0.01;
/**
 * Diagonal block size of the Cholesky and the triangular solves, where their recursion stops (tests
 * lower it so small layers recurse). At n = 8192, D = 4096 (Llama-3.1-8B at --ratio 0.35) 64, 128
 * and 256 took the same (Cholesky 2.5–2.9 s, solves 4.7–5.0 s, quiet machine); halving the
 * solves' steps instead of sweeping thin 128-column blocks left to right took them from 8.7–9.6 s.
 */
export const BLOCK = { size: 128 };

/** Where compensateLayer's time went, summed over its calls (benchmarks read it; nothing else does). */
export interface SolveClock {
  layers: number;
  totalMs: number;
  /** The system: W_K and W_R out of W, and G_KK and W_R·G_RK formed from the Gram's rows (kept-gram.ts), or A and G_KR gathered from the packed Gram. */
  gatherMs: number;
  /** W_R·G_RK from G_KR (packed Gram only). */
  productMs: number;
  choleskyMs: number;
  /** The two triangular solves against the D right-hand sides. */
  solveMs: number;
  /** Choosing the channels greedily (greedy-removal.ts), outside totalMs. */
  selectMs: number;
}
export const solveClock: SolveClock = { layers: 0, totalMs: 0, gatherMs: 0, productMs: 0, choleskyMs: 0, solveMs: 0, selectMs: 0 };

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

/**
 * float32 products on ONNX Runtime for the solve. The in-place ones write through one output buffer
 * reused from call to call, and the solve's matrices come from buffers reused the same way, so a
 * layer's ≈ 200 products leave no garbage behind (fresh arrays cost a compensated
 * Qwen2.5-0.5B-shaped prune ≈ 300 MB of new memory per layer, paid in page faults and forced
 * garbage collections). The buffers live for one layer (`releaseBuffers`): kept through the next
 * layer's forward pass, an 8B-shaped layer's (A alone is 256 MB) would add to the peak memory.
 */
export class Gemm {
  private sessions: Partial<Record<GraphKind, Promise<ort.InferenceSession>>> = {};
  private buffers = new Map<string, Float32Array>();
  constructor(readonly threads?: number) {}

  /**
   * `length` floats of the buffer kept under `slot` (grown to the longest asked for): whatever they
   * held is overwritten by the slot's next user.
   */
  scratch(slot: 'A' | 'wR' | 'gKR' | 'y', length: number): Float32Array {
    let buffer = this.buffers.get(slot);
    if (!buffer || buffer.length < length) this.buffers.set(slot, (buffer = new Float32Array(length)));
    return buffer.subarray(0, length);
  }

  /** Drops the buffers (the sessions stay): called once a layer is solved. */
  releaseBuffers(): void {
    this.buffers.clear();
  }

  /** a·bᵀ, a fresh array: a [M, K], b [N, K] → [M, N] (the Transpose fuses into the MatMul). */
  async abt(a: Float32Array, M: number, K: number, b: Float32Array, N: number): Promise<Float32Array> {
    if (M === 0 || N === 0 || K === 0) return new Float32Array(M * N);
    const out = await (await this.session('abt')).run({ a: new ort.Tensor('float32', a, [M, K]), b: new ort.Tensor('float32', b, [N, K]) });
    return out.y.data as Float32Array;
  }

  /**
   * In place: region c ← c − a·bᵀ ('abt') or c − a·b ('ab'), all three regions of whole matrices
   * sliced in the graph (no copies in JavaScript): the update step of the recursive Cholesky and
   * triangular solves, and of the greedy selection.
   */
  async subtract(kind: 'abt' | 'ab', c: View, a: View, b: View): Promise<void> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, v] of [
      ['C', c],
      ['A', a],
      ['B', b],
    ] as const)
      Object.assign(feeds, regionFeeds(name, v));
    await this.intoRegion(`minus_${kind}`, feeds, c);
  }

  /** In place: region v [M, w] ← v · Bᵀ ('abt') or v · B ('ab'), with B [w, w]. */
  async multiply(kind: 'abt' | 'ab', v: View, B: Float32Array): Promise<void> {
    const w = v.c1 - v.c0;
    await this.intoRegion(`times_${kind}`, { ...regionFeeds('C', v), B: new ort.Tensor('float32', B, [w, w]) }, v);
  }

  private async intoRegion(kind: GraphKind, feeds: Record<string, ort.Tensor>, region: View): Promise<void> {
    const [M, N] = [region.r1 - region.r0, region.c1 - region.c0];
    const y = this.scratch('y', M * N);
    await (await this.session(kind)).run(feeds, { y: new ort.Tensor('float32', y, [M, N]) });
    copyIn(region, y);
  }

  private session(kind: GraphKind): Promise<ort.InferenceSession> {
    // No spinning (session.ts): the solve alternates between these sessions every few milliseconds,
    // and spinning pools steal each other's cores (one Qwen2.5-0.5B-shaped layer's Cholesky and solves:
    // 377–469 ms against 555–687 spinning, load 4). No arena for the ones that slice whole matrices:
    // their slices would stay allocated between layers.
    return (this.sessions[kind] ??= createSession(GRAPHS[kind](), this.threads, false, kind === 'abt'));
  }

  async release(): Promise<void> {
    for (const session of Object.values(this.sessions)) await (await session).release();
    this.sessions = {};
    this.releaseBuffers();
  }
}

/** A whole row-major matrix. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}
/** Rows [r0, r1) and columns [c0, c1) of a matrix. */
interface View {
  m: Matrix;
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}
export const view = (m: Matrix, r0: number, r1: number, c0: number, c1: number): View => ({ m, r0, r1, c0, c1 });

/** A view as the graphs take it: the whole matrix `name` and its region's corners `name0`, `name1`. */
function regionFeeds(name: string, v: View): Record<string, ort.Tensor> {
  return {
    [name]: new ort.Tensor('float32', v.m.data, [v.m.rows, v.m.cols]),
    [`${name}0`]: new ort.Tensor('int64', BigInt64Array.from([v.r0, v.c0], BigInt), [2]),
    [`${name}1`]: new ort.Tensor('int64', BigInt64Array.from([v.r1, v.c1], BigInt), [2]),
  };
}

type GraphKind = 'abt' | 'minus_abt' | 'minus_ab' | 'times_abt' | 'times_ab';
const GRAPHS: Record<GraphKind, () => Uint8Array> = {
  abt: gemmGraph,
  minus_abt: () =>
    regionGraph('minus_abt', (g, [c, a, b]) => g.op('Sub', [c, g.op('MatMul', [a, g.op('Transpose', [b], { perm: [1, 0] })])])),
  minus_ab: () => regionGraph('minus_ab', (g, [c, a, b]) => g.op('Sub', [c, g.op('MatMul', [a, b])])),
  times_abt: () =>
    regionGraph('times_abt', (g, [c]) => g.op('MatMul', [c, g.op('Transpose', [g.input('B', ['W', 'W'])], { perm: [1, 0] })]), ['C']),
  times_ab: () => regionGraph('times_ab', (g, [c]) => g.op('MatMul', [c, g.input('B', ['W', 'W'])]), ['C']),
};

/** y = f(regions of whole matrices): each of `names` comes as a whole matrix and its region's corners (regionFeeds). */
function regionGraph(name: string, f: (g: GraphBuilder, regions: string[]) => string, names = ['C', 'A', 'B']): Uint8Array {
  const g = new GraphBuilder();
  const regions = names.map((m) =>
    g.op('Slice', [g.input(m, [`${m}rows`, `${m}cols`]), g.input(`${m}0`, [2], 'int64'), g.input(`${m}1`, [2], 'int64'), g.ints([0, 1])]),
  );
  g.output(f(g, regions), 'y', ['M', 'N']);
  return g.toBytes(name);
}

function gemmGraph(): Uint8Array {
  const g = new GraphBuilder();
  const a = g.input('a', ['M', 'K']);
  const b = g.input('b', ['N', 'K']);
  g.output(g.op('MatMul', [a, g.op('Transpose', [b], { perm: [1, 0] })]), 'y', ['M', 'N']);
  return g.toBytes('gemm');
}

/**
 * A layer's Gram as the engine gives it: its rows √w_t · h_t in blocks (kept-gram.ts forms only
 * G_KK and W_R·G_RK from them, once K is known).
 */
export interface GramRows {
  I: number;
  blocks: readonly GramRowBlock[];
}

/**
 * A candidate's Gram: the sum of the Gram groups it counts, from what the engine hands on: the
 * packed Gram of every group [C, P] (summed into one buffer, reused from call to call), or the
 * groups' rows (their row blocks; nothing is summed until kept-gram.ts forms G_KK).
 */
export class GroupGrams {
  private summed: Float32Array | null = null;

  of(gram: Float32Array | GramRowGroups, groups: readonly number[], I: number): PackedGram | GramRows {
    if (gram instanceof GramRowGroups) return { I, blocks: gram.blocks(groups) };
    const layout = gramLayout(I);
    const parts = groups.map((g) => gram.subarray(g * layout.length, (g + 1) * layout.length));
    if (parts.length === 1) return new PackedGram(layout, parts[0]);
    this.summed ??= new Float32Array(layout.length);
    this.summed.set(parts[0]);
    for (const part of parts.slice(1)) for (let i = 0; i < part.length; i++) this.summed[i] += part[i];
    return new PackedGram(layout, this.summed);
  }
}

/**
 * Whether a pass's Grams come as rows (kept-gram.ts: G_KK and W_R·G_RK per candidate, ≈ 0.75× the
 * work of the packed Gram and W_R·G_RK for one candidate) or packed (one Gram over all channels,
 * shared by every candidate): rows only where a single candidate is compensated and its channels
 * are chosen by act² (the greedy selection reads the whole Gram).
 */
export const gramsAsRows = (compensatedCandidates: number, selection: Selection): boolean =>
  compensatedCandidates === 1 && selection === 'act2';

/**
 * W′ for one layer. `down` is W [D, I] (f32, HF layout), `gram` G [I, I] (its rows, or packed
 * upper block triangle: gram-layout.ts), `keep` the kept channels in ascending order.
 */
export async function compensateLayer(
  gemm: Gemm,
  down: Float32Array,
  gram: PackedGram | GramRows,
  keep: readonly number[],
  damp: number,
): Promise<Compensated> {
  const t0 = performance.now();
  const I = gram.I;
  const D = down.length / I;
  const n = keep.length;
  const kept = new Float32Array(D * n); // W_K [D, n]
  for (let d = 0; d < D; d++) for (let c = 0; c < n; c++) kept[d * n + c] = down[d * I + keep[c]];
  const isKept = new Uint8Array(I);
  for (const j of keep) isKept[j] = 1;
  const removed = [...Array(I).keys()].filter((j) => !isKept[j]);
  const r = removed.length;
  const wR = gemm.scratch('wR', D * r); // W_R [D, r]
  for (let d = 0; d < D; d++) for (let c = 0; c < r; c++) wR[d * r + c] = down[d * I + removed[c]];

  // From the Gram's rows: G_KK packed over the kept channels, and W_R·G_RK (null: both come out of the packed G below).
  let fromRows: { gKK: PackedGram; z: Float32Array } | null = null;
  const diag = new Float64Array(n); // diag G_KK
  if (gram instanceof PackedGram) keep.forEach((j, a) => (diag[a] = gram.at(j, j)));
  else if (r === 0 || n === 0)
    diagonalOf(gram, keep, diag); // nothing to solve: only the diagonal is reported
  else {
    const { packed, z } = await keptGramParts(gram.blocks, I, keep, removed, wR, gemm.threads);
    fromRows = { gKK: new PackedGram(gramLayout(n), packed), z };
    for (let a = 0; a < n; a++) diag[a] = fromRows.gKK.at(a, a);
  }
  let diagSum = 0;
  let silentKept = 0;
  for (const gjj of diag) {
    diagSum += gjj;
    if (!(gjj > 0)) silentKept++;
  }
  if (r === 0) return { weight: kept, lambda: 0, silentKept, noStatistics: false }; // nothing to absorb: W′ = W exactly
  if (!(diagSum > 0)) return { weight: kept, lambda: 0, silentKept, noStatistics: true };
  const lambda = (damp * diagSum) / n;

  // A = G_KK + λI [n, n] and Z = W_R·G_RK [D, n].
  let A: Float32Array;
  let Z: Float32Array;
  let t1: number;
  if (fromRows) {
    [A, Z] = [fromRows.gKK.full(gemm.scratch('A', n * n)), fromRows.z];
    t1 = performance.now();
  } else {
    const gathered = gatherSystem(gram as PackedGram, keep, removed, gemm.scratch('A', n * n), gemm.scratch('gKR', n * r));
    t1 = performance.now();
    [A, Z] = [gathered.A, await gemm.abt(wR, D, r, gathered.gKR, n)];
  }
  for (let a = 0; a < n; a++) A[a * n + a] = diag[a] + lambda;
  const t2 = performance.now();
  const L: Matrix = { data: A, rows: n, cols: n };
  const inverses = await recursiveCholesky(gemm, L);
  const t3 = performance.now();
  const X: Matrix = { data: Z, rows: D, cols: n }; // Z A⁻¹ [D, n], in place: Y Lᵀ = Z, then X L = Y
  await forwardSolve(gemm, L, inverses, 0, n, X, 0, D);
  await backwardSolve(gemm, L, inverses, 0, n, X);
  const t4 = performance.now();
  solveClock.layers++;
  solveClock.gatherMs += t1 - t0;
  solveClock.productMs += t2 - t1;
  solveClock.choleskyMs += t3 - t2;
  solveClock.solveMs += t4 - t3;
  const weight = kept; // W′ = W_K + X, in place
  for (let i = 0; i < weight.length; i++) {
    weight[i] += X.data[i];
    if (!Number.isFinite(weight[i]))
      throw new CompactError(
        `compensation produced a non-finite weight (λ = ${lambda}); nothing was written — try --no-compensate or more calibration text`,
      );
  }
  solveClock.totalMs += performance.now() - t0;
  return { weight, lambda, silentKept, noStatistics: false };
}

/** diag G_KK from the Gram's rows into out [n] (used only where nothing is removed, or nothing kept). */
function diagonalOf(gram: GramRows, keep: readonly number[], out: Float64Array): void {
  for (const { rows, count } of gram.blocks)
    for (let t = 0; t < count; t++)
      for (let a = 0; a < keep.length; a++) {
        const v = rows[t * gram.I + keep[a]];
        out[a] += v * v;
      }
}

/**
 * A = G_KK [n, n] and G_KR [n, r] out of the packed Gram, in one pass over it in storage order,
 * into the buffers given (every entry is written). Every entry is the one PackedGram.row(kept
 * channel) reads: a diagonal block is stored whole, so its entries go only where their own row puts
 * them; an entry above the diagonal blocks also goes to its mirror.
 */
function gatherSystem(
  gram: PackedGram,
  keep: readonly number[],
  removed: readonly number[],
  A: Float32Array, // [n, n]
  gKR: Float32Array, // [n, r]
): { A: Float32Array; gKR: Float32Array } {
  const { I, blocks } = gram.layout;
  const packed = gram.packed;
  const [n, r] = [keep.length, removed.length];
  const at = new Int32Array(I); // kept channel: its index in K; removed: −1 − its index in R
  keep.forEach((j, a) => (at[j] = a));
  removed.forEach((j, c) => (at[j] = -1 - c));
  for (const { start, size, offset } of blocks) {
    const width = I - start;
    const end = start + size;
    for (let row = 0; row < size; row++) {
      const pa = at[start + row];
      const base = offset + row * width - start; // packed index of G[start + row, b] is base + b
      for (let b = start; b < I; b++) {
        const v = packed[base + b];
        const pb = at[b];
        if (pa >= 0) {
          if (pb >= 0) {
            A[pa * n + pb] = v;
            if (b >= end) A[pb * n + pa] = v;
          } else gKR[pa * r - 1 - pb] = v;
        } else if (pb >= 0 && b >= end) gKR[pb * r - 1 - pa] = v;
      }
    }
  }
  return { A, gKR };
}

/** Where a range of channels [a, c) of more than one diagonal block splits: half its blocks on each side. */
const middle = (a: number, c: number): number => a + Math.ceil(Math.ceil((c - a) / BLOCK.size) / 2) * BLOCK.size;

/** Writes values [rows, cols] into a view. */
function copyIn(v: View, values: Float32Array): void {
  const w = v.c1 - v.c0;
  for (let r = v.r0; r < v.r1; r++) v.m.data.set(values.subarray((r - v.r0) * w, (r - v.r0 + 1) * w), r * v.m.cols + v.c0);
}

/**
 * In place: the lower triangle of A [n, n] becomes L with A = L Lᵀ, recursively by halves (the
 * first half factored, the panel below it solved against it, the second half's trailing block
 * updated by one MatMul, then factored), so nearly all the work is in wide MatMuls; a single
 * diagonal block (BLOCK.size) is factored in JavaScript in float64. The strict upper triangle is
 * overwritten with scratch values. Returns L_jj⁻¹ of every diagonal block.
 */
async function recursiveCholesky(gemm: Gemm, A: Matrix): Promise<Float32Array[]> {
  const inverses: Float32Array[] = [];
  const factor = async (a: number, c: number): Promise<void> => {
    if (c - a <= BLOCK.size) {
      const jb = c - a;
      const Ljj = new Float64Array(jb * jb); // [jb, jb]
      for (let i = 0; i < jb; i++) for (let j = 0; j <= i; j++) Ljj[i * jb + j] = A.data[(a + i) * A.cols + a + j];
      choleskySmall(Ljj, jb, a);
      for (let i = 0; i < jb; i++) for (let j = 0; j <= i; j++) A.data[(a + i) * A.cols + a + j] = Ljj[i * jb + j];
      inverses[a / BLOCK.size] = Float32Array.from(invertLower(Ljj, jb));
      return;
    }
    const m = middle(a, c);
    await factor(a, m);
    await forwardSolve(gemm, A, inverses, a, m, A, m, c); // L21 = A21 · L11⁻ᵀ
    await gemm.subtract('abt', view(A, m, c, m, c), view(A, m, c, a, m), view(A, m, c, a, m)); // A22 − L21 L21ᵀ
    await factor(m, c);
  };
  await factor(0, A.rows);
  return inverses;
}

/**
 * In place on rows [r0, r1) of Z, columns [a, c) (numbered as L's): Y with Y · L[a:c, a:c]ᵀ = Z.
 * By halves: the first half solved, the second's right-hand side less Y₁ · L[m:c, a:m]ᵀ (one MatMul), then solved.
 */
async function forwardSolve(
  gemm: Gemm,
  L: Matrix,
  inverses: Float32Array[],
  a: number,
  c: number,
  Z: Matrix,
  r0: number,
  r1: number,
): Promise<void> {
  if (c - a <= BLOCK.size) {
    await gemm.multiply('abt', view(Z, r0, r1, a, c), inverses[a / BLOCK.size]); // Z_j · L_jj⁻ᵀ
    return;
  }
  const m = middle(a, c);
  await forwardSolve(gemm, L, inverses, a, m, Z, r0, r1);
  await gemm.subtract('abt', view(Z, r0, r1, m, c), view(Z, r0, r1, a, m), view(L, m, c, a, m));
  await forwardSolve(gemm, L, inverses, m, c, Z, r0, r1);
}

/**
 * In place on Y [D, n]: X with X · L = Y, by halves from the last: the second half solved, the
 * first's right-hand side less X₂ · L[m:c, a:m] (one MatMul), then solved.
 */
async function backwardSolve(gemm: Gemm, L: Matrix, inverses: Float32Array[], a: number, c: number, Y: Matrix): Promise<void> {
  if (c - a <= BLOCK.size) {
    await gemm.multiply('ab', view(Y, 0, Y.rows, a, c), inverses[a / BLOCK.size]); // Y_j · L_jj⁻¹
    return;
  }
  const m = middle(a, c);
  await backwardSolve(gemm, L, inverses, m, c, Y);
  await gemm.subtract('ab', view(Y, 0, Y.rows, a, m), view(Y, 0, Y.rows, m, c), view(L, m, c, a, m));
  await backwardSolve(gemm, L, inverses, a, m, Y);
}

/** A⁻¹ of a symmetric positive definite A [n, n] (A is overwritten by its Cholesky factor): X with X·L·Lᵀ = I. */
export async function inverseSpd(gemm: Gemm, A: Matrix): Promise<Matrix> {
  const n = A.rows;
  const inverses = await recursiveCholesky(gemm, A);
  const X: Matrix = { data: new Float32Array(n * n), rows: n, cols: n };
  for (let i = 0; i < n; i++) X.data[i * n + i] = 1;
  await forwardSolve(gemm, A, inverses, 0, n, X, 0, n); // L⁻ᵀ
  await backwardSolve(gemm, A, inverses, 0, n, X); // L⁻ᵀ L⁻¹
  return X;
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

/** L⁻¹ of a lower-triangular [m, m]: row i from the rows above it (forward substitution on the identity, by rows). */
function invertLower(L: Float64Array, m: number): Float64Array {
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    const row = i * m;
    inv[row + i] = 1;
    for (let k = 0; k < i; k++) {
      const l = L[row + k];
      const above = k * m;
      for (let c = 0; c <= k; c++) inv[row + c] -= l * inv[above + c];
    }
    const d = L[row + i];
    for (let c = 0; c <= i; c++) inv[row + c] /= d;
  }
  return inv;
}
