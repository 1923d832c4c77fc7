/**
 * node --import tsx bench/precision-matmul.ts [-- --m 2048 --reps 5 --threads 2 --variants a,b --shapes 896x4864,4864x896]
 *
 * In-graph MatMul rates (bench/matmul-rate.ts) on the FFN shapes of Qwen2.5-0.5B ([M, 896] ×
 * W[4864, 896]ᵀ and [M, 4864] × W[896, 4864]ᵀ). Variants: fp32 MatMul with the weight fed in
 * Hugging Face layout (what the engine does); DynamicQuantizeMatMul with int8 per-output-channel
 * weights, 8-bit (dqmm) or 7-bit codes (dqmm7, the int8 precision), fed or baked in as a constant
 * (which ONNX Runtime prepacks), or uint8 weights with zero point 128 (dqmm-u8); MatMulInteger
 * after DynamicQuantizeLinear; MatMulNBits with 8-bit blocks of 128 and accuracy_level 4. Also
 * each variant's relative error against f64 on 64 rows.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { inGraphMatMul, MATMUL_VARIANTS, random, relativeError } from './matmul-rate.js';

const { values: args } = parseArgs({
  options: {
    m: { type: 'string', default: '2048' },
    reps: { type: 'string', default: '5' },
    threads: { type: 'string', default: String(cpus().length) },
    variants: { type: 'string' },
    shapes: { type: 'string', default: '896x4864,4864x896' },
  },
});
const M = Number(args.m);
const reps = Number(args.reps);
const threads = Number(args.threads);

const names = args.variants?.split(',') ?? Object.keys(MATMUL_VARIANTS);
console.log(`precision-matmul: M ${M}, ${threads} threads, median of ${reps} after 2 warm-ups, ONNX Runtime ${ort.env.versions.common}`);
for (const shape of args.shapes!.split(',')) {
  const [K, N] = shape.split('x').map(Number);
  for (const name of names) {
    try {
      const { gflops, seconds } = await inGraphMatMul(name, M, K, N, threads, reps);
      const err = await relativeError(MATMUL_VARIANTS[name], K, N, random(N * K, 11, 0.05), random(M * K, 7, 2), threads);
      const ms = seconds.map((t) => (t * 1000).toFixed(0)).join(', ');
      console.log(
        `  [${M}, ${K}] × [${K}, ${N}]  ${name.padEnd(18)} ${gflops.toFixed(1).padStart(6)} GFLOP/s  (runs ${ms} ms)  rel. error ${err.toExponential(2)}`,
      );
    } catch (e) {
      console.log(`  [${M}, ${K}] × [${K}, ${N}]  ${name.padEnd(18)} failed: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}
