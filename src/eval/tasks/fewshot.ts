/**
 * LM-Evaluation-Harness's few-shot samplers (lm_eval/api/samplers.py, 0.4.13), over the indices
 * of the few-shot pool:
 *   * default (ContextSampler.sample): rnd.sample(pool, n); with an evaluated document to exclude,
 *     rnd.sample(pool, n + 1) with every copy of the document removed, first n kept; if that
 *     leaves fewer than n (the pool held copies of it), rnd.sample(pool without the document, n);
 *   * first_n (FirstNSampler): the first n of the pool (without the document if one is given).
 * `rnd` is the task's one generator (Random(fewshot_random_seed)), drawn in document order.
 * A pool too small for the request is a CompactError with the caller's message (lm-eval fails
 * with an assertion or Python's "Sample larger than population").
 */
import { CompactError } from '../../util/errors.js';
import type { PyRandom } from './py-random.js';

export type Sampler = 'default' | 'first_n';

/**
 * Indices into the pool of the n shots for one document. `keys` identify the pool's documents
 * for equality (lm-eval compares dicts); `evalKey` is the evaluated document's key when lm-eval
 * passes it to the sampler.
 */
export function sampleFewshot(
  sampler: Sampler,
  rnd: PyRandom,
  keys: readonly string[],
  n: number,
  evalKey: string | undefined,
  tooFew: () => string,
): number[] {
  if (n === 0) return [];
  const all = keys.map((_, i) => i);
  const without = evalKey === undefined ? all : all.filter((i) => keys[i] !== evalKey);
  if (sampler === 'first_n') {
    if (n > without.length) throw new CompactError(tooFew());
    return without.slice(0, n);
  }
  if (evalKey === undefined) {
    if (n > keys.length) throw new CompactError(tooFew());
    return rnd.sampleIndices(keys.length, n);
  }
  if (n + 1 > keys.length) throw new CompactError(tooFew());
  let picked = rnd
    .sampleIndices(keys.length, n + 1)
    .filter((i) => keys[i] !== evalKey)
    .slice(0, n);
  if (picked.length < n) {
    if (n > without.length) throw new CompactError(tooFew());
    picked = rnd.sampleIndices(without.length, n).map((j) => without[j]);
  }
  return picked;
}
