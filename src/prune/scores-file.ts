/**
 * The scores record (scores.ts ChannelScores) as a prune makes it, checks that a record read with
 * --scores-in fits the model and flags, and the atomic write of --scores-out / a shard's scores.
 */
import { writeSync } from 'node:fs';
import type { Precision } from '../engine/precision.js';
import type { Checkpoint } from '../model/checkpoint.js';
import { fingerprint } from '../model/fingerprint.js';
import { type AtomicFileOptions, writeFileAtomic } from '../util/atomic-file.js';
import { check } from '../util/errors.js';
import { jsonText } from '../util/json-text.js';
import type { CalibShard } from './calib-shard.js';
import type { Calibration } from './calibration.js';
import { type ChannelScores, type Criterion, SCORES_FORMAT, type Weighting } from './scores.js';
import type { Source } from './source.js';

export function scoresRecord(
  src: Source,
  criterion: Criterion,
  weighting: Weighting | null,
  keptVocabSha256: string | null,
  calibration: Calibration | null,
  values: Pick<ChannelScores, 'layers' | 'influence' | 'weightTotal' | 'exact'>,
  shard: CalibShard | null = null,
  precision: Precision = 'fp32',
): ChannelScores {
  const { spec } = src.ckpt;
  return {
    format: SCORES_FORMAT,
    model: { fingerprint: fingerprint(src.ckpt), numLayers: spec.numLayers, intermediateSize: spec.intermediateSize },
    criterion,
    weighting,
    keptVocabSha256,
    calibrations: calibration
      ? [
          {
            sha256: calibration.sha256,
            field: calibration.options.field,
            samples: calibration.options.samples,
            seqLen: calibration.options.seqLen,
            seed: calibration.options.seed,
            shard,
            // Recorded when not fp32 (fp32 files stay as before), so sumScores refuses mixing precisions.
            ...(precision === 'fp32' ? {} : { precision }),
          },
        ]
      : [],
    ...values,
  };
}

/** Scores read with --scores-in must be for this checkpoint, criterion, weighting and kept vocabulary. */
export function checkScoresFit(
  s: ChannelScores,
  file: string,
  ckpt: Checkpoint,
  criterion: Criterion | null,
  weighting: Weighting,
  keptVocabSha256: string,
): void {
  const spec = ckpt.spec;
  check(
    s.model.numLayers === spec.numLayers &&
      s.model.intermediateSize === spec.intermediateSize &&
      s.layers.length === spec.numLayers &&
      s.layers.every((l) => l.length === spec.intermediateSize),
    `${file}: scores are for ${s.model.numLayers} layers × ${s.model.intermediateSize} channels, the model has ${spec.numLayers} × ${spec.intermediateSize}`,
  );
  check(s.model.fingerprint === fingerprint(ckpt), `${file}: scores were computed on another checkpoint (fingerprint mismatch)`);
  if (criterion) check(s.criterion === criterion, `${file}: scores use criterion ${s.criterion}, but --criterion is ${criterion}`);
  if (s.weighting) check(s.weighting === weighting, `${file}: scores use weighting ${s.weighting}, but --weighting is ${weighting}`);
  if (s.keptVocabSha256)
    check(
      s.keptVocabSha256 === keptVocabSha256,
      `${file}: scores were weighted with another kept vocabulary; use the same --vocab/--vocab-mode or recompute`,
    );
}

/** Writes a scores file atomically; `scores` is made only once the file may be written. */
export async function writeScoresFile(file: string, options: AtomicFileOptions, scores: () => ChannelScores): Promise<void> {
  await writeFileAtomic(file, options, (fd) => writeSync(fd, jsonText(scores())));
}
