/**
 * The split search (--auto): each scored candidate is written as a scratch checkpoint and measured
 * (bits per byte of the calibration's held-out text, in pieces, by the caller's measureTexts), a
 * second pass tries shares halfway to the best one's neighbours, and chooseSplit picks.
 */
import { rmSync } from 'node:fs';
import { openCheckpoint } from '../model/checkpoint.js';
import { countParams } from '../model/param-count.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { removeOnInterrupt, scratchPath, writeDirAtomic } from '../util/atomic-dir.js';
import { check } from '../util/errors.js';
import { type Calibration, lineBlocks } from './calibration.js';
import { type Candidate, refineCandidates } from './candidates.js';
import type { BudgetOptions, OutputOptions, SearchOptions } from './options.js';
import type { AutoCandidate, PruneReport } from './report.js';
import type { ScoredCandidates } from './scoring.js';
import type { Plan } from './select.js';
import type { Source } from './source.js';
import { writeCheckpointFiles } from './write.js';

/** Held-out text for --auto without --search-text: the last 10 % of the calibration text, at most this many characters. */
export const AUTO_HOLDOUT_CHARS = 65536;
/** Below this many held-out characters the search's choice is reported as weakly supported. */
export const AUTO_FEW_CHARS = 20000;
/** The held-out text is measured in about this many pieces (of ≥ 1,000 characters), whose spread gives the standard errors. */
const HELDOUT_PIECES = 32;
const HELDOUT_PIECE_MIN_CHARS = 1000;

/**
 * A race: every RACE_STRIDE-th held-out piece is measured first, by every split; only the splits
 * within RACE_SIGMAS standard errors of the lowest on those pieces are measured on the rest (a
 * split that far behind on a quarter of the text is not going to be chosen).
 */
const RACE_STRIDE = 4;
const RACE_SIGMAS = 4;

/** Bits and UTF-8 bytes of one held-out piece under one candidate. */
export type PieceBits = { bits: number; bytes: number };
export type MeasuredSplit = Omit<AutoCandidate, 'excess' | 'standardError' | 'piecesMeasured'> & { index: number; pieces: PieceBits[] };

/** Measures every candidate in `scored` (adding the refining ones), and returns the best one's index and what the report says. */
export async function searchSplit(
  src: Source,
  output: string,
  o: BudgetOptions & SearchOptions & Pick<OutputOptions, 'onProgress'>,
  calibration: Calibration,
  scored: ScoredCandidates,
  planFor: (k: number) => Plan,
): Promise<{ chosen: number; auto: NonNullable<PruneReport['auto']> }> {
  const { candidates } = scored;
  const measureTexts = o.measureTexts;
  check(measureTexts != null, 'the split search needs measureTexts (compact prune and the library pass bits from eval)');
  const pieces = heldOutPieces(calibration.heldOut);
  const all = pieces.map((_, i) => i);
  // Too few pieces for a first quarter to judge by (fewer than 4 in it): every split is measured on all of them.
  const first = pieces.length >= 4 * RACE_STRIDE ? all.filter((i) => i % RACE_STRIDE === 0) : all;
  const rest = all.filter((i) => !first.includes(i));
  const complete: MeasuredSplit[] = []; // measured on every piece
  const dropped: AutoCandidate[] = []; // measured on `first` only
  /** Bits of candidate k on the pieces at `at`, written as a scratch checkpoint and removed again. */
  const measureOn = async (k: number, at: number[]): Promise<{ bits: PieceBits[]; removedRatio: number }> => {
    const dir = scratchPath(output, 'auto', k);
    const release = removeOnInterrupt(dir); // the search runs outside writeDirAtomic: an interrupt must not leave a candidate
    try {
      await writeDirAtomic(dir, { force: true, inputs: [src.input] }, (tmp) => writeCheckpointFiles(src, tmp, planFor(k)));
      const removedRatio = 1 - countParams(openCheckpoint(dir)).total / src.before.total;
      const texts = at.map((i) => pieces[i]);
      const bits = await measureTexts(dir, texts);
      return { bits, removedRatio };
    } finally {
      rmSync(dir, { recursive: true, force: true });
      release();
    }
  };
  let steps = 0;
  const step = () => o.onProgress?.('search', ++steps, 2 * candidates.length); // two stages per candidate (a dropped one skips its second)
  const race = async (ks: number[]) => {
    const heats = new Map<number, { bits: PieceBits[]; removedRatio: number }>();
    for (const k of ks) {
      heats.set(k, await measureOn(k, first));
      step();
    }
    // The lowest on the first pieces, among these and the splits already measured on all.
    const onFirst = [...complete.map((m) => first.map((i) => m.pieces[i])), ...[...heats.values()].map((h) => h.bits)];
    const lowest = onFirst.reduce((a, b) => (bitsPerByte(b) < bitsPerByte(a) ? b : a));
    for (const k of ks) {
      const { bits, removedRatio } = heats.get(k)!;
      const c = candidates[k];
      const row = { vocabShare: c.share!, vocabMode: c.mode, pass: c.pass, vocab: c.budget.vocab, ffn: c.budget.ffn, removedRatio };
      const excess = bitsPerByte(bits) - bitsPerByte(lowest);
      const standardError = pairedStandardError(bits, lowest);
      if (rest.length > 0 && excess > RACE_SIGMAS * standardError) {
        dropped.push({ ...row, heldOutBitsPerByte: bitsPerByte(bits), excess, standardError, piecesMeasured: first.length });
        step();
        continue;
      }
      const full: PieceBits[] = new Array(pieces.length);
      first.forEach((i, j) => (full[i] = bits[j]));
      if (rest.length > 0) (await measureOn(k, rest)).bits.forEach((b, j) => (full[rest[j]] = b));
      step();
      complete.push({ index: k, ...row, heldOutBitsPerByte: bitsPerByte(full), pieces: full });
    }
  };
  await race(candidates.map((_, k) => k));
  if (o.autoRefine ?? true) {
    const lowest = [...complete].sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index)[0];
    const refined = refineCandidates(src, o, candidates, lowest);
    if (refined.length) {
      const from = candidates.length;
      await scored.add(refined);
      await race(refined.map((_, j) => from + j));
    }
  }
  const { chosen, compared } = chooseSplit(complete, src.ckpt.spec.vocabSize);
  const heldOutTokens = encode(loadTokenizer(src.input), calibration.heldOut).length;
  return {
    chosen,
    auto: {
      heldOutText: o.searchText ?? null,
      heldOutChars: calibration.heldOut.length,
      heldOutTokens,
      heldOutPieces: pieces.length,
      candidates: [...compared, ...dropped.sort((a, b) => a.excess - b.excess)],
      warnings: autoWarnings(calibration.heldOut.length, compared, candidates[chosen]),
    },
  };
}

