/**
 * What `prune` is told, in groups by the step that reads them. PruneOptions is their union, one
 * flat object as the CLI and the library build it (src/defaults.ts); each step takes only the
 * groups it reads, so what a step depends on shows in its signature.
 */
import type { Precision } from '../engine/precision.js';
import type { OutputType } from '../gguf/tensor-plan.js';
import type { KeepMode } from '../vocab/keep-set.js';
import type { CalibShard } from './calib-shard.js';
import type { Selection } from './greedy-removal.js';
import type { Method } from './methods.js';
import type { Criterion, Weighting } from './scores.js';

/** What is removed: the method (methods.ts) and its budget, --ratio or V′ and/or I′. */
export interface BudgetOptions {
  method: Method;
  vocab?: number;
  ffn?: number;
  ratio?: number;
  vocabShare?: number;
  roundTo?: number;
}

/** How the kept vocabulary is chosen. */
export interface VocabularyOptions {
  vocabMode: KeepMode;
  /** Text whose token counts drive --vocab-mode frequency (default: the calibration text). */
  vocabCorpus?: string[];
  keepList?: (string | number)[];
}

/** The split search (--auto). */
export interface SearchOptions {
  /** Search the vocabulary share by held-out bits per byte (search.ts says how it chooses). */
  auto?: boolean;
  /**
   * The search's measure: the bits (−log₂ likelihood) and UTF-8 bytes of each of `texts` under the
   * candidate checkpoint in `dir`. Passed in by the caller (src/defaults.ts gives eval's), so
   * pruning does not depend on evaluation.
   */
  measureTexts?: (dir: string, texts: readonly string[]) => Promise<{ bits: number; bytes: number }[]>;
  /**
   * The text the search measures (a file), instead of the calibration text's held-out tail; then
   * every calibration document feeds the windows and the token counts. For a calibration text the
   * model was trained on, whose tail measures memorisation (docs/compensation.md).
   */
  searchText?: string;
  /** Vocabulary modes the search tries (default: only vocabMode). */
  autoModes?: KeepMode[];
  /** After the coarse grid, also try the shares halfway to the best one's neighbours (a second calibration pass). Default true. */
  autoRefine?: boolean;
}

/** Least-squares compensation of down_proj (compensate.ts). */
export interface CompensationOptions {
  /**
   * Least-squares compensation of down_proj for the removed channels: true (an error where it
   * cannot apply), 'auto' (wherever channels are pruned by calibrated act²), false/undefined: off.
   */
  compensate?: boolean | 'auto';
  /** Damping λ = damp · mean diag(G_KK) (default DEFAULT_DAMP). */
  damp?: number;
  /** How the removed channels are chosen when compensating (default DEFAULT_SELECTION, greedy-removal.ts). */
  selection?: Selection;
  /**
   * Sequential statistics (SparseGPT-style; with compensation and one fixed split): layer ℓ's act²
   * and Gram are counted on the hidden states the already pruned and compensated layers < ℓ produce.
   */
  sequential?: boolean;
}

/** How FFN channels are scored: a criterion and its weighting, or scores files read and written. */
export interface ScoringOptions {
  weighting: Weighting;
  criterion: Criterion;
  scoresIn?: string[];
  scoresOut?: string;
  /**
   * Compute only this shard's statistics (calib-shard.ts) and write them to scoresOut, no model
   * (calibrateShard); the n shards summed by scoresIn give the single run's scores exactly.
   */
  calibShard?: CalibShard;
}

/** The calibration text and the forward pass over it. */
export interface CalibrationPassOptions {
  calib: string[];
  /** Pre-tokenized calibration windows (library use, e.g. models without a tokenizer): replace --calib; no held-out text, so no --auto. */
  calibWindows?: number[][];
  calibField: string;
  samples: number;
  seqLen: number;
  seed: number;
  /** Threads of the calibration pass and of compensation's solves. */
  threads?: number;
  /** Precision of the calibration forward pass (default fp32; int8: faster, statistics near fp32's, see docs/benchmarks.md). */
  precision?: Precision;
}

/** What is written and reported. */
export interface OutputOptions {
  force?: boolean;
  commandLine: string;
  version: string;
  /** Also write a GGUF of the output for llama.cpp, inside it (checked before any long work). */
  gguf?: OutputType;
  onProgress?: (stage: 'vocabulary' | 'calibrate' | 'search' | 'write', done: number, total: number) => void;
}

export interface PruneOptions
  extends BudgetOptions, VocabularyOptions, SearchOptions, CompensationOptions, ScoringOptions, CalibrationPassOptions, OutputOptions {}
