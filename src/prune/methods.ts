/**
 * The pruning methods as data, the way model/families.ts holds families: what each one removes
 * and how it splits a --ratio budget. The pipeline reads these traits instead of testing names,
 * so a new method is one record here (plus its step, if it removes something new).
 */
export const METHODS = ['compact', 'vocab-only', 'ffn-only', 'shortgpt'] as const;
export type Method = (typeof METHODS)[number];

export interface MethodTraits {
  /** What it removes, for --help. */
  summary: string;
  /** Share of a --ratio budget taken from the vocabulary: fixed, or chosen (--vocab-share, or the split search); unused when dropsLayers. */
  vocabShare: number | 'chosen';
  /** Takes a --vocab budget (removes rare tokens). */
  takesVocab: boolean;
  /** Takes an --ffn budget (removes FFN channels, so down_proj can be compensated). */
  takesFfn: boolean;
  /** Removes whole layers instead, by Block Influence counted on every calibration token (ShortGPT); takes --ratio only. */
  dropsLayers: boolean;
}

export const METHOD_TRAITS: Record<Method, MethodTraits> = {
  compact: {
    summary: 'rare vocabulary + FFN channels (the paper)',
    vocabShare: 'chosen',
    takesVocab: true,
    takesFfn: true,
    dropsLayers: false,
  },
  'vocab-only': { summary: 'rare vocabulary only', vocabShare: 1, takesVocab: true, takesFfn: false, dropsLayers: false },
  'ffn-only': { summary: 'FFN channels only', vocabShare: 0, takesVocab: false, takesFfn: true, dropsLayers: false },
  shortgpt: {
    summary: 'whole layers (ShortGPT, the depth-pruning baseline)',
    vocabShare: 0,
    takesVocab: false,
    takesFfn: false,
    dropsLayers: true,
  },
};
