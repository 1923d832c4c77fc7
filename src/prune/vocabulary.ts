/** The kept vocabulary of a split: the old ids it keeps, chosen by rank or by token frequency. */
import { createHash } from 'node:crypto';
import { loadTokenizer } from '../model/tokenizer.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { readDocuments, type Calibration } from './calibration.js';
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
 * Token counts for frequency vocabularies (on --vocab-corpus, else on the calibration text; --auto
 * measures on the calibration's held-out tail, so then only the documents before it are counted),
 * and the dense model's expected counts on the calibration windows for the tokens they never show.
 */
export async function tokenFrequencies(
  src: Source,
  o: VocabularyOptions & Pick<SearchOptions, 'auto'> & CalibrationPassOptions & Pick<OutputOptions, 'onProgress'>,
  calibration: Calibration,
): Promise<TokenFrequencies> {
  return { counts: tokenCounts(src.input, o, calibration), expected: await expectedCounts(src.ckpt, calibration.windows, o) };
}

function tokenCounts(
  input: string,
  o: VocabularyOptions & Pick<SearchOptions, 'auto'> & Pick<CalibrationPassOptions, 'calib' | 'calibField'>,
  calibration: Calibration,
): Float64Array {
  const countText = (): string[] =>
    o.vocabCorpus
      ? o.vocabCorpus.flatMap((f) => readDocuments(f, o.calibField))
      : o.auto
        ? calibration.documents
        : o.calib.flatMap((f) => readDocuments(f, o.calibField));
  return countTokens(loadTokenizer(input), countText());
}
