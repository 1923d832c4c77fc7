/** The kept vocabulary of a split: the old ids it keeps, chosen by rank or by token frequency. */
import { createHash } from 'node:crypto';
import { loadTokenizer } from '../model/tokenizer.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { buildCalibration, readDocuments, type Calibration } from './calibration.js';
import { expectedCounts } from './expected-counts.js';
import type { CalibrationPassOptions, OutputOptions, SearchOptions, VocabularyOptions } from './options.js';
import type { Source } from './source.js';

/** What a frequency vocabulary is chosen by: the text's token counts, then the dense model's expected counts. */
export interface TokenFrequencies {
  counts: Float64Array;
  expected: Float64Array;
}

/** Old ids kept for V′ (all of them without a tokenizer). */
export function keepFor(
  src: Source,
  vocab: number,
  mode: KeepMode,
  o: Pick<VocabularyOptions, 'keepList'>,
  frequencies: TokenFrequencies | undefined,
): number[] {
  if (src.files.tokenizer == null) return [...Array(src.ckpt.spec.vocabSize).keys()];
  return selectKeepSet(src.files, { size: vocab, mode, ...frequencies, keepList: o.keepList }).keep;
}

/** Names a kept vocabulary in a scores file (common act² depends on it). */
export const keepHash = (keep: number[]): string => createHash('sha256').update(Int32Array.from(keep)).digest('hex');

/**
 * What frequency vocabularies are chosen by, on the text they are chosen for (--vocab-corpus, else
 * the calibration text; --auto measures on the calibration's held-out tail, so then only the
 * documents before it count): its token counts, and the dense model's expected counts on windows
 * of it (the calibration windows, or up to as many drawn from --vocab-corpus).
 */
export async function tokenFrequencies(
  src: Source,
  o: VocabularyOptions & Pick<SearchOptions, 'auto'> & CalibrationPassOptions & Pick<OutputOptions, 'onProgress'>,
  calibration: Calibration | null,
): Promise<TokenFrequencies> {
  const tokenizer = loadTokenizer(src.input);
  const text = o.vocabCorpus
    ? o.vocabCorpus.flatMap((f) => readDocuments(f, o.calibField))
    : o.auto
      ? calibration!.documents
      : o.calib.flatMap((f) => readDocuments(f, o.calibField));
  const windows = o.vocabCorpus
    ? buildCalibration(tokenizer, o.vocabCorpus, { samples: o.samples, seqLen: o.seqLen, seed: o.seed, field: o.calibField, fewer: true })
        .windows
    : calibration!.windows;
  return { counts: countTokens(tokenizer, text), expected: await expectedCounts(src.ckpt, windows, o) };
}
