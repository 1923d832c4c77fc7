/**
 * What a prune reports (the `--json` report, the library's return value), and the files that
 * record it in the checkpoint: the model card, the manifest and the timing file.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Precision } from '../engine/precision.js';
import type { OutputType } from '../gguf/tensor-plan.js';
import type { LeftOut } from '../model/checkpoint-writer.js';
import type { ParamCount } from '../model/param-count.js';
import { MANIFEST_FILE, type PruneSeconds, type PruneTiming, TIMING_FILE } from '../model/prune-files.js';
import { jsonText } from '../util/json-text.js';
import type { KeepMode } from '../vocab/keep-set.js';
import type { CalibShard } from './calib-shard.js';
import type { Calibration } from './calibration.js';
import type { Selection } from './greedy-removal.js';
import type { Method } from './methods.js';
import { modelCard } from './model-card.js';
import type { CalibrationPassOptions, OutputOptions, ScoringOptions } from './options.js';
import type { Criterion, Weighting } from './scores.js';
import type { Plan } from './select.js';

/** search.ts chooseSplit's rule, in words (the CLI and model card print it). */
export const CHOICE_RULE =
  'the lowest bits per byte, or, of the splits within one standard error of it (paired over the pieces), the one that removes the fewest tokens chosen by frequency; a split more than 4 standard errors behind the lowest on every 4th piece is not measured on the rest';

export interface AutoCandidate {
  vocabShare: number;
  vocabMode: KeepMode;
  /** 'grid' (first pass) or 'refine' (second pass, near the best of the grid). */
  pass: 'grid' | 'refine';
  vocab: number;
  ffn: number;
  removedRatio: number;
  heldOutBitsPerByte: number;
  /**
   * Its held-out bits per byte minus the lowest one's, and that difference's standard error (paired
   * over the held-out pieces measured: all of them, or for a split dropped by the race only the first
   * ones, where both numbers compare it with the lowest on those).
   */
  excess: number;
  standardError: number;
  piecesMeasured: number;
}

export interface PruneReport {
  input: string;
  output: string;
  method: Method;
  /** mode: how the kept vocabulary was chosen (rank or frequency). */
  vocab: { before: number; after: number; alwaysKept: number; mode: KeepMode };
  ffn: { before: number; after: number };
  layers: { before: number; after: number; dropped: number[] };
  parameters: { before: ParamCount; after: ParamCount; removedRatio: number };
  calibration: {
    sha256: string;
    files: string[];
    samples: number;
    seqLen: number;
    seed: number;
    corpusTokens: number;
    /** Precision of the calibration forward pass. */
    precision: Precision;
  } | null;
  criterion: Criterion | null;
  weighting: Weighting | null;
  /** What --auto tried (held-out bits per byte per split), the chosen one first, then by bits per byte. */
  auto: {
    /** The file the search measured (--search-text), or null: the calibration text's held-out tail. */
    heldOutText: string | null;
    heldOutChars: number;
    heldOutTokens: number;
    heldOutPieces: number;
    candidates: AutoCandidate[];
    warnings: string[];
  } | null;
  /** Least-squares compensation of down_proj, per layer (null: not applied). */
  compensation: CompensationReport | null;
  /** Files and directories of the input not copied to the output (stale weights or token ids, links), by name. */
  leftOut: LeftOut[];
  /** The GGUF written with --gguf: its file name in the output, llama.cpp architecture, type, bytes of tensor data. */
  gguf: { file: string; architecture: string; type: OutputType; bytes: number } | null;
  seconds: PruneSeconds;
}

/** What `calibrateShard` did: which windows of the calibration it ran, and where the scores went. */
export interface ShardReport {
  input: string;
  scoresOut: string;
  shard: CalibShard;
  /** Indices of the windows it ran, in the order a single run draws them. */
  windows: number[];
  calibration: NonNullable<PruneReport['calibration']>;
  criterion: Criterion;
  weighting: Weighting;
  seconds: { read: number; calibrate: number; total: number };
}

export interface CompensationReport {
  damp: number;
  /** How the removed channels were chosen (greedy-removal.ts). */
  selection: Selection;
  /** Per layer: λ, kept channels that never fired on a weighted token (held by damping alone), whether the layer had no statistics at all. */
  layers: { lambda: number; silentKept: number; noStatistics: boolean }[];
}

export function calibrationReport(
  calibration: Calibration,
  o: Pick<CalibrationPassOptions, 'seed' | 'precision'>,
): NonNullable<PruneReport['calibration']> {
  return {
    sha256: calibration.sha256,
    files: calibration.files,
    samples: calibration.windows.length, // fewer than asked where only expected counts used them
    seqLen: calibration.options.seqLen,
    seed: o.seed,
    corpusTokens: calibration.corpusTokens,
    precision: o.precision ?? 'fp32',
  };
}

/**
 * README.md (model card), the manifest and the timing file, into the checkpoint being written.
 * Card and manifest hold no timings, so the same inputs give byte-identical files; the pruning
 * time goes to its own file, the only one that differs between runs.
 */
export function writeRecordFiles(
  dir: string,
  report: PruneReport,
  plan: Plan,
  o: Pick<ScoringOptions, 'scoresIn'> & Pick<OutputOptions, 'commandLine' | 'version'> & Pick<CalibrationPassOptions, 'threads'>,
): void {
  const { seconds, ...reproducible } = report;
  writeFileSync(join(dir, 'README.md'), modelCard(report, o));
  const manifest = {
    tool: 'compact',
    version: o.version,
    command: o.commandLine,
    ...reproducible,
    old2new: plan.surgery ? Array.from(plan.surgery.old2new) : null,
    channels: plan.channels,
  };
  writeFileSync(join(dir, MANIFEST_FILE), jsonText(manifest));
  const timing: PruneTiming = {
    seconds,
    threads: o.threads ?? cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
  };
  writeFileSync(join(dir, TIMING_FILE), JSON.stringify(timing, null, 2) + '\n');
}
