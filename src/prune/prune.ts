/**
 * `compact prune`: the pipeline, one step per file.
 *
 *   source.ts      open the checkpoint and its tokenizer files
 *   candidates.ts  plan the splits: one budget, or --auto's grid of vocabulary shares × modes
 *   statistics.ts  calibrate: one layer-wise pass counts every split's act² (and Block Influence);
 *                  with compensation (compensation.ts, compensate.ts) each layer's down_proj is
 *                  refitted by least squares right after that layer's statistics arrive
 *   scoring.ts     score each split's channels (that pass, --scores-in, or the weights alone)
 *   select.ts      select what one split keeps: vocabulary, tokenizer files, channels, layers
 *   search.ts      --auto: write and measure each split, refine near the best, keep the best
 *   write.ts       write the chosen one as a standard checkpoint (+ GGUF), atomically
 *   report.ts      the report, model card, manifest and timing file
 *
 * Every check that bad input can fail runs before the calibration pass.
 */
import { checkThreads } from '../engine/session.js';
import { checkExportable } from '../gguf/export.js';
import { checkModelPath, openCheckpoint } from '../model/checkpoint.js';
import { countParams } from '../model/param-count.js';
import { checkOutputDir, writeDirAtomic } from '../util/atomic-dir.js';
import { checkOutputFile } from '../util/atomic-file.js';
import { check, checkPositiveInteger } from '../util/errors.js';
import { checkReadable } from '../util/files.js';
import { stopwatch } from '../util/stopwatch.js';
import type { CalibShard } from './calib-shard.js';
import { planCandidates } from './candidates.js';
import { compensationApplies, openCompensation } from './compensation.js';
import { layersForRatio } from './layer-drop.js';
import { METHOD_TRAITS } from './methods.js';
import type { PruneOptions } from './options.js';
import { calibrationReport, type PruneReport, type ShardReport, writeRecordFiles } from './report.js';
import { writeScoresFile } from './scores-file.js';
import type { Weighting } from './scores.js';
import { ScoredCandidates } from './scoring.js';
import { searchSplit } from './search.js';
import { selectPlan } from './select.js';
import { checkShardRun, writeShard } from './shard-run.js';
import { openSource, readSlowFiles } from './source.js';
import { calibrationFor } from './statistics.js';
import { tokenFrequencies } from './vocabulary.js';
import { writeCheckpointFiles, writeGgufInto } from './write.js';

export type { PruneOptions } from './options.js';
export type { AutoCandidate, CompensationReport, PruneReport, ShardReport } from './report.js';
export { AUTO_SHARES } from './candidates.js';
export { AUTO_FEW_CHARS, AUTO_HOLDOUT_CHARS } from './search.js';
export { ggufFileName } from './write.js';

export async function prune(input: string, output: string, o: PruneOptions): Promise<PruneReport> {
  check(!o.calibShard, 'a calibration shard writes only its scores, no model: use calibrateShard (compact prune --calib-shard), not prune');
  return (await pruneOrShard(input, output, o)) as PruneReport;
}

/** `prune --calib-shard i/n --scores-out F`: one shard's statistics, written atomically to F; no model. */
export async function calibrateShard(input: string, o: PruneOptions & { calibShard: CalibShard }): Promise<ShardReport> {
  check(o.scoresOut, "--calib-shard writes the shard's scores to --scores-out FILE (and no model); give --scores-out");
  return (await pruneOrShard(input, o.scoresOut, o)) as ShardReport;
}

