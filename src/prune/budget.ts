/**
 * Budgets: how many parameters a (V′, I′) removes, and the (V′, I′) that removes a target ratio
 * with a given share taken from the vocabulary. Attention and norms are untouched.
 *   removed = (V − V′)·D·(tied ? 1 : 2) + L·(I − I′)·(3·D + 2·[mlp bias])
 */
import type { ModelSpec } from '../model/spec.js';
import { check } from '../util/errors.js';

export interface Budget {
  vocab: number;
  ffn: number;
}

export const vocabRowParams = (spec: ModelSpec): number => spec.hiddenSize * (spec.tiedEmbeddings ? 1 : 2);
export const channelParams = (spec: ModelSpec): number => spec.numLayers * (3 * spec.hiddenSize + (spec.mlpBias ? 2 : 0));

export function removedParams(spec: ModelSpec, budget: Budget): number {
  return (spec.vocabSize - budget.vocab) * vocabRowParams(spec) + (spec.intermediateSize - budget.ffn) * channelParams(spec);
}

/** Multiple I′ is rounded to by default: llama.cpp's k-quants want 256 on large FFNs. */
export function defaultRoundTo(intermediateSize: number): number {
  return intermediateSize >= 4096 ? 256 : intermediateSize >= 512 ? 32 : 1;
}

/** Default vocabulary share of the removal: the vocabulary's share of the prunable parameters. */
export function defaultVocabShare(spec: ModelSpec): number {
  const vocab = spec.vocabSize * vocabRowParams(spec);
  return vocab / (vocab + spec.intermediateSize * channelParams(spec));
}

export interface SolveOptions {
  ratio: number;
  /** Default: the vocabulary's share of the prunable parameters, capped at what the vocabulary can give. */
  vocabShare?: number;
  /** Parameters of the whole model. */
  total: number;
  /** Smallest V′ the tokenizer allows (its always-kept set). */
  minVocab: number;
  roundTo: number;
}

export function solveBudget(spec: ModelSpec, o: SolveOptions): Budget {
  check(o.ratio > 0 && o.ratio < 1, `--ratio must be in (0, 1), got ${o.ratio}`);
  const target = o.ratio * o.total;
  const maxVocab = (spec.vocabSize - o.minVocab) * vocabRowParams(spec);
  const maxFfn = (spec.intermediateSize - o.roundTo) * channelParams(spec);
  const vocabShare = o.vocabShare ?? Math.min(defaultVocabShare(spec), maxVocab / target);
  check(vocabShare >= 0 && vocabShare <= 1, `--vocab-share must be in [0, 1], got ${vocabShare}`);
  const pct = (n: number) => `${((100 * n) / o.total).toFixed(1)} %`;
  // The paper's default share is a long fraction: shown rounded, and named as the default.
  const split = o.vocabShare == null ? `the default vocabulary share ${vocabShare.toFixed(3)}` : `--vocab-share ${o.vocabShare}`;
  check(
    vocabShare * target <= maxVocab,
    `--vocab-share ${vocabShare} asks the vocabulary for ${pct(vocabShare * target)} of the parameters, but it can give at most ${pct(maxVocab)} (V′ ≥ ${o.minVocab}); lower --vocab-share to ≤ ${(maxVocab / target).toFixed(3)}`,
  );
  check(
    (1 - vocabShare) * target <= maxFfn,
    `--ratio ${o.ratio} with ${split} asks the FFN for ${pct((1 - vocabShare) * target)}, but it can give at most ${pct(maxFfn)} (I′ ≥ ${o.roundTo}); reachable with this split: ratio ≤ ${(Math.min(maxFfn / (1 - vocabShare || 1), vocabShare ? maxVocab / vocabShare : Infinity) / o.total).toFixed(3)}`,
  );
  const vocab = spec.vocabSize - Math.round((vocabShare * target) / vocabRowParams(spec));
  const ffnRemoval = target - (spec.vocabSize - vocab) * vocabRowParams(spec);
  const rawFfn = spec.intermediateSize - ffnRemoval / channelParams(spec);
  const ffn = Math.min(spec.intermediateSize, Math.max(o.roundTo, Math.round(rawFfn / o.roundTo) * o.roundTo));
  return { vocab, ffn };
}
