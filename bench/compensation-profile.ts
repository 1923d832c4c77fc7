/**
 * node --import tsx bench/compensation-profile.ts [--shape qwen2.5-0.5b|llama-3.1-8b] [--threads 2] [--blocks 512]
 *
 * What compensation adds per layer, on Qwen2.5-0.5B's shape (I = 4864, D = 896, I′ = 3072 as
 * `--ratio 0.35` keeps) or Llama-3.1-8B's (I = 14,336, D = 4096, I′ = 8192, as bench:scale prunes
 * it), 4 micro-batches of 2048 tokens, in one process, so a shared machine's load falls on every
 * part alike, beside ONNX Runtime's raw MatMul rate:
 *   packed — the whole Gram's upper block triangle in the layer graph (per micro-batch), summed
 *            in JavaScript, then the solve from it (A and G_KR gathered, W_R·G_RK, Cholesky, solves);
 *   rows   — the layer graph hands on the Gram's rows; once K is known, G_KK (packed) and W_R·G_RK
 *            come from them (src/prune/kept-gram.ts), then the same Cholesky and solves.
 * Both solve the same system; the W′ they give are compared.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { GRAM_BLOCK, gramLayout, PackedGram } from '../src/engine/gram-layout.js';
import { gramOutput } from '../src/engine/layer-graph.js';
import { GraphBuilder } from '../src/engine/onnx-graph.js';
import { createSession } from '../src/engine/session.js';
import { compensateLayer, DEFAULT_DAMP, Gemm, solveClock } from '../src/prune/compensate.js';
import { removalOrder } from '../src/prune/greedy-removal.js';
import { median, rawMatMulGflops } from './common.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'qwen2.5-0.5b' },
    threads: { type: 'string', default: String(cpus().length) },
    blocks: { type: 'string', default: '512' },
    repeats: { type: 'string', default: '3' },
  },
});
const threads = Number(args.threads);
const repeats = Number(args.repeats);
GRAM_BLOCK.size = Number(args.blocks);
/** FFN width I, hidden size D and the I′ that `--ratio 0.35` keeps. */
const SHAPES: Record<string, { I: number; D: number; kept: number }> = {
  'qwen2.5-0.5b': { I: 4864, D: 896, kept: 3072 },
  'llama-3.1-8b': { I: 14336, D: 4096, kept: 8192 },
};
const shape = SHAPES[args.shape];
if (!shape) throw new Error(`--shape: one of ${Object.keys(SHAPES).join(', ')}`);
const [I, D, KEPT, N, BATCHES] = [shape.I, shape.D, shape.kept, 2048, 4];

