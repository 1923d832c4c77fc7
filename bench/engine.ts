/**
 * npm run bench:engine [-- --models a,b --seqs 16 --len 512 --reps 3 --threads 2 --precisions fp32,int8
 *                          --dtypes bfloat16,float32 --python PATH]
 *
 * Prefill throughput of the layer-wise engine on random-weight BF16 checkpoints with the real
 * shapes of Qwen2.5-0.5B, Llama-3.2-1B and Gemma-3-1B, in each of our precisions, beside (in the
 * same run) ONNX Runtime's in-graph MatMul rate for that precision (bench/matmul-rate.ts) and,
 * where a Python with torch + transformers is available, the same prefill in PyTorch in each of
 * --dtypes (bfloat16: the checkpoint's own dtype, what a user loading it gets). Each model and
 * precision runs in a child process so its peak RSS is its own. "layers" rates count the decoder
 * layers only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { DTYPE_BYTES } from '../src/model/dtype.js';
import { EMBED, LM_HEAD } from '../src/model/tensor-names.js';
import { PRECISIONS, type Precision } from '../src/engine/precision.js';
import { flopsPerToken, layerFlopsPerToken, median, tokenIds } from './common.js';
import { inGraphMatMul, PRECISION_VARIANT } from './matmul-rate.js';
import { randomCheckpoint, REAL_SHAPES } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: Object.keys(REAL_SHAPES).join(',') },
    seqs: { type: 'string', default: '16' },
    len: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(cpus().length) },
    python: { type: 'string', default: '../venv-ref/bin/python' },
    precisions: { type: 'string', default: PRECISIONS.join(',') },
    dtypes: { type: 'string', default: 'bfloat16,float32' },
    child: { type: 'string' },
    precision: { type: 'string', default: 'fp32' },
    out: { type: 'string', default: '.tmp/bench' },
  },
});
const seqs = Number(args.seqs);
const len = Number(args.len);
const reps = Number(args.reps);
const threads = Number(args.threads);

async function child(name: string): Promise<void> {
  const dir = join(args.out, name);
  const ckpt = openCheckpoint(dir);
  const spec = ckpt.spec;
  const ids = tokenIds(spec.vocabSize, seqs, len);
  const targets = ids.map((s) => Int32Array.from(s.slice(1).concat([-1])));
  const precision = args.precision as Precision;
  const engine = new Engine(ckpt, { threads, precision });
  const runs: { seconds: number; loadMs: number; layersMs: number; headMs: number }[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const { timings } = await engine.forward(ids, { targets });
    runs.push({ seconds: (performance.now() - t0) / 1000, ...timings });
  }
  const best = runs.find((r) => r.seconds === median(runs.map((x) => x.seconds)))!;
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: K, headDim: hd, vocabSize: V } = spec;
  const layerF32 = 4 * (D * H * hd * 2 + 2 * D * K * hd + 3 * D * I + 4 * D);
  const tokens = seqs * len;
  // Hidden states of all sequences + one micro-batch's largest intermediates (q/k/v, FFN, scores).
  const activations = 4 * (tokens * D * 2 + 2048 * (3 * I + 3 * H * hd) + (2048 / len) * H * len * len * 2);
  // The LM head [V, D] stays resident as stored (a tied head is the embedding; bf16 here: 2 bytes),
  // not widened to f32; input embeddings are read row by row from the file.
  const headInfo = ckpt.tensors.get(spec.tiedEmbeddings ? EMBED : LM_HEAD)!;
  const head = DTYPE_BYTES[headInfo.dtype] * V * D;
  console.log(
    JSON.stringify({
      name,
      tokens,
      seconds: best.seconds,
      breakdown: { loadSeconds: best.loadMs / 1000, layersSeconds: best.layersMs / 1000, headSeconds: best.headMs / 1000 },
      allSeconds: runs.map((r) => r.seconds),
      precision,
      gflops: (flopsPerToken(spec, len) * tokens) / best.seconds / 1e9,
      layerGflops: (layerFlopsPerToken(spec, len) * tokens) / (best.layersMs / 1000) / 1e9,
      rawMatMulGflops: (await inGraphMatMul(PRECISION_VARIANT[precision], 2048, D, I, threads)).gflops,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBoundBytes: 2 * (layerF32 + activations + head),
      headDtype: headInfo.dtype,
      modelF32Bytes: 4 * [...ckpt.tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    }),
  );
  await engine.release();
}

function torchSide(name: string, dtype: string, layersOnly: boolean): Record<string, unknown> | string {
  if (!existsSync(args.python)) return `skipped: no Python at ${args.python} (see tools/reference/README.md)`;
  const dir = join(args.out, name);
  const ckpt = openCheckpoint(dir);
  const idsFile = join(args.out, `${name}.ids.json`);
  writeFileSync(idsFile, JSON.stringify(tokenIds(ckpt.spec.vocabSize, seqs, len)));
  const flags = ['--threads', String(threads), '--reps', String(reps), '--dtype', dtype, ...(layersOnly ? ['--layers-only'] : [])];
  const r = spawnSync(args.python, ['tools/bench/torch_forward.py', dir, idsFile, ...flags], { encoding: 'utf8' });
  if (r.status !== 0) return `failed: ${r.stderr.trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

if (args.child) {
  await child(args.child);
} else {
  mkdirSync(args.out, { recursive: true });
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  console.log(`bench:engine — ${seqs} sequences × ${len} tokens, ${threads} threads, median of ${reps}; ${cpus()[0].model}`);
  for (const name of args.models!.split(',')) {
    await randomCheckpoint(args.out, name);
    console.log(`\n${name}`);
    const rates: Record<string, { all: number; layers: number }> = {};
    for (const precision of args.precisions!.split(',')) {
      const ours = JSON.parse(
        execFileSync(
          process.execPath,
          ['--import', 'tsx', 'bench/engine.ts', ...process.argv.slice(2), '--child', name, '--precision', precision],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 26,
          },
        )
          .trim()
          .split('\n')
          .pop()!,
      );
      const rate = ours.tokens / ours.seconds;
      rates[`compact ${precision}`] = { all: rate, layers: ours.tokens / ours.breakdown.layersSeconds };
      console.log(
        `  compact ${precision.padEnd(5)} ${rate.toFixed(1)} tokens/s, layers alone ${(ours.tokens / ours.breakdown.layersSeconds).toFixed(1)}  (${ours.seconds.toFixed(1)} s: load ${ours.breakdown.loadSeconds.toFixed(1)}, layers ${ours.breakdown.layersSeconds.toFixed(1)}, head ${ours.breakdown.headSeconds.toFixed(1)}; runs ${ours.allSeconds.map((s: number) => s.toFixed(1)).join(', ')})`,
      );
      console.log(
        `    achieved  ${ours.gflops.toFixed(1)} GFLOP/s (layers ${ours.layerGflops.toFixed(1)}) vs ONNX Runtime's in-graph ${precision} MatMul ${ours.rawMatMulGflops.toFixed(1)} GFLOP/s  → ratio ${(ours.gflops / ours.rawMatMulGflops).toFixed(2)} (target ≥ 0.6)`,
      );
      console.log(
        `    peak RSS  ${gib(ours.peakRssBytes)}; bound 2×(layer f32 + activations + LM head ${ours.headDtype} as stored) = ${gib(ours.rssBoundBytes)}; whole model f32 = ${gib(ours.modelF32Bytes)}`,
      );
    }
    for (const dtype of args.dtypes!.split(',').filter(Boolean)) {
      const whole = torchSide(name, dtype, false);
      const layers = torchSide(name, dtype, true);
      if (typeof whole === 'string' || typeof layers === 'string') {
        console.log(`  PyTorch ${dtype}: ${typeof whole === 'string' ? whole : layers}`);
        continue;
      }
      const all = whole.tokensPerSecond as number;
      const alone = layers.tokensPerSecond as number;
      console.log(
        `  PyTorch ${dtype.padEnd(8)} ${all.toFixed(1)} tokens/s, layers alone ${alone.toFixed(1)} (torch ${whole.torch}, ${whole.attention}, peak RSS ${gib(whole.peakRssBytes as number)})`,
      );
      for (const [ours, r] of Object.entries(rates))
        console.log(
          `    ${ours} / PyTorch ${dtype}: ${(r.all / all).toFixed(2)}, layers alone ${(r.layers / alone).toFixed(2)} (goal ≥ 1.0)`,
        );
    }
  }
}
