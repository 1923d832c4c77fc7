/**
 * In-graph MatMul rates of ONNX Runtime for the calibration precisions: the product [M, N] is
 * reduced to a scalar inside the graph, so copying it out to JavaScript does not understate the
 * kernel's rate. Used by bench/precision-matmul.ts (all variants) and bench/engine.ts (the one
 * each precision runs).
 */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/onnx-graph.js';
import type { Precision } from '../src/engine/precision.js';
import { median } from './common.js';

const MS = 'com.microsoft';

// Weight quantization for the variants, in JavaScript (the engine quantizes in-graph: src/engine/precision.ts,
// same codes up to ties: Math.round rounds halves up, QuantizeLinear to even).
interface Int8Weight {
  /** [in, out] row-major: the transposed layout DynamicQuantizeMatMul takes for B. */
  data: Int8Array;
  /** [out]: w ≈ scale[o] · q[i, o]. */
  scale: Float32Array;
}

/**
 * W [out, in] (f32) → int8 [in, out] and a scale per output channel, max |w| ↦ maxCode (round to
 * nearest). An all-zero row gets scale 1 (its codes are all 0).
 */
function quantizeInt8PerChannel(w: Float32Array, out: number, inner: number, maxCode = 127): Int8Weight {
  const data = new Int8Array(out * inner); // [in, out]
  const scale = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const row = w.subarray(o * inner, (o + 1) * inner);
    let max = 0;
    for (let i = 0; i < inner; i++) max = Math.max(max, Math.abs(row[i]));
    const s = max > 0 ? max / maxCode : 1;
    scale[o] = s;
    const inv = 1 / s;
    for (let i = 0; i < inner; i++) data[i * out + o] = Math.max(-maxCode, Math.min(maxCode, Math.round(row[i] * inv)));
  }
  return { data, scale };
}

/**
 * MatMulNBits' 8-bit layout (used by the microbenchmark only): W [out, in] in blocks of `block`
 * inputs, each stored as uint8 codes with the default zero point 128, and one f32 scale per block.
 * Returns codes [out, in/block, block] and scales [out · in/block].
 */
function quantizeNBits8(w: Float32Array, out: number, inner: number, block: number): { codes: Uint8Array; scales: Float32Array } {
  const blocks = inner / block;
  const codes = new Uint8Array(out * inner);
  const scales = new Float32Array(out * blocks);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < blocks; b++) {
      const base = o * inner + b * block;
      let max = 0;
      for (let i = 0; i < block; i++) max = Math.max(max, Math.abs(w[base + i]));
      const s = max > 0 ? max / 127 : 1;
      scales[o * blocks + b] = s;
      for (let i = 0; i < block; i++) codes[base + i] = 128 + Math.max(-127, Math.min(127, Math.round(w[base + i] / s)));
    }
  }
  return { codes, scales };
}

/** MatMulNBits block size (inputs per scale). */
const block = 128;

export function random(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = (s / 2 ** 31 - 0.5) * 2 * scale;
  }
  return out;
}

export interface Variant {
  /** Builds the graph for a: [rows, K] and W [N, K]; returns the product's value name; feeds gets the weight inputs. */
  build(g: GraphBuilder, a: string, w: Float32Array, K: number, N: number, feeds: Record<string, ort.Tensor>): string;
}

