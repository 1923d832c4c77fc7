/**
 * npm run bench:engine [-- --models a,b --seqs 16 --len 512 --reps 3 --threads 2 --python PATH]
 *
 * Prefill throughput of the layer-wise engine on random-weight BF16 checkpoints with the real
 * shapes of Qwen2.5-0.5B, Llama-3.2-1B and Gemma-3-1B, beside (in the same run) ONNX Runtime's
 * raw fp32 MatMul rate and, where a Python with torch + transformers is available, the same
 * prefill in PyTorch. Each model runs in a child process so its peak RSS is its own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { flopsPerToken, median, rawMatMulGflops, tokenIds } from './common.js';
import { randomCheckpoint, REAL_SHAPES } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: Object.keys(REAL_SHAPES).join(',') },
    seqs: { type: 'string', default: '16' },
    len: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(cpus().length) },
    python: { type: 'string', default: '../venv-ref/bin/python' },
    child: { type: 'string' },
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
  const engine = new Engine(ckpt, { threads });
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
  const embedding = 4 * V * D;
  console.log(
    JSON.stringify({
      name,
      tokens,
      seconds: best.seconds,
      breakdown: { loadSeconds: best.loadMs / 1000, layersSeconds: best.layersMs / 1000, headSeconds: best.headMs / 1000 },
      allSeconds: runs.map((r) => r.seconds),
      gflops: (flopsPerToken(spec, len) * tokens) / best.seconds / 1e9,
      rawMatMulGflops: await rawMatMulGflops(2048, D, I, threads),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBoundBytes: 2 * (layerF32 + activations + embedding),
      modelF32Bytes: 4 * [...ckpt.tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    }),
  );
  await engine.release();
}

function torchSide(name: string): Record<string, unknown> | string {
  if (!existsSync(args.python)) return `skipped: no Python at ${args.python} (see tools/reference/README.md)`;
  const dir = join(args.out, name);
  const ckpt = openCheckpoint(dir);
  const idsFile = join(args.out, `${name}.ids.json`);
  writeFileSync(idsFile, JSON.stringify(tokenIds(ckpt.spec.vocabSize, seqs, len)));
  const r = spawnSync(args.python, ['tools/bench/torch_forward.py', dir, idsFile, '--threads', String(threads), '--reps', String(reps)], {
    encoding: 'utf8',
  });
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
    const ours = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', 'bench/engine.ts', ...process.argv.slice(2), '--child', name], {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      })
        .trim()
        .split('\n')
        .pop()!,
    );
    const theirs = torchSide(name);
    const torchRate = typeof theirs === 'string' ? null : (theirs.tokensPerSecond as number);
    const rate = ours.tokens / ours.seconds;
    console.log(`\n${name}`);
    console.log(
      `  compact     ${rate.toFixed(1)} tokens/s  (${ours.seconds.toFixed(1)} s: load ${ours.breakdown.loadSeconds.toFixed(1)}, layers ${ours.breakdown.layersSeconds.toFixed(1)}, head ${ours.breakdown.headSeconds.toFixed(1)}; runs ${ours.allSeconds.map((s: number) => s.toFixed(1)).join(', ')})`,
    );
    console.log(
      `  achieved    ${ours.gflops.toFixed(1)} GFLOP/s vs raw ORT MatMul ${ours.rawMatMulGflops.toFixed(1)} GFLOP/s  → ratio ${(ours.gflops / ours.rawMatMulGflops).toFixed(2)} (target ≥ 0.6)`,
    );
    console.log(
      `  peak RSS    ${gib(ours.peakRssBytes)}; bound 2×(layer f32 + activations + embedding f32) = ${gib(ours.rssBoundBytes)}; whole model f32 = ${gib(ours.modelF32Bytes)}`,
    );
    if (typeof theirs === 'string') console.log(`  PyTorch     ${theirs}`);
    else
      console.log(
        `  PyTorch     ${torchRate!.toFixed(1)} tokens/s (torch ${theirs.torch}, ${theirs.attention}, peak RSS ${gib(theirs.peakRssBytes as number)})  → compact/PyTorch ${(rate / torchRate!).toFixed(2)} (goal ≥ 1.0)`,
      );
  }
}
