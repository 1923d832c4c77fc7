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
import { type GramRowBlock, GramRowGroups, gramLayout, PackedGram } from '../engine/gram-layout.js';
import { createSession } from '../engine/session.js';
import { CompactError } from '../util/errors.js';
import { KeptGram } from './kept-gram.js';

/** Default damping: λ = DAMP · mean diag(G_KK) (measured in docs/compensation.md). */
export const DEFAULT_DAMP = 0.01;
/**
 * Diagonal block size of the Cholesky and the triangular solves (tests lower it so small layers
 * take the blocked path). 128: one Qwen2.5-0.5B-shaped layer's Cholesky (n = 3072) took 240–260 ms
 * against 440–530 at 256 (whose diagonal blocks in JavaScript took half of it), 340 at 64 and
 * 330–400 at 192; the solves 300–340 ms at 128 and 256 (same process, load 5–6).
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
}
export const solveClock: SolveClock = { layers: 0, totalMs: 0, gatherMs: 0, productMs: 0, choleskyMs: 0, solveMs: 0 };

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
  private steps: Partial<Record<StepKind, Promise<ort.InferenceSession>>> = {};
  /** The solve's other sessions: G_KK and W_R·G_RK from the Gram's rows. */
  readonly keptGram: KeptGram;
  constructor(private readonly threads?: number) {
    this.keptGram = new KeptGram(threads);
  }

  async abt(a: Float32Array, M: number, K: number, b: Float32Array, N: number): Promise<Float32Array> {
    if (M === 0 || N === 0 || K === 0) return new Float32Array(M * N);
    // No spinning (session.ts): the solve alternates between this session and the step sessions every
    // few milliseconds, and spinning pools steal each other's cores (one Qwen2.5-0.5B-shaped layer's
    // Cholesky and solves: 377–469 ms against 555–687 spinning, load 4).
    const session = await (this.session ??= createSession(gemmGraph(), this.threads, false));
    const out = await session.run({ a: new ort.Tensor('float32', a, [M, K]), b: new ort.Tensor('float32', b, [N, K]) });
    return out.y.data as Float32Array;
  }

  /**
   * One block step of the Cholesky or a triangular solve, the operands sliced in the graph out of
   * the whole matrices (no copies in JavaScript); a region is [row0, col0, row1, col1):
   *   cholesky: B[b] − P[p] · Q[q]ᵀ;  forward: (B[b] − P[p] · Q[q]ᵀ) · invᵀ;  backward: (B[b] − P[p] · Q[q]) · inv.
   */
  async step(
    kind: StepKind,
    B: Float32Array,
    bShape: [number, number],
    b: Region,
    P: Float32Array,
    pShape: [number, number],
    p: Region,
    Q: Float32Array,
    qShape: [number, number],
    q: Region,
    inv?: Float32Array,
  ): Promise<Float32Array> {
    // No arena (session.ts): the slices of the whole matrices would stay allocated between layers.
    // No spinning, as for abt: the solve alternates between its sessions every few milliseconds.
    const session = await (this.steps[kind] ??= createSession(stepGraph(kind), this.threads, false, false));
    const region = (r: Region) => [
      new ort.Tensor('int64', BigInt64Array.from([r[0], r[1]], BigInt), [2]),
      new ort.Tensor('int64', BigInt64Array.from([r[2], r[3]], BigInt), [2]),
    ];
    const [b0, b1] = region(b);
    const [p0, p1] = region(p);
    const [q0, q1] = region(q);
    const feeds: Record<string, ort.Tensor> = {
      B: new ort.Tensor('float32', B, bShape),
      P: new ort.Tensor('float32', P, pShape),
      Q: new ort.Tensor('float32', Q, qShape),
      b0,
      b1,
      p0,
      p1,
      q0,
      q1,
    };
    if (kind !== 'cholesky') feeds.inv = new ort.Tensor('float32', inv!, [Math.sqrt(inv!.length), Math.sqrt(inv!.length)]);
    const out = await session.run(feeds);
    return out.y.data as Float32Array;
  }

  async release(): Promise<void> {
    if (this.session) await (await this.session).release();
    this.session = undefined;
    for (const kind of Object.keys(this.steps) as StepKind[]) await (await this.steps[kind]!).release();
    this.steps = {};
    await this.keptGram.release();
  }
}

