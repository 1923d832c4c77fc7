/**
 * Zero-shot evaluation of one task: documents → (context, continuation) requests → tokens →
 * log-likelihoods through the engine → lm-eval's metrics.
 */
import type { Engine } from '../engine/engine.js';
import { type LoglikelihoodResult, encodePair, type EncodedPair, scorePairs, type Timings } from './loglikelihood.js';
import {
  aggregateChoices,
  aggregateLoglikelihood,
  type ChoiceScore,
  type MeanWithStderr,
  scoreChoices,
  type TaskMetrics,
} from './multiple-choice.js';
import { aggregateExactMatch, type GenerationModel, type GenerationScore, scoreGenerations } from './generation.js';
import { check } from '../util/errors.js';
import { sha256, type Task, type TaskDoc } from './tasks/task.js';

export interface DocResult {
  where: string;
  /** Index of the document in its split. */
  index: number;
  /** Per request (choice), the log-likelihood, greedy flag and token count. */
  requests: LoglikelihoodResult[];
  /** Multiple-choice scoring (absent for loglikelihood tasks). */
  score?: ChoiceScore;
  /** Generation tasks: the continuation, the filtered answers and their exact matches. */
  generation?: GenerationScore;
}

export interface TaskReport {
  task: string;
  split: string;
  /** Shots per context. */
  numFewshot: number;
  /** Documents evaluated. */
  n: number;
  metrics: TaskMetrics;
  /** (context, continuation) requests, and the engine sequences (packed prefix trees) they took. */
  requests: number;
  sequences: number;
  /** Tokens the engine ran (Σ sequence lengths) and continuation tokens scored. */
  inputTokens: number;
  scoredTokens: number;
  /** Requests whose input was cut from the left to the model's maximum length (generation: to max_length − max_gen_toks). */
  truncated: number;
  /** Generation tasks: tokens generated. */
  generatedTokens?: number;
  timings: Timings;
  seconds: number;
  docs: DocResult[];
}

