/**
 * The split search (--auto): each scored candidate is written as a scratch checkpoint and measured
 * (bits per byte of the calibration's held-out text, by the caller's measureText), a second pass
 * tries shares halfway to the best one's neighbours, and the lowest wins.
 */
import { rmSync } from 'node:fs';
import { openCheckpoint } from '../model/checkpoint.js';
import { countParams } from '../model/param-count.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { removeOnInterrupt, scratchPath, writeDirAtomic } from '../util/atomic-dir.js';
import { check } from '../util/errors.js';
import type { Calibration } from './calibration.js';
import { type Candidate, refineCandidates } from './candidates.js';
import type { BudgetOptions, OutputOptions, SearchOptions } from './options.js';
import type { AutoCandidate, PruneReport } from './report.js';
import type { ScoredCandidates } from './scoring.js';
import type { Plan } from './select.js';
import type { Source } from './source.js';
import { writeCheckpointFiles } from './write.js';

/** Held-out text for --auto: the last 10 % of the calibration text, at most this many characters. */
export const AUTO_HOLDOUT_CHARS = 65536;
/** Below this many held-out characters the search's choice is reported as weakly supported. */
export const AUTO_FEW_CHARS = 20000;

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
  const measureText = o.measureText;
  check(measureText != null, 'the split search needs measureText (compact prune and the library pass bits per byte from eval)');
  const measured: (AutoCandidate & { index: number })[] = [];
  const measure = async (k: number) => {
    const dir = scratchPath(output, 'auto', k);
    const release = removeOnInterrupt(dir); // the search runs outside writeDirAtomic: an interrupt must not leave a candidate
    try {
      await writeDirAtomic(dir, { force: true, inputs: [src.input] }, (tmp) => writeCheckpointFiles(src, tmp, planFor(k)));
      const candidate = openCheckpoint(dir);
      const heldOutBitsPerByte = await measureText(dir, calibration.heldOut);
      const removedRatio = 1 - countParams(candidate).total / src.before.total;
      const c = candidates[k];
      measured.push({
        index: k,
        vocabShare: c.share!,
        vocabMode: c.mode,
        pass: c.pass,
        vocab: c.budget.vocab,
        ffn: c.budget.ffn,
        removedRatio,
        heldOutBitsPerByte,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      release();
    }
  };
  const best = () => [...measured].sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index)[0];
  for (let k = 0; k < candidates.length; k++) {
    await measure(k);
    o.onProgress?.('search', k + 1, candidates.length);
  }
  if (o.autoRefine ?? true) {
    const refined = refineCandidates(src, o, candidates, best());
    if (refined.length) {
      const from = candidates.length;
      await scored.add(refined);
      for (let k = from; k < candidates.length; k++) {
        await measure(k);
        o.onProgress?.('search', k + 1, candidates.length);
      }
    }
  }
  measured.sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index);
  const chosen = measured[0].index;
  const heldOutTokens = encode(loadTokenizer(src.input), calibration.heldOut).length;
  return {
    chosen,
    auto: {
      heldOutChars: calibration.heldOut.length,
      heldOutTokens,
      candidates: measured.map(({ index: _index, ...c }) => c),
      warnings: autoWarnings(calibration.heldOut.length, measured, candidates[chosen]),
    },
  };
}

/** What the report must say about how --auto's choice was made. */
function autoWarnings(heldOutChars: number, measured: AutoCandidate[], chosen: Candidate): string[] {
  const warnings: string[] = [];
  if (heldOutChars < AUTO_FEW_CHARS)
    warnings.push(
      `only ${heldOutChars} held-out characters decided the split (fewer than ${AUTO_FEW_CHARS}): the choice is noisy; give more calibration text`,
    );
  if (chosen.mode === 'frequency' && chosen.budget.vocab < Math.max(...measured.map((m) => m.vocab))) {
    warnings.push(
      'the vocabulary was chosen by token frequency on the calibration text: it is tuned to that domain, and text of another domain may lose more (check with --eval-text on general text)',
    );
  }
  return warnings;
}