export const MATMUL_VARIANTS: Record<string, Variant> = {
  fp32: {
    build(g, a, w, K, N, feeds) {
      feeds.w = new ort.Tensor('float32', w, [N, K]);
      return g.op('MatMul', [a, g.op('Transpose', [g.input('w', [N, K])], { perm: [1, 0] })]);
    },
  },
  'dqmm-fed': {
    build(g, a, w, K, N, feeds) {
      const q = quantizeInt8PerChannel(w, N, K);
      feeds.wq = new ort.Tensor('int8', q.data, [K, N]);
      feeds.ws = new ort.Tensor('float32', q.scale, [N]);
      return g.domainOp(MS, 1, 'DynamicQuantizeMatMul', [a, g.input('wq', [K, N], 'int8'), g.input('ws', [N])]);
    },
  },
  'dqmm7-const': {
    build(g, a, w, K, N) {
      const q = quantizeInt8PerChannel(w, N, K, 63);
      const wq = g.rawConstant(new Uint8Array(q.data.buffer), [K, N], 'int8');
      const ws = g.rawConstant(new Uint8Array(q.scale.buffer), [N], 'float');
      return g.domainOp(MS, 1, 'DynamicQuantizeMatMul', [a, wq, ws]);
    },
  },
  'dqmm7-fed': {
    build(g, a, w, K, N, feeds) {
      const q = quantizeInt8PerChannel(w, N, K, 63);
      feeds.wq = new ort.Tensor('int8', q.data, [K, N]);
      feeds.ws = new ort.Tensor('float32', q.scale, [N]);
      return g.domainOp(MS, 1, 'DynamicQuantizeMatMul', [a, g.input('wq', [K, N], 'int8'), g.input('ws', [N])]);
    },
  },
  'dqmm-u8-fed': {
    build(g, a, w, K, N, feeds) {
      const q = quantizeInt8PerChannel(w, N, K);
      feeds.wq = new ort.Tensor(
        'uint8',
        Uint8Array.from(q.data, (v) => v + 128),
        [K, N],
      );
      feeds.ws = new ort.Tensor('float32', q.scale, [N]);
      feeds.wz = new ort.Tensor('uint8', new Uint8Array(N).fill(128), [N]);
      return g.domainOp(MS, 1, 'DynamicQuantizeMatMul', [
        a,
        g.input('wq', [K, N], 'uint8'),
        g.input('ws', [N]),
        g.input('wz', [N], 'uint8'),
      ]);
    },
  },
  'matmulinteger7-fed': {
    build(g, a, w, K, N, feeds) {
      const q = quantizeInt8PerChannel(w, N, K, 63);
      feeds.wq = new ort.Tensor('int8', q.data, [K, N]);
      feeds.ws = new ort.Tensor('float32', q.scale, [N]);
      const [aq, as, az] = g.multi('DynamicQuantizeLinear', [a], 3);
      const y = g.op('Cast', [g.op('MatMulInteger', [aq, g.input('wq', [K, N], 'int8'), az])], { to: 1 });
      return g.op('Mul', [y, g.op('Mul', [as, g.input('ws', [N])])]);
    },
  },
  'nbits8-fed': {
    build(g, a, w, K, N, feeds) {
      const { codes, scales } = quantizeNBits8(w, N, K, block);
      feeds.wq = new ort.Tensor('uint8', codes, [N, K / block, block]);
      feeds.ws = new ort.Tensor('float32', scales, [N * (K / block)]);
      const attrs = { K, N, bits: 8, block_size: block, accuracy_level: 4 };
      return g.domainOp(MS, 1, 'MatMulNBits', [a, g.input('wq', [N, K / block, block], 'uint8'), g.input('ws', [N * (K / block)])], attrs);
    },
  },
  'nbits8-const': {
    build(g, a, w, K, N) {
      const { codes, scales } = quantizeNBits8(w, N, K, block);
      const wq = g.rawConstant(codes, [N, K / block, block], 'uint8');
      const ws = g.rawConstant(new Uint8Array(scales.buffer), [N * (K / block)], 'float');
      return g.domainOp(MS, 1, 'MatMulNBits', [a, wq, ws], { K, N, bits: 8, block_size: block, accuracy_level: 4 });
    },
  },
};

async function session(variant: Variant, rows: number, K: number, N: number, w: Float32Array, reduce: boolean, threads: number) {
  const g = new GraphBuilder();
  const feeds: Record<string, ort.Tensor> = {};
  const y = variant.build(g, g.input('a', [rows, K]), w, K, N, feeds);
  if (reduce) g.output(g.op('ReduceSum', [y], { keepdims: 0 }), 'y', []);
  else g.output(y, 'y', [rows, N]);
  const s = await ort.InferenceSession.create(g.toBytes('bench'), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  return { s, feeds };
}

/** ‖Y − Y_f64‖ / ‖Y_f64‖ on 64 rows. */
export async function relativeError(
  variant: Variant,
  K: number,
  N: number,
  w: Float32Array,
  a: Float32Array,
  threads: number,
): Promise<number> {
  const rows = 64;
  const { s, feeds } = await session(variant, rows, K, N, w, false, threads);
  const y = (await s.run({ ...feeds, a: new ort.Tensor('float32', a.subarray(0, rows * K), [rows, K]) })).y.data as Float32Array;
  await s.release();
  let num = 0;
  let den = 0;
  for (let r = 0; r < rows; r++)
    for (let n = 0; n < N; n++) {
      let ref = 0;
      for (let k = 0; k < K; k++) ref += a[r * K + k] * w[n * K + k];
      num += (y[r * N + n] - ref) ** 2;
      den += ref ** 2;
    }
  return Math.sqrt(num / den);
}

/** The variant each engine precision runs (weights fed as graph inputs, as the engine feeds them). */
export const PRECISION_VARIANT: Record<Precision, string> = { fp32: 'fp32', int8: 'dqmm7-fed' };

/** Rate of `variant` on [M, K] × W[N, K]ᵀ (random data), reduced in-graph: median of `reps` runs after 2 warm-ups. */
export async function inGraphMatMul(
  variant: string,
  M: number,
  K: number,
  N: number,
  threads: number,
  reps = 5,
): Promise<{ gflops: number; seconds: number[] }> {
  const a = new ort.Tensor('float32', random(M * K, 7, 2), [M, K]);
  const { s, feeds } = await session(MATMUL_VARIANTS[variant], M, K, N, random(N * K, 11, 0.05), true, threads);
  const seconds: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const t0 = performance.now();
    await s.run({ ...feeds, a });
    if (i >= 2) seconds.push((performance.now() - t0) / 1000);
  }
  await s.release();
  return { gflops: (2 * M * K * N) / median(seconds) / 1e9, seconds };
}