/**
 * The choice (the one-standard-error rule of Breiman et al., CART 1984, with "simplest" read as
 * "least tuned to the calibration text"): the lowest held-out bits per byte, unless splits within
 * one standard error of it exist that remove fewer tokens chosen by frequency — then, of those, the
 * one removing fewest (ties: lower bits per byte). When held-out text cannot tell two splits apart,
 * the one whose vocabulary depends least on the calibration domain loses least on other text (a
 * rank-chosen vocabulary does not depend on it at all). Returns the chosen index and the report's
 * rows, the chosen one first, then by bits per byte.
 */
export function chooseSplit(measured: readonly MeasuredSplit[], vocabSize: number): { chosen: number; compared: AutoCandidate[] } {
  const byBits = [...measured].sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index);
  const best = byBits[0];
  const rows = byBits.map(({ index, pieces, ...c }) => ({
    index,
    row: {
      ...c,
      excess: c.heldOutBitsPerByte - best.heldOutBitsPerByte,
      standardError: pairedStandardError(pieces, best.pieces),
      piecesMeasured: pieces.length,
    },
  }));
  const tuned = (c: AutoCandidate) => (c.vocabMode === 'frequency' ? vocabSize - c.vocab : 0);
  const chosen = rows
    .filter(({ row }) => row.excess <= row.standardError)
    .sort((a, b) => tuned(a.row) - tuned(b.row) || a.row.heldOutBitsPerByte - b.row.heldOutBitsPerByte || a.index - b.index)[0];
  return { chosen: chosen.index, compared: [chosen.row, ...rows.filter((r) => r !== chosen).map((r) => r.row)] };
}

/** Bits per byte over all pieces. */
const bitsPerByte = (pieces: readonly PieceBits[]): number =>
  pieces.reduce((n, p) => n + p.bits, 0) / pieces.reduce((n, p) => n + p.bytes, 0);

/**
 * Standard error of bitsPerByte(a) − bitsPerByte(b) over the same pieces of text: the ratio
 * estimator's, (B/(B−1) · Σ_i (d_i − Δ·bytes_i)²)^½ / Σ bytes with d_i = a_i − b_i in bits and Δ the
 * difference in bits per byte (0 for a single piece).
 */
export function pairedStandardError(a: readonly PieceBits[], b: readonly PieceBits[]): number {
  const B = a.length;
  if (B < 2) return 0;
  const bytes = a.reduce((n, p) => n + p.bytes, 0);
  const delta = bitsPerByte(a) - bitsPerByte(b);
  const squares = a.reduce((n, p, i) => n + (p.bits - b[i].bits - delta * p.bytes) ** 2, 0);
  return Math.sqrt((B / (B - 1)) * squares) / bytes;
}

/** The held-out text in about HELDOUT_PIECES pieces cut at line starts (a short last piece joins the one before). */
export function heldOutPieces(text: string): string[] {
  const size = Math.max(HELDOUT_PIECE_MIN_CHARS, Math.ceil(text.length / HELDOUT_PIECES));
  const pieces = lineBlocks(text, size);
  if (pieces.length > 1 && pieces[pieces.length - 1].length < size / 2) pieces.splice(-2, 2, pieces.at(-2)! + pieces.at(-1)!);
  return pieces;
}

/** What the report must say about how --auto's choice was made. */
function autoWarnings(heldOutChars: number, measured: AutoCandidate[], chosen: Candidate): string[] {
  const warnings: string[] = [];
  if (heldOutChars < AUTO_FEW_CHARS)
    warnings.push(
      `only ${heldOutChars} held-out characters decided the split (fewer than ${AUTO_FEW_CHARS}): the choice is noisy; give more held-out text (more calibration text, or --search-text)`,
    );
  if (chosen.mode === 'frequency' && chosen.budget.vocab < Math.max(...measured.map((m) => m.vocab))) {
    warnings.push(
      'the vocabulary was chosen by token frequency on the calibration text: it is tuned to that domain, and text of another domain may lose more (check with --eval-text on general text; to weigh it in the search, give --search-text held-out text of both domains)',
    );
  }
  return warnings;
}
