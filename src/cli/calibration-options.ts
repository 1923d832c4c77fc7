/** The calibration flags shared by `prune` and `compare`, and their parsing. */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { positiveInt, seed } from './parse.js';

/** Bundled calibration text (TinyStories, CDLA-Sharing-1.0): fits the demo model; pass your own for real models. */
export const DEFAULT_CALIBRATION = fileURLToPath(new URL('../../data/tinystories/calibration_90pct.txt', import.meta.url));

export interface CalibrationFlags {
  calib: string[];
  calibField: string;
  samples: string;
  seqLen: string;
  seed: string;
}

export function addCalibrationOptions(command: Command): Command {
  return command
    .option('--calib <file...>', 'calibration text: plain files (one document each) or .jsonl (default: the bundled TinyStories text)', [DEFAULT_CALIBRATION])
    .option('--calib-field <name>', 'JSONL field holding the text', 'text')
    .option('--samples <n>', 'calibration windows', '16')
    .option('--seq-len <n>', 'tokens per calibration window (never derived from the model context)', '512')
    .option('--seed <n>', 'seed for window sampling and random scores', '0');
}

export function calibrationOptions(f: CalibrationFlags): { calib: string[]; calibField: string; samples: number; seqLen: number; seed: number } {
  return { calib: f.calib, calibField: f.calibField, samples: positiveInt(f.samples, '--samples'), seqLen: positiveInt(f.seqLen, '--seq-len'), seed: seed(f.seed) };
}
