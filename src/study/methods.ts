/**
 * The methods a study compares, as overrides of `compact prune` options: every baseline runs
 * through the same pipeline as COMPACT itself, so differences come from the method alone.
 */
import type { PruneOptions } from '../prune/prune.js';

export interface StudyMethod {
  name: string;
  description: string;
  options: Partial<PruneOptions>;
}

export const STUDY_METHODS: StudyMethod[] = [
  { name: 'compact', description: 'COMPACT: rare vocabulary + FFN channels by common act² (default vocabulary share)', options: { method: 'compact' } },
  { name: 'compact-auto', description: 'COMPACT with the vocabulary share searched on held-out calibration text', options: { method: 'compact', auto: true } },
  { name: 'plain-act2', description: 'same split as compact, channels by plain act² (every token counts)', options: { method: 'compact', weighting: 'none' } },
  { name: 'magnitude', description: 'same split as compact, channels by weight magnitude', options: { method: 'compact', criterion: 'magnitude' } },
  { name: 'random', description: 'same split as compact, random channels', options: { method: 'compact', criterion: 'random' } },
  { name: 'ffn-only', description: 'FFN channels only (common act² = plain act² when no token is pruned)', options: { method: 'ffn-only' } },
  { name: 'vocab-only', description: 'rare vocabulary only', options: { method: 'vocab-only' } },
  { name: 'shortgpt', description: 'ShortGPT depth pruning: drop the layers of lowest Block Influence', options: { method: 'shortgpt' } },
];

export const STUDY_METHOD_NAMES = STUDY_METHODS.map((m) => m.name);