type StepKind = 'cholesky' | 'forward' | 'backward';
/** [row0, col0, row1, col1) of a matrix. */
type Region = [number, number, number, number];

function stepGraph(kind: StepKind): Uint8Array {
  const g = new GraphBuilder();
  const slice = (name: string) =>
    g.op('Slice', [
      g.input(name, [`${name}rows`, `${name}cols`]),
      g.input(`${name.toLowerCase()}0`, [2], 'int64'),
      g.input(`${name.toLowerCase()}1`, [2], 'int64'),
      g.ints([0, 1]),
    ]);
  const [b, p, q] = [slice('B'), slice('P'), slice('Q')];
  const product = g.op('MatMul', [p, kind === 'backward' ? q : g.op('Transpose', [q], { perm: [1, 0] })]);
  let y = g.op('Sub', [b, product]);
  if (kind !== 'cholesky') {
    const inv = g.input('inv', ['J', 'J']);
    y = g.op('MatMul', [y, kind === 'forward' ? g.op('Transpose', [inv], { perm: [1, 0] }) : inv]);
  }
  g.output(y, 'y', ['M', 'N']);
  return g.toBytes(`${kind}_step`);
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
 * shared by every candidate): rows only where a single candidate is compensated.
 */
export const gramsAsRows = (compensatedCandidates: number): boolean => compensatedCandidates === 1;

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
  const wR = new Float32Array(D * r); // W_R [D, r]
  for (let d = 0; d < D; d++) for (let c = 0; c < r; c++) wR[d * r + c] = down[d * I + removed[c]];

  // G_KK (all of G, or packed over the kept channels only) and W_R·G_RK (null: from G_KR below).
  let gKK: PackedGram | null = null;
  let product: Float32Array | null = null;
  const diag = new Float64Array(n); // diag G_KK
  if (gram instanceof PackedGram) keep.forEach((j, a) => (diag[a] = gram.at(j, j)));
  else if (r === 0 || n === 0)
    diagonalOf(gram, keep, diag); // nothing to solve: only the diagonal is reported
  else {
    const { packed, z } = await gemm.keptGram.compute(gram.blocks, I, keep, removed, wR);
    [gKK, product] = [new PackedGram(gramLayout(n), packed), z];
    for (let a = 0; a < n; a++) diag[a] = gKK.at(a, a);
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

  const { A, gKR } = gKK ? gatherSystem(gKK, [...Array(n).keys()], []) : gatherSystem(gram as PackedGram, keep, removed);
  for (let a = 0; a < n; a++) A[a * n + a] = diag[a] + lambda;
  const t1 = performance.now();
  const Z = product ?? (await gemm.abt(wR, D, r, gKR, n)); // W_R G_RK [D, n]
  const t2 = performance.now();
  const inverses = await blockedCholesky(gemm, A, n);
  const t3 = performance.now();
  const X = await solveRight(gemm, A, inverses, Z, D, n); // Z A⁻¹ [D, n]
  const t4 = performance.now();
  solveClock.layers++;
  solveClock.gatherMs += t1 - t0;
  solveClock.productMs += t2 - t1;
  solveClock.choleskyMs += t3 - t2;
  solveClock.solveMs += t4 - t3;
  const weight = new Float32Array(D * n);
  for (let i = 0; i < weight.length; i++) {
    weight[i] = kept[i] + X[i];
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
 * A = G_KK [n, n] and G_KR [n, r] out of the packed Gram, in one pass over it in storage order.
 * Every entry is the one PackedGram.row(kept channel) reads: a diagonal block is stored whole, so
 * its entries go only where their own row puts them; an entry above the diagonal blocks also goes
 * to its mirror.
 */
function gatherSystem(gram: PackedGram, keep: readonly number[], removed: readonly number[]): { A: Float32Array; gKR: Float32Array } {
  const { I, blocks } = gram.layout;
  const packed = gram.packed;
  const [n, r] = [keep.length, removed.length];
  const A = new Float32Array(n * n); // [n, n]
  const gKR = new Float32Array(n * r); // [n, r]
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

/** Diagonal blocks [j0, j0 + jb) of an n × n factorisation. */
function blocks(n: number): { j0: number; jb: number }[] {
  const out = [];
  for (let j0 = 0; j0 < n; j0 += BLOCK.size) out.push({ j0, jb: Math.min(BLOCK.size, n - j0) });
  return out;
}

/**
 * In place: the lower triangle of A [n, n] becomes L with A = L Lᵀ (left-looking, by blocks: block
 * column j is updated by the columns of L before it in one MatMul, then its diagonal block is
 * factored in JavaScript and the rows below it multiplied by L_jj⁻ᵀ; the strict upper triangle is
 * left as it was). Returns L_jj⁻¹ of every diagonal block.
 */
async function blockedCholesky(gemm: Gemm, A: Float32Array, n: number): Promise<Float32Array[]> {
  const inverses: Float32Array[] = [];
  for (const { j0, jb } of blocks(n)) {
    const m = n - j0;
    // S = A[j0:, j0 block] − L[j0:, :j0] · L[j0 block, :j0]ᵀ [m, jb]
    let S: Float32Array;
    if (j0 === 0) {
      S = new Float32Array(m * jb);
      for (let a = 0; a < m; a++) S.set(A.subarray(a * n, a * n + jb), a * jb);
    } else S = await gemm.step('cholesky', A, [n, n], [j0, j0, n, j0 + jb], A, [n, n], [j0, 0, n, j0], A, [n, n], [j0, 0, j0 + jb, j0]);
    const Ljj = new Float64Array(jb * jb); // [jb, jb]
    for (let a = 0; a < jb; a++) for (let b = 0; b <= a; b++) Ljj[a * jb + b] = S[a * jb + b];
    choleskySmall(Ljj, jb, j0);
    for (let a = 0; a < jb; a++) for (let b = 0; b <= a; b++) A[(j0 + a) * n + j0 + b] = Ljj[a * jb + b];
    const inv = Float32Array.from(invertLower(Ljj, jb));
    inverses.push(inv);
    if (m === jb) break;
    const P = await gemm.abt(S.subarray(jb * jb), m - jb, jb, inv, jb); // L[j0 + jb:, j0 block] = S[jb:] · L_jj⁻ᵀ [m − jb, jb]
    for (let a = 0; a < m - jb; a++) A.set(P.subarray(a * jb, (a + 1) * jb), (j0 + jb + a) * n + j0);
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

/**
 * X = Z A⁻¹ for Z [D, n] with A = L Lᵀ: first Y Lᵀ = Z (blocks ascending), then X L = Y
 * (descending); each block of columns is one call (the earlier blocks' product, subtracted, then
 * times the diagonal block's inverse).
 */
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
    // Y[:, j] = (Z[:, j] − Y[:, :j0] · L[j, :j0]ᵀ) · L_jj⁻ᵀ [D, jb]
    const part =
      j0 === 0
        ? await gemm.abt(cols(Z, 0, jb), D, jb, inverses[k], jb)
        : await gemm.step(
            'forward',
            Z,
            [D, n],
            [0, j0, D, j0 + jb],
            Y,
            [D, n],
            [0, 0, D, j0],
            L,
            [n, n],
            [j0, 0, j0 + jb, j0],
            inverses[k],
          );
    setCols(Y, j0, part, jb);
  }
  const X = new Float32Array(D * n);
  for (let k = bs.length - 1; k >= 0; k--) {
    const { j0, jb } = bs[k];
    const end = j0 + jb;
    // X[:, j] = (Y[:, j] − X[:, end:] · L[end:, j]) · L_jj⁻¹ [D, jb]
    const part =
      end === n
        ? await gemm.abt(cols(Y, j0, end), D, jb, transpose(inverses[k], jb, jb), jb)
        : await gemm.step('backward', Y, [D, n], [0, j0, D, end], X, [D, n], [0, end, D, n], L, [n, n], [end, j0, n, end], inverses[k]);
    setCols(X, j0, part, jb);
  }
  return X;
}
