/**
 * Selection: from a scored candidate, everything that decides the output's bytes — the kept
 * vocabulary and its rewritten tokenizer files, the kept channels per layer, the dropped layers,
 * and (with compensation) where each layer's refitted down_proj comes from.
 */
import { pruneSlowTokenizerFiles, type SlowTokenizerFile, type SlowTokenizerFiles } from '../vocab/slow-tokenizer-files.js';
import { pruneTokenizerFiles, type SurgeryResult } from '../vocab/surgery.js';
import type { Budget } from './budget.js';
import type { CompensatedStore } from './compensated-store.js';
import { blockInfluence, layersToDrop } from './layer-drop.js';
import type { ScoredCandidates } from './scoring.js';
import { topChannels } from './scores.js';
import type { Source } from './source.js';

/** Everything that decides the output's bytes. */
export interface Plan {
  budget: Budget;
  keep: number[];
  surgery: SurgeryResult | null;
  /** tokenizer.model, vocab.json, merges.txt, added_tokens.json rewritten for the kept ids. */
  slowFiles: Map<SlowTokenizerFile, Uint8Array> | null;
  channels: number[][] | null;
  dropped: Set<number>;
  /** Compensated down_proj [D, I′] of a layer (f32), when compensation applies. */
  compensated: ((layer: number) => Float32Array) | null;
}

/** What selection needs beside the scores: the source, its slow-tokenizer files, how many layers go, the compensated weights. */
export interface SelectionInputs {
  src: Source;
  slow: SlowTokenizerFiles | null;
  /** Layers to drop (ShortGPT), 0 otherwise. */
  dropLayers: number;
  store: CompensatedStore | null;
}

/** Candidate k's plan. */
export function selectPlan(inputs: SelectionInputs, scored: ScoredCandidates, k: number): Plan {
  const { src, slow, dropLayers, store } = inputs;
  const spec = src.ckpt.spec;
  const s = scored.scores[k];
  const keep = scored.keeps[k];
  const { budget } = scored.candidates[k];
  const surgery = keep.length < spec.vocabSize ? pruneTokenizerFiles(src.files, keep) : null;
  const slowFiles = surgery && slow ? pruneSlowTokenizerFiles(slow, surgery) : null;
  const channels = budget.ffn < spec.intermediateSize ? (scored.channels[k] ?? s.layers.map((l) => topChannels(l, budget.ffn))) : null;
  const dropped = dropLayers ? new Set(layersToDrop(blockInfluence(s.influence!, s.weightTotal), dropLayers)) : new Set<number>();
  const compensated = store && channels ? (layer: number) => store.get(k, layer)! : null;
  return { budget, keep, surgery, slowFiles, channels, dropped, compensated };
}
