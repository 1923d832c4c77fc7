/**
 * Zero-shot evaluation of one task: documents → (context, continuation) requests → tokens →
 * log-likelihoods through the engine → lm-eval's metrics.
 */
import type { Engine } from '../engine/engine.js';
import { type LoglikelihoodResult, encodePair, type EncodedPair, scorePairs, type Timings } from './loglikelihood.js';
import { aggregateChoices, aggregateLoglikelihood, type ChoiceScore, scoreChoices, type TaskMetrics } from './multiple-choice.js';
import type { Task, TaskDoc } from './tasks/definitions.js';

export interface DocResult {
  where: string;
  /** Per request (choice), the log-likelihood, greedy flag and token count. */
  requests: LoglikelihoodResult[];
  /** Multiple-choice scoring (absent for loglikelihood tasks). */
  score?: ChoiceScore;
}

export interface TaskReport {
  task: string;
  split: string;
  /** Documents evaluated. */
  n: number;
  metrics: TaskMetrics;
  /** (context, continuation) requests, and the engine sequences (packed prefix trees) they took. */
  requests: number;
  sequences: number;
  /** Tokens the engine ran (Σ sequence lengths) and continuation tokens scored. */
  inputTokens: number;
  scoredTokens: number;
  /** Requests whose input was cut from the left to the model's maximum length. */
  truncated: number;
  timings: Timings;
  seconds: number;
  docs: DocResult[];
}

export interface TaskEvalOptions {
  maxLength: number;
  /** Tokens per packed prefix tree (see scorePairs); 0: one chain per distinct input. */
  packTokens?: number;
  tokensPerCall?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function evaluateTask(engine: Engine, encode: (text: string) => number[], task: Task, docs: TaskDoc[], options: TaskEvalOptions): Promise<TaskReport> {
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
  const docResults: DocResult[] = [];
  let next = 0;
  for (const doc of docs) {
    const requests = results.slice(next, next + doc.requests.length);
    next += doc.requests.length;
    docResults.push({
      where: doc.where,
      requests,
      ...(task.outputType === 'multiple_choice' ? { score: scoreChoices(requests.map((r) => r.logprob), doc.choices, doc.gold) } : {}),
    });
  }
  const metrics =
    task.outputType === 'multiple_choice' ? aggregateChoices(docResults.map((d) => d.score!), task.metrics) : aggregateLoglikelihood(docResults.map((d) => d.requests[0]));
  return {
    task: task.name,
    split: task.split,
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