export interface TaskEvalOptions {
  maxLength: number;
  /** Shots per context the documents were built with (reported). */
  numFewshot?: number;
  /** Generation tasks: sequences decoded together (default 8). */
  generationBatch?: number;
  /** Consecutive documents whose contexts share ≥ 64 tokens (few-shot prompts) share one prefix tree of at most this many tokens (default 2048; 0: one tree per document). */
  shareTokens?: number;
  /** Tokens per packed prefix tree (see scorePairs); 0: one chain per distinct input. */
  packTokens?: number;
  tokensPerCall?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function evaluateTask(
  engine: Engine,
  encode: (text: string) => number[],
  task: Task,
  docs: TaskDoc[],
  options: TaskEvalOptions,
): Promise<TaskReport> {
  const started = performance.now();
  let clock = performance.now();
  const pairs: EncodedPair[] = [];
  const where: string[] = [];
  const groups: number[] = []; // the requests of a document share its prompt in one prefix tree
  for (const [d, doc] of docs.entries()) {
    const memo = new Map<string, number[]>(); // the choices of a document share its context: encode it once
    const memoEncode = (text: string): number[] => {
      let ids = memo.get(text);
      if (!ids) memo.set(text, (ids = encode(text)));
      return ids;
    };
    for (const r of doc.requests) {
      pairs.push(encodePair(memoEncode, r.context, r.continuation));
      where.push(doc.where);
      groups.push(d);
    }
  }
  shareLongPrefixes(pairs, groups, options.maxLength, options.shareTokens ?? 2048);
  const tokenizeMs = performance.now() - clock;
  clock = performance.now();
  const { results, timings, sequences, inputTokens } = await scorePairs(engine, pairs, {
    maxLength: options.maxLength,
    groups,
    packTokens: options.packTokens,
    tokensPerCall: options.tokensPerCall,
    describe: (i) => `${task.name} ${where[i]}`,
    onProgress: options.onProgress,
  });
  // A NaN or infinite log-likelihood is never a score: the weights or config.json broke the forward pass.
  const broken = results.findIndex((r) => !Number.isFinite(r.logprob));
  check(
    broken < 0,
    () =>
      `${task.name} ${where[broken]}: the model's log-likelihood is ${results[broken].logprob} (not finite): its weights or config.json make the forward pass produce NaN or infinity, so no accuracy can be reported`,
  );
  const docResults: DocResult[] = [];
  let next = 0;
  for (const doc of docs) {
    const requests = results.slice(next, next + doc.requests.length);
    next += doc.requests.length;
    docResults.push({
      where: doc.where,
      index: doc.index,
      requests,
      ...(task.outputType === 'multiple_choice'
        ? {
            score: scoreChoices(
              requests.map((r) => r.logprob),
              doc.choices,
              doc.gold,
            ),
          }
        : {}),
    });
  }
  const metrics =
    task.outputType === 'multiple_choice'
      ? aggregateChoices(
          docResults.map((d) => d.score!),
          task.metrics,
        )
      : aggregateLoglikelihood(docResults.map((d) => d.requests[0]));
  return {
    task: task.name,
    split: task.split,
    numFewshot: options.numFewshot ?? 0,
    n: docs.length,
    metrics,
    requests: pairs.length,
    sequences,
    inputTokens,
    scoredTokens: results.reduce((a, r) => a + r.tokens, 0),
    truncated: results.filter((r) => r.truncated).length,
    timings: { tokenizeMs, ...timings },
    seconds: (performance.now() - started) / 1000,
    docs: docResults,
  };
}

/**
 * Few-shot prompts of one task share their description and shots (MMLU: the same five dev
 * questions before every question of a subject). Consecutive documents whose first contexts
 * share at least 64 tokens with the first one of a group join that group, up to `maxTokens`
 * tokens in its tree, so the shared prefix runs once for all of them. (Groups only decide which
 * inputs share a tree; every request is scored exactly as alone.)
 */
function shareLongPrefixes(pairs: EncodedPair[], groups: number[], maxLength: number, maxTokens: number): void {
  if (maxTokens <= 0 || pairs.length === 0) return;
  // What the model reads of each request (left-truncated as scorePairs truncates it), per document.
  const inputs = new Map<number, number[][]>();
  pairs.forEach((pair, i) => {
    const list = inputs.get(groups[i]) ?? [];
    list.push(
      pair.context
        .concat(pair.continuation)
        .slice(-(maxLength + 1))
        .slice(0, -1),
    );
    inputs.set(groups[i], list);
  });
  const common = (a: number[], b: number[]) => {
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
  };
  // Tokens a document adds to a tree that holds `base` (an upper bound: what its inputs do not share with base).
  const adds = (d: number, base: number[]) => inputs.get(d)!.reduce((a, input) => a + input.length - common(input, base), 0);
  const merged = new Map<number, number>(); // document → its group
  let head = -1; // the group's first document
  let base: number[] = []; // its first input
  let size = 0; // tokens in the group's tree (upper bound)
  for (const d of inputs.keys()) {
    const first = inputs.get(d)![0];
    if (size > 0 && common(first, base) >= 64) {
      const added = adds(d, base);
      if (size + added <= maxTokens) {
        merged.set(d, head);
        size += added;
        continue;
      }
    }
    head = d;
    base = first;
    size = first.length + adds(d, base);
    merged.set(d, d);
  }
  groups.forEach((g, i) => (groups[i] = merged.get(g)!));
}

/** A generate_until task, `generationBatch` documents decoded together with the cached Decoder (see generation.ts). */
export async function evaluateGenerationTask(
  model: GenerationModel,
  task: Task,
  docs: TaskDoc[],
  options: TaskEvalOptions,
): Promise<TaskReport> {
  const started = performance.now();
  const config = task.generation!;
  const scores = await scoreGenerations(model, docs, config, options.generationBatch, options.onProgress);
  const docResults: DocResult[] = docs.map((doc, i) => ({ where: doc.where, index: doc.index, requests: [], generation: scores[i] }));
  const outputs = docResults.map((d) => d.generation!.output);
  const seconds = (performance.now() - started) / 1000;
  return {
    task: task.name,
    split: task.split,
    numFewshot: options.numFewshot ?? 0,
    n: docs.length,
    metrics: {
      exact_match: aggregateExactMatch(
        docResults.map((d) => d.generation!),
        config,
      ),
    },
    requests: docs.length,
    sequences: docs.length,
    inputTokens: outputs.reduce((a, o) => a + o.promptTokens + o.generatedTokens, 0),
    scoredTokens: 0,
    truncated: outputs.filter((o) => o.truncated).length,
    generatedTokens: outputs.reduce((a, o) => a + o.generatedTokens, 0),
    timings: { tokenizeMs: 0, loadMs: 0, layersMs: 0, headMs: 0 },
    seconds,
    docs: docResults,
  };
}

/** One --log-samples record (lm-eval's per-sample log: document, prompt hash, target, what the model gave). */
export function sampleRecord(doc: TaskDoc, result: DocResult): Record<string, unknown> {
  const prompt = doc.context ?? doc.requests[0]?.context ?? '';
  const record: Record<string, unknown> = {
    doc: doc.index,
    where: doc.where,
    promptHash: sha256(prompt),
    promptChars: prompt.length,
    target: doc.target,
  };
  if (result.generation) {
    const g = result.generation;
    Object.assign(record, {
      generated: g.output.text,
      filtered: g.filtered,
      exactMatch: g.exactMatch,
      promptTokens: g.output.promptTokens,
      generatedTokens: g.output.generatedTokens,
      truncated: g.output.truncated,
      stoppedBy: g.output.stoppedBy,
    });
  } else if (result.score) {
    const s = result.score;
    Object.assign(record, {
      choices: doc.choices,
      gold: s.gold,
      logprobs: s.logprobs,
      pred: s.pred,
      acc: s.acc,
      accNorm: s.accNorm,
      truncated: result.requests.some((r) => r.truncated),
    });
  } else {
    const r = result.requests[0];
    Object.assign(record, { logprob: r.logprob, isGreedy: r.isGreedy, truncated: r.truncated });
  }
  return record;
}

export interface GroupReport {
  group: string;
  /** Leaf tasks aggregated and their documents. */
  tasks: number;
  n: number;
  /** acc weighted by size (the micro-average), stderr pooled over the leaf tasks (lm-eval's pooled_sample_stderr). */
  acc: MeanWithStderr;
}

/** lm-eval's group aggregation with weight_by_size (lm_eval/api/group.py, metrics.pooled_sample_stderr) over the group's leaf tasks. */
export function aggregateGroup(name: string, reports: TaskReport[]): GroupReport {
  const sizes = reports.map((r) => r.n);
  const N = sizes.reduce((a, b) => a + b, 0);
  const value = reports.reduce((a, r) => a + r.metrics.acc!.value * r.n, 0) / N;
  const stderrs = reports.map((r) => r.metrics.acc!.stderr);
  let stderr: number | null = null;
  if (stderrs.every((s) => s != null) && N > reports.length) {
    const pooledVariance = reports.reduce((a, r, i) => a + (r.n - 1) * stderrs[i]! ** 2 * r.n, 0) / (N - reports.length);
    stderr = Math.sqrt(pooledVariance / N);
  }
  return { group: name, tasks: reports.length, n: N, acc: { value, stderr } };
}
