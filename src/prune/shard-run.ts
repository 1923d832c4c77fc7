/**
 * `prune --calib-shard i/n --scores-out F`: the pipeline stops after collecting statistics and
 * writes the shard's scores (calib-shard.ts says how shards sum); no model.
 */
import { check } from '../util/errors.js';
import { checkCalibShard, shardWindows, type CalibShard } from './calib-shard.js';
import type { Calibration } from './calibration.js';
import type { CalibrationPassOptions, OutputOptions, ScoringOptions, SearchOptions } from './options.js';
import { calibrationReport, type ShardReport } from './report.js';
import { writeScoresFile } from './scores-file.js';
import type { ScoredCandidates } from './scoring.js';

/** What a calibration shard needs, checked before any long work. */
export function checkShardRun(
  o: Pick<ScoringOptions, 'scoresIn'> & Pick<SearchOptions, 'auto'> & Pick<CalibrationPassOptions, 'calibWindows' | 'samples'>,
  shard: CalibShard,
): void {
  checkCalibShard(shard);
  check(
    !o.scoresIn?.length,
    '--calib-shard computes scores; sum the shards with --scores-in in the run that prunes, without --calib-shard',
  );
  check(
    !o.auto,
    '--calib-shard: the split search (--auto) measures pruned candidates, which needs the whole calibration; fix the split (--vocab-share s, --no-auto, or --vocab/--ffn)',
  );
  shardWindows(o.calibWindows?.length ?? o.samples, shard); // enough windows for n non-empty shards
}

/** Writes the shard's scores (with their exact sums) to `scoresOut` atomically, and says what it ran. */
export async function writeShard(
  input: string,
  scoresOut: string,
  shard: CalibShard,
  calibration: Calibration,
  scored: ScoredCandidates,
  o: Pick<OutputOptions, 'force'> & Pick<CalibrationPassOptions, 'seed' | 'precision'>,
  seconds: Omit<ShardReport['seconds'], 'total'>,
  total: () => number,
): Promise<ShardReport> {
  await writeScoresFile(scoresOut, { force: o.force, inputs: [input] }, () => scored.withExact(0));
  return {
    input,
    scoresOut,
    shard,
    windows: shardWindows(calibration.windows.length, shard),
    calibration: calibrationReport(calibration, o),
    criterion: scored.scores[0].criterion,
    weighting: scored.scores[0].weighting!,
    seconds: { ...seconds, total: total() },
  };
}