/** Deterministic values in [−1, 1). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = s / 2 ** 30 - 1;
  }
  return out;
}
const load = () => loadavg()[0].toFixed(2);
const resetClock = () => {
  for (const key of Object.keys(solveClock) as (keyof typeof solveClock)[]) solveClock[key] = 0;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;

console.log(
  `compensation profile: I ${I}, D ${D}, I′ ${KEPT}, ${BATCHES} × ${N} tokens, Gram blocks of ${GRAM_BLOCK.size}, ${threads} threads; load ${load()}`,
);
const rawBlock = await rawMatMulGflops(512, N, I, threads);
const rawFfn = await rawMatMulGflops(N, D, I, threads);
console.log(`raw MatMul: [512, ${N}]·[${N}, ${I}] ${rawBlock.toFixed(0)} GFLOP/s, [${N}, ${D}]·[${D}, ${I}] ${rawFfn.toFixed(0)} GFLOP/s`);

const rows = Array.from({ length: BATCHES }, (_, b) => noise(N * I, 7 + b)); // √w·h per micro-batch [N, I]
const down = noise(D * I, 11);
const hashed = noise(I, 13);
const keep = [...Array(I).keys()]
  .sort((a, b) => hashed[a] - hashed[b])
  .slice(0, KEPT)
  .sort((a, b) => a - b); // KEPT channels spread over I
const layout = gramLayout(I);
const r = I - KEPT;

// packed
const g = new GraphBuilder();
gramOutput(g, g.input('h', ['N', I]), I, 1);
const gramSession = await createSession(g.toBytes('gram'), threads);
const index = new ort.Tensor(
  'int64',
  BigInt64Array.from({ length: N }, (_, i) => BigInt(i)),
  [N],
);
const scale = new ort.Tensor('float32', new Float32Array(N).fill(1), [N, 1]);
const gemm = new Gemm(threads);
const packedFlops = 2 * N * BATCHES * layout.blocks.reduce((s, b) => s + b.size * (I - b.start), 0);
const keptLayout = gramLayout(KEPT);
const rowsFlops = 2 * N * BATCHES * (keptLayout.blocks.reduce((s, b) => s + b.size * (KEPT - b.start), 0) + D * r + D * KEPT);
const times = { graph: [] as number[], sum: [] as number[], solve: [] as number[], rows: [] as number[] };
let packedW: Float32Array | undefined;
let lastGram: Float32Array | undefined;
let rowsW: Float32Array | undefined;
for (let rep = 0; rep <= repeats; rep++) {
  // Rep 0 warms up.
  let t0 = performance.now();
  const parts: Float32Array[] = [];
  for (const data of rows)
    parts.push(
      (await gramSession.run({ h: new ort.Tensor('float32', data, [N, I]), gramIndex: index, gramScale: scale })).gram.data as Float32Array,
    );
  let t1 = performance.now();
  const gram = parts[0];
  for (const part of parts.slice(1)) for (let j = 0; j < part.length; j++) gram[j] += part[j];
  lastGram = gram;
  let t2 = performance.now();
  resetClock();
  packedW = (await compensateLayer(gemm, down, new PackedGram(layout, gram), keep, DEFAULT_DAMP)).weight;
  let t3 = performance.now();
  if (rep > 0) [times.graph, times.sum, times.solve].forEach((xs, i) => xs.push([t1 - t0, t2 - t1, t3 - t2][i]));
  const packedClock = { ...solveClock };
  t0 = performance.now();
  resetClock();
  rowsW = (await compensateLayer(gemm, down, { I, blocks: rows.map((data) => ({ rows: data, count: N })) }, keep, DEFAULT_DAMP)).weight;
  t1 = performance.now();
  if (rep > 0) times.rows.push(t1 - t0);
  if (rep === repeats) {
    const c = packedClock;
    console.log(
      `packed: Gram graph ${ms(median(times.graph))} (${(packedFlops / 1e9).toFixed(0)} GFLOP: ${(packedFlops / median(times.graph) / 1e6).toFixed(0)} GFLOP/s) + JS sum ${ms(median(times.sum))} + solve ${ms(median(times.solve))}` +
        ` (last: gather ${ms(c.gatherMs)}, W_R·G_RK ${ms(c.productMs)}, Cholesky ${ms(c.choleskyMs)}, solves ${ms(c.solveMs)}) = ${ms(median(times.graph) + median(times.sum) + median(times.solve))} per layer; load ${load()}`,
    );
    const s = solveClock;
    const gramMs = s.gatherMs; // kept-gram graph runs inside the gather phase here
    console.log(
      `rows:   ${ms(median(times.rows))} per layer (last: G_KK + W_R·G_RK from the rows and A ${ms(gramMs)} (${(rowsFlops / 1e9).toFixed(0)} GFLOP: ${(rowsFlops / gramMs / 1e6).toFixed(0)} GFLOP/s), Cholesky ${ms(s.choleskyMs)}, solves ${ms(s.solveMs)}); load ${load()}`,
    );
  }
}
let maxDiff = 0;
let maxW = 0;
for (let i = 0; i < packedW!.length; i++) {
  maxDiff = Math.max(maxDiff, Math.abs(packedW![i] - rowsW![i]));
  maxW = Math.max(maxW, Math.abs(packedW![i]));
}
console.log(`W′ rows vs packed: max |Δ| ${maxDiff.toExponential(2)} of max |W′| ${maxW.toFixed(3)}`);
// The greedy channel selection (--selection greedy, greedy-removal.ts) reads the packed Gram, before the solve above.
const greedyMs: number[] = [];
for (let rep = 0; rep < repeats; rep++) {
  const t0 = performance.now();
  await removalOrder(gemm, down, new PackedGram(layout, lastGram!), r, DEFAULT_DAMP);
  greedyMs.push(performance.now() - t0);
}
const greedyFlops = (7 / 3) * I ** 3 + 2 * r * I * (I + D); // A⁻¹ (Cholesky, two solves against I) + the rounds' updates of H⁻¹ and W
console.log(
  `greedy selection of ${r} channels: ${ms(median(greedyMs))} per layer (${(greedyFlops / 1e9).toFixed(0)} GFLOP: ${(greedyFlops / median(greedyMs) / 1e6).toFixed(0)} GFLOP/s); load ${load()}`,
);
await gramSession.release();
await gemm.release();
