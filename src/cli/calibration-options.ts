/** The calibration flags shared by `prune` and `compare`, and their parsing. */
import { type Command, Option } from 'commander';
import { PRUNE_DEFAULTS } from '../defaults.js';
import { positiveInt, seed } from './parse.js';

export interface CalibrationFlags {
  calib: string[];
  calibField: string;
  samples: string;
  seqLen: string;
  seed: string;
}

export function addCalibrationOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--calib <file...>', 'calibration text: plain files (one document each) or .jsonl').default(
        [...PRUNE_DEFAULTS.calib],
        'the bundled TinyStories text',
      ),
    )
    .option('--calib-field <name>', 'JSONL field holding the text', PRUNE_DEFAULTS.calibField)
    .option('--samples <n>', 'calibration windows', String(PRUNE_DEFAULTS.samples))
    .option('--seq-len <n>', 'tokens per calibration window (never derived from the model context)', String(PRUNE_DEFAULTS.seqLen))
    .option('--seed <n>', 'seed for window sampling and random scores', String(PRUNE_DEFAULTS.seed));
}

export function calibrationOptions(f: CalibrationFlags): {
  calib: string[];
  calibField: string;
  samples: number;
  seqLen: number;
  seed: number;
} {
  return {
    calib: f.calib,
    calibField: f.calibField,
    samples: positiveInt(f.samples, '--samples'),
    seqLen: positiveInt(f.seqLen, '--seq-len'),
    seed: seed(f.seed),
  };
}
