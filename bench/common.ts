/** Shared measuring helpers of the benchmark scripts. */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/onnx-graph.js';
import type { ModelSpec } from '../src/model/spec.js';

/** The median (the mean of the middle two for an even count). */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

/** Per-token FLOPs of the decoder layers as executed: projections and full T×T attention. */
export function layerFlopsPerToken(spec: ModelSpec, T: number): number {
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: K, headDim: hd } = spec;
  return spec.numLayers * (2 * (D * H * hd * 2 + 2 * D * K * hd + 3 * D * I) + 2 * 2 * T * H * hd);
}

/** Layers plus the LM head. */
export function flopsPerToken(spec: ModelSpec, T: number): number {
  return layerFlopsPerToken(spec, T) + 2 * spec.hiddenSize * spec.vocabSize;
}

/** Deterministic pseudo-random token ids [seqs][len] below V. */
export function tokenIds(V: number, seqs: number, len: number): number[][] {
  let state = 12345;
  return Array.from({ length: seqs }, () =>
    Array.from({ length: len }, () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % V;
    }),
  );
}

/** ONNX Runtime's MatMul rate (fp32, or float64 with 'double') on [M, K] × [K, N]: median of 5 runs after 2 warm-ups. */
export async function rawMatMulGflops(
  M: number,
  K: number,
  N: number,
  threads: number,
  dtype: 'float' | 'double' = 'float',
): Promise<number> {
  const g = new GraphBuilder();
  g.output(g.op('MatMul', [g.input('a', [M, K], dtype), g.input('b', [K, N], dtype)]), 'c', [M, N], dtype);
  const session = await ort.InferenceSession.create(g.toBytes('matmul'), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const filled = (n: number) => (dtype === 'double' ? new Float64Array(n) : new Float32Array(n)).fill(0.01);
  const a = new ort.Tensor(dtype === 'double' ? 'float64' : 'float32', filled(M * K), [M, K]);
  const b = new ort.Tensor(dtype === 'double' ? 'float64' : 'float32', filled(K * N), [K, N]);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await session.run({ a, b });
    if (i >= 2) times.push((performance.now() - t0) / 1000);
  }
  await session.release();
  return (2 * M * K * N) / median(times) / 1e9;
}
