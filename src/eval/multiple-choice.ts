/**
 * Scoring of zero-shot tasks as LM-Evaluation-Harness's ConfigurableTask.process_results and its
 * aggregations do it (lm_eval/api/task.py, lm_eval/api/metrics.py):
 *   acc       argmax of the summed continuation log-likelihoods is the gold choice;
 *   acc_norm  argmax of log-likelihood ÷ len(choice), the choice's length in characters (Python
 *             len: code points) without the target delimiter;
 *   acc_bytes the same ÷ its UTF-8 bytes (lm-eval computes it when a task asks; we always do);
 *   stderr    of a mean: sample standard deviation (n − 1) ÷ √n;
 *   perplexity (loglikelihood tasks) exp(−mean log-likelihood of the continuation);
 *   acc       (loglikelihood tasks) the continuation is the greedy one, token for token.
 * np.argmax returns the first maximum; so does `argmax` here.
 */
import type { LoglikelihoodResult } from './loglikelihood.js';
import { pyLen } from './tasks/text.js';

export interface ChoiceScore {
  /** Per choice, Σ log p of its continuation. */
  logprobs: number[];
  gold: number;
  pred: number;
  predNorm: number;
  predBytes: number;
  acc: number;
  accNorm: number;
  accBytes: number;
}

export function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** process_results for one multiple-choice document. */
export function scoreChoices(logprobs: number[], choices: string[], gold: number): ChoiceScore {
  const pred = argmax(logprobs);
  const predNorm = argmax(logprobs.map((lp, i) => lp / pyLen(choices[i])));
  const predBytes = argmax(logprobs.map((lp, i) => lp / Buffer.byteLength(choices[i], 'utf8')));
  return {
    logprobs,
    gold,
    pred,
    predNorm,
    predBytes,
    acc: +(pred === gold),
    accNorm: +(predNorm === gold),
    accBytes: +(predBytes === gold),
  };
}

export interface MeanWithStderr {
  value: number;
  /** Sample standard error of the mean; null with fewer than 2 items. */
  stderr: number | null;
}

export function meanStderr(xs: number[]): MeanWithStderr {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { value: mean, stderr: null };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { value: mean, stderr: Math.sqrt(variance) / Math.sqrt(n) };
}

export interface TaskMetrics {
  acc?: MeanWithStderr;
  acc_norm?: MeanWithStderr;
  acc_bytes?: MeanWithStderr;
  /** exp(−mean log-likelihood); lm-eval's stderr for it is a bootstrap, not computed here. */
  perplexity?: number;
  /** Generation tasks: exact_match per filter (e.g. strict-match, flexible-extract). */
  exact_match?: Record<string, MeanWithStderr>;
}

/** Aggregates per-document scores into the task's metrics (lm-eval's metric_list, plus acc_bytes beside acc_norm). */
export function aggregateChoices(scores: ChoiceScore[], metrics: string[]): TaskMetrics {
  const out: TaskMetrics = { acc: meanStderr(scores.map((s) => s.acc)) };
  if (metrics.includes('acc_norm')) {
    out.acc_norm = meanStderr(scores.map((s) => s.accNorm));
    out.acc_bytes = meanStderr(scores.map((s) => s.accBytes));
  }
  return out;
}

/** Loglikelihood tasks (LAMBADA): perplexity of the continuation and greedy accuracy. */
export function aggregateLoglikelihood(results: LoglikelihoodResult[]): TaskMetrics {
  const mean = results.reduce((a, r) => a + r.logprob, 0) / results.length;
  return { perplexity: Math.exp(-mean), acc: meanStderr(results.map((r) => +r.isGreedy)) };
}
