/** The kept vocabulary of a split: the old ids it keeps, chosen by rank or by token frequency. */
import { createHash } from 'node:crypto';
import { loadTokenizer } from '../model/tokenizer.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { buildCalibration, readDocuments, type Calibration } from './calibration.js';
import { expectedCounts } from './expected-counts.js';
import type { CalibrationPassOptions, OutputOptions, VocabularyOptions } from './options.js';
import type { Source } from './source.js';

/**
 * What a frequency vocabulary is chosen by: the text's token counts, then the dense model's
 * expected counts (absent until the calibration pass has summed them, when it does: see
 * ScoredCandidates; until then uncounted ids fill by id).
 */
export interface TokenFrequencies {
  counts: Float64Array;
  expected?: Float64Array;
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
  expectedInPass: boolean,
): Promise<TokenFrequencies> {
  const tokenizer = loadTokenizer(src.input);
  const { samples, seqLen, seed, calibField: field } = o;
  const source = o.vocabCorpus ? buildCalibration(tokenizer, o.vocabCorpus, { samples, seqLen, seed, field, fewer: true }) : calibration!;
  const text = o.calibWindows && !o.vocabCorpus ? o.calib.flatMap((f) => readDocuments(f, field)) : source.documents;
  const counts = countTokens(tokenizer, text);
  return expectedInPass ? { counts } : { counts, expected: await expectedCounts(src.ckpt, source.windows, o) };
}

/**
 * Whether every token of the windows is kept by keeps[k] exactly when it is kept by other[k]: then
 * the common-token weights, and so every statistic of a calibration pass over those windows, are
 * the same for both. (A frequency vocabulary's fill by expected counts only orders ids its text
 * never shows, so the calibration windows, drawn from that text, almost always see no difference.)
 */
export function sameOnWindows(keeps: number[][], other: number[][], windows: number[][], V: number): boolean {
  const seen = new Uint8Array(V);
  for (const w of windows) for (const id of w) seen[id] = 1;
  return keeps.every((keep, k) => {
    const inKeep = new Uint8Array(V);
    for (const id of keep) inKeep[id] = 1;
    const inOther = new Uint8Array(V);
    for (const id of other[k]) inOther[id] = 1;
    return seen.every((s, id) => s === 0 || inKeep[id] === inOther[id]);
  });
}