async function pruneOrShard(input: string, output: string, o: PruneOptions): Promise<PruneReport | ShardReport> {
  const clock = stopwatch();
  checkModelPath(input);
  checkNumbers(o);
  // Outputs that exist without --force are refused before any work (and checked again when written).
  if (!o.calibShard) checkOutputDir(output, { force: o.force, inputs: [input] });
  if (o.scoresOut) checkOutputFile(o.scoresOut, o.force);
  const src = openSource(input, o);
  const spec = src.ckpt.spec;
  if (o.gguf) checkExportable(src.ckpt);
  const read = clock.lap();

  // ── plan: the candidate splits, the layers to drop, compensation; bad input stops here ──
  const grid = planCandidates(src, o);
  const traits = METHOD_TRAITS[o.method];
  const dropLayers = traits.dropsLayers ? layersForRatio(src.ckpt, src.before.total, o.ratio) : 0;
  const compensate = compensationApplies(src, o, grid);
  check(!o.sequential || (compensate && grid.length === 1), 'sequential statistics need compensation and one fixed split (not --auto)');
  const slow = grid.some((c) => c.budget.vocab < spec.vocabSize) ? readSlowFiles(src) : null; // a bad one is refused now
  if (!o.scoresIn?.length && !o.calibWindows) checkReadable(o.calib); // so is a missing calibration file
  if (o.calibShard) checkShardRun(o, o.calibShard);
  check(
    !(o.calibWindows && o.auto && o.searchText == null),
    '--auto measures held-out text; pre-tokenized calibration windows have none (give searchText)',
  );
  check(
    o.searchText == null || o.auto,
    '--search-text is what the split search measures, and this prune has a fixed split (drop --search-text, or give --ratio without --vocab-share)',
  );

  // ── calibration text (held-out tail for --auto) and token counts for frequency vocabularies ──
  const ffnPruned = grid.some((c) => c.budget.ffn < spec.intermediateSize);
  const needsActivations = traits.dropsLayers || (ffnPruned && o.criterion === 'act2' && !o.scoresIn?.length);
  const weighting: Weighting = traits.dropsLayers ? 'none' : o.weighting; // Block Influence counts every token
  check(
    !o.calibShard || needsActivations,
    '--calib-shard splits the calibration pass, and this prune has none (no FFN channel is scored by calibrated act², e.g. --method vocab-only or --criterion magnitude)',
  );
  const frequency = grid.some((c) => c.mode === 'frequency');
  const calibration = calibrationFor(input, o, { activations: needsActivations, expectedCounts: frequency && !o.vocabCorpus });
  // The expected counts come from the calibration pass itself when it runs over the windows they are for.
  const expectedInPass = needsActivations && !o.vocabCorpus && !o.calibShard;
  const frequencies = frequency ? await tokenFrequencies(src, o, calibration, expectedInPass) : undefined;

  // ── statistics and scores (and compensated down_proj): one layer-wise pass serves every split ──
  const comp = compensate ? openCompensation(output, o.threads) : null;
  try {
    const scored = new ScoredCandidates(src, o, { calibration, needsActivations, ffnPruned, weighting, frequencies, compensation: comp });
    await scored.add(grid);
    const calibrate = clock.lap();
    if (o.calibShard) return await writeShard(input, output, o.calibShard, calibration!, scored, o, { read, calibrate }, clock.total);
    const planFor = (k: number) => selectPlan({ src, slow, dropLayers, store: comp?.store ?? null }, scored, k);
    const score = clock.lap();

    // ── select: the only split, or the one --auto measures best ──
    const { chosen, auto } = o.auto ? await searchSplit(src, output, o, calibration!, scored, planFor) : { chosen: 0, auto: null };
    const search = clock.lap();
    const plan = planFor(chosen);
    const usedScores = scored.scores[chosen];
    if (o.scoresOut && usedScores) await writeScoresFile(o.scoresOut, { force: o.force, inputs: [input] }, () => scored.withExact(chosen));

    // ── write ──
    return await writeDirAtomic(output, { force: o.force, inputs: [input] }, async (tmp) => {
      const leftOut = await writeCheckpointFiles(src, tmp, plan, (d, t) => o.onProgress?.('write', d, t));
      const gguf = o.gguf ? await writeGgufInto(tmp, output, o.gguf) : null;
      const after = countParams(openCheckpoint(tmp));
      const report: PruneReport = {
        input,
        output,
        method: o.method,
        vocab: { before: spec.vocabSize, after: plan.keep.length, alwaysKept: src.alwaysKept, mode: scored.candidates[chosen].mode },
        ffn: { before: spec.intermediateSize, after: plan.budget.ffn },
        layers: { before: spec.numLayers, after: spec.numLayers - plan.dropped.size, dropped: [...plan.dropped] },
        parameters: { before: src.before, after, removedRatio: 1 - after.total / src.before.total },
        calibration: calibration && calibrationReport(calibration, o),
        criterion: plan.channels ? usedScores!.criterion : null,
        weighting: plan.channels || plan.dropped.size ? usedScores!.weighting : null,
        auto,
        compensation: plan.compensated ? scored.compensation[chosen] : null,
        leftOut,
        gguf,
        seconds: { read, calibrate, score, search, write: clock.lap(), total: clock.total() },
      };
      writeRecordFiles(tmp, report, plan, o);
      return report;
    });
  } finally {
    await comp?.close();
  }
}

/** The numbers the CLI parses, checked again for library callers (NaN damping failed only after the calibration pass). */
function checkNumbers(o: PruneOptions): void {
  checkPositiveInteger(o.samples, '--samples');
  checkPositiveInteger(o.seqLen, '--seq-len');
  check(Number.isInteger(o.seed) && o.seed >= -(2 ** 31) && o.seed < 2 ** 32, `--seed must be an integer in [-2^31, 2^32), got ${o.seed}`);
  check(o.damp == null || (Number.isFinite(o.damp) && o.damp > 0), `--damp must be > 0, got ${o.damp}`);
  if (o.threads != null) checkThreads(o.threads);
}
