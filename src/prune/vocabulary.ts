/** The kept vocabulary of a split: the old ids it keeps, chosen by rank or by token frequency. */
import { createHash } from 'node:crypto';
import { loadTokenizer } from '../model/tokenizer.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { buildCalibration, readDocuments, type Calibration } from './calibration.js';
import { expectedCounts } from './expected-counts.js';
import type { CalibrationPassOptions, OutputOptions, VocabularyOptions } from './options.js';
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
 * What frequency vocabularies are chosen by, on the text they are chosen for: its token counts,
 * and the dense model's expected counts on windows of it. That text is --vocab-corpus (up to
 * --samples windows drawn from it), else the calibration text and its windows (--auto measures on
 * the held-out tail, so then only the documents before it count; pre-tokenized windows have no
 * documents, so then --calib is counted).
 */
export async function tokenFrequencies(
  src: Source,
  o: VocabularyOptions & CalibrationPassOptions & Pick<OutputOptions, 'onProgress'>,
  calibration: Calibration | null,
): Promise<TokenFrequencies> {
  const tokenizer = loadTokenizer(src.input);
  const { samples, seqLen, seed, calibField: field } = o;
  const source = o.vocabCorpus ? buildCalibration(tokenizer, o.vocabCorpus, { samples, seqLen, seed, field, fewer: true }) : calibration!;
  const text = o.calibWindows && !o.vocabCorpus ? o.calib.flatMap((f) => readDocuments(f, field)) : source.documents;
  return { counts: countTokens(tokenizer, text), expected: await expectedCounts(src.ckpt, source.windows, o) };
}
