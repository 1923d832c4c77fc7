/**
 * The library: what the `compact` command does, as functions that return reports instead of
 * printing them. Every option defaults to the CLI's default (both read src/defaults.ts).
 * User mistakes throw a CompactError whose message is the CLI's one-line error.
 */
import { readFileSync } from 'node:fs';
import { Decoder } from './engine/decoder.js';
import { Engine } from './engine/engine.js';
import { checkPrecision, type Precision } from './engine/precision.js';
import { evaluateText, type TextMetrics } from './eval/text-metrics.js';
import { exportGguf as writeGguf, type ExportOptions, type ExportReport } from './gguf/export.js';
import { OUTPUT_TYPES } from './gguf/tensor-plan.js';
import { openCheckpoint } from './model/checkpoint.js';
import { countParams, PARTS, type ParamCount, type Part } from './model/param-count.js';
import { encode, loadTokenizer } from './model/tokenizer.js';
import type { CalibShard } from './prune/calib-shard.js';
import { SELECTIONS } from './prune/greedy-removal.js';
import { METHODS } from './prune/methods.js';
import { calibrateShard as runShard, prune as runPrune, type PruneReport, type ShardReport } from './prune/prune.js';
import { CRITERIA, WEIGHTINGS } from './prune/scores.js';
import { checkChoice, checkPositiveInteger, CompactError } from './util/errors.js';
import { readUserText } from './util/files.js';
import { KEEP_MODES } from './vocab/keep-set.js';
import { eosTokenIds, loadTasks, runTasks, type TaskResults } from './api-tasks.js';
import { EVAL_DEFAULTS, EXPORT_DEFAULTS, type PruneSettings, withPruneDefaults } from './defaults.js';

export type { PruneSettings };

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface InspectReport {
  dir: string;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  tiedEmbeddings: boolean;
  /** Parameters by part (embedding, lmHead — 0 when tied —, attention, ffn, norms, other) and their total. */
  parameters: Record<Part, number> & { total: number };
  /** Each part's share of the total. */
  shares: Record<Part, number>;
  /** Bytes of the weights as stored. */
  storedBytes: number;
}

/** Where the parameters are (`compact inspect --json`): counted from the tensors' real shapes; reads headers only. */
export function inspect(dir: string): InspectReport {
  const ckpt = openCheckpoint(dir);
  const { spec } = ckpt;
  const count: ParamCount = countParams(ckpt);
  return {
    dir,
    modelType: spec.modelType,
    vocabSize: spec.vocabSize,
    hiddenSize: spec.hiddenSize,
    intermediateSize: spec.intermediateSize,
    layers: spec.numLayers,
    heads: spec.numHeads,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    tiedEmbeddings: spec.tiedEmbeddings,
    parameters: { ...count.parts, total: count.total },
    shares: Object.fromEntries(PARTS.map((p) => [p, count.parts[p] / count.total])) as Record<Part, number>,
    storedBytes: count.storedBytes,
  };
}

/**
 * Prunes `dir` into the new checkpoint directory `output` (`compact prune DIR -o OUTPUT`):
 * e.g. `prune(dir, out, { ratio: 0.3 })`. Returns the report `--json` prints.
 */
export async function prune(dir: string, output: string, options: PruneSettings = {}): Promise<PruneReport> {
  checkPruneSettings(options);
  const recorded = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined && typeof v !== 'function'));
  return runPrune(dir, output, {
    commandLine: `compact-llm prune(${JSON.stringify(dir)}, ${JSON.stringify(output)}, ${JSON.stringify(recorded)})`,
    ...withPruneDefaults(options),
    version: VERSION,
  });
}

/**
 * One calibration shard (`compact prune DIR --calib-shard i/n --scores-out F`): the statistics of
 * the windows w with w mod n = i − 1, written to `options.scoresOut`; no model. `prune(dir, out,
 * { scoresIn: [all n files] })` then gives exactly the single run's result (README: calibration on
 * several machines). Give the same budget and calibration options as that run.
 */
export async function calibrateShard(dir: string, shard: CalibShard, options: PruneSettings & { scoresOut: string }): Promise<ShardReport> {
  checkPruneSettings(options);
  return runShard(dir, {
    commandLine: `compact-llm calibrateShard(${JSON.stringify(dir)}, ${JSON.stringify(shard)})`,
    ...withPruneDefaults({ ...options, calibShard: shard }),
    calibShard: shard,
    version: VERSION,
  });
}

export interface EvaluateOptions {
  /** A UTF-8 text file: bits per byte and perplexity (`--text`). */
  text?: string;
  /** Inputs per window (`--window`). */
  window?: number;
  /** Tokens between window starts (`--stride`; default: the window). */
  stride?: number;
  /** Benchmarks (`--tasks`): `arc_easy`, `piqa`, `mmlu`, `gsm8k`, `mc:FILE.jsonl`, … */
  tasks?: string[];
  /** Folder of the benchmark files (`--data-dir`; default as the CLI: ../shared/data, else the bundled slices). */
  dataDir?: string;
  limit?: number;
  numFewshot?: number;
  /** Sequences decoded together by generation tasks (`--batch-size`). */
  batchSize?: number;
  threads?: number;
  /**
   * Layer MatMuls and LM head for `text` and the log-likelihood tasks (`--precision`): 'fp32' (default,
   * the reference) or 'int8' (faster, approximate); generation tasks stay fp32.
   */
  precision?: Precision;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface EvaluateReport {
  dir: string;
  /** The precision the text and log-likelihood tasks ran in. */
  precision: Precision;
  /** Present when `text` was given. */
  text?: TextMetrics & { file: string };
  /** Present when `tasks` were given: per task (lm-eval metrics) and per group (mmlu). */
  tasks?: TaskResults['tasks'];
  groups?: TaskResults['groups'];
  /** With tasks and no dataDir: true when ../shared/data was absent and the bundled slices in test/fixtures/tasks were read. */
  bundledTaskData?: boolean;
  /** Parameters by part and weight bytes, as `inspect` counts them. */
  parameters: InspectReport['parameters'];
  storedBytes: number;
}

/** Measures a checkpoint (`compact eval`): bits per byte of a text and/or benchmark tasks. */
export async function evaluate(dir: string, options: EvaluateOptions): Promise<EvaluateReport> {
  if (options.tasks != null && !Array.isArray(options.tasks))
    throw new CompactError('tasks must be a list of task names, e.g. ["arc_easy"]');
  if (options.text == null && !options.tasks?.length) throw new CompactError('nothing to evaluate: give text (a file) and/or tasks');
  const precision = checkPrecision(options.precision);
  const text = options.text == null ? undefined : readUserText(options.text);
  if (text?.length === 0) throw new CompactError(`${options.text}: the text is empty`);
  const window = options.window ?? EVAL_DEFAULTS.window;
  // Every task file is read (and checked) before any evaluation.
  const loaded = options.tasks?.length ? loadTasks(options.tasks.join(','), options.dataDir, options.limit, options.numFewshot) : undefined;
  const ckpt = openCheckpoint(dir);
  const context = ckpt.spec.raw.max_position_embeddings;
  // As eval --window: positions past the model's context were never trained, so the number would mean nothing.
  checkPositiveInteger(window, 'window');
  if (options.window != null && typeof context === 'number' && window > context) {
    throw new CompactError(
      `window ${window} is longer than the model's context (max_position_embeddings ${context}): positions past it were never trained, so the result would mean nothing`,
    );
  }
  const count = countParams(ckpt);
  const tokenizer = loadTokenizer(dir);
  // As eval --precision: the Engine's projections and head; runTasks' Decoder (generation) stays fp32.
  const engine = new Engine(ckpt, { threads: options.threads, precision });
  const report: EvaluateReport = { dir, precision, parameters: { ...count.parts, total: count.total }, storedBytes: count.storedBytes };
  try {
    if (text != null) {
      const onProgress = (d: number, t: number) => options.onProgress?.('text', d, t);
      const metrics = await evaluateText(engine, encode(tokenizer, text), Buffer.byteLength(text, 'utf8'), {
        window,
        stride: options.stride ?? window,
        onProgress,
      });
      report.text = { file: options.text!, ...metrics };
    }
    if (options.tasks?.length) {
      report.bundledTaskData = loaded!.bundledData;
      Object.assign(
        report,
        await runTasks(ckpt, engine, tokenizer, loaded!, {
          batchSize: options.batchSize ?? EVAL_DEFAULTS.batchSize,
          threads: options.threads,
          onProgress: options.onProgress,
        }),
      );
    }
  } finally {
    await engine.release();
  }
  return report;
}

export interface GenerateOptions {
  /** Most tokens generated (default: as `eval --reference` continuations, 64). */
  maxNewTokens?: number;
  threads?: number;
}

/** Greedy continuation of `prompt` (the tokenizer adds its BOS), stopping at the end-of-sequence token. */
export async function generate(dir: string, prompt: string, options: GenerateOptions = {}): Promise<{ text: string; tokens: number }> {
  const maxNewTokens = options.maxNewTokens ?? EVAL_DEFAULTS.newTokens;
  checkPositiveInteger(maxNewTokens, 'maxNewTokens'); // NaN decoded forever
  const ckpt = openCheckpoint(dir);
  const tokenizer = loadTokenizer(dir);
  const eos = new Set(eosTokenIds(dir, ckpt.spec.raw));
  const decoder = await Decoder.open(ckpt, { threads: options.threads });
  try {
    const promptIds = encode(tokenizer, prompt);
    const ids = await decoder.generate(promptIds, maxNewTokens, (g) => eos.has(g[g.length - 1]));
    // Decoded with the prompt: a SentencePiece decoder strips the space of a sequence's first token.
    const decode = (x: number[]) => tokenizer.decode(x, { skip_special_tokens: true });
    return { text: decode([...promptIds, ...ids]).slice(decode(promptIds).length), tokens: ids.length };
  } finally {
    await decoder.release();
  }
}

export type ExportSettings = Partial<Omit<ExportOptions, 'intoCheckpoint'>>;

/** Writes one GGUF file for llama.cpp (`compact export DIR -o FILE`; default type f16). */
export async function exportGguf(dir: string, output: string, options: ExportSettings = {}): Promise<ExportReport> {
  checkChoice('type', options.type, OUTPUT_TYPES);
  return writeGguf(dir, output, { ...EXPORT_DEFAULTS, ...options });
}

/**
 * What the CLI's choices and list options refuse, refused for library callers too (a JavaScript
 * caller's method 'wanda' was a TypeError deep inside, a criterion 'x' scored channels at random,
 * a calib string was read as a list of one-letter file names).
 */
function checkPruneSettings(o: PruneSettings): void {
  checkPrecision(o.precision);
  checkChoice('method', o.method, METHODS);
  checkChoice('vocabMode', o.vocabMode, KEEP_MODES);
  checkChoice('criterion', o.criterion, CRITERIA);
  checkChoice('weighting', o.weighting, WEIGHTINGS);
  checkChoice('selection', o.selection, SELECTIONS);
  checkChoice('gguf', o.gguf, OUTPUT_TYPES);
  for (const key of ['calib', 'scoresIn', 'vocabCorpus', 'autoModes', 'keepList'] as const)
    if (o[key] !== undefined && !Array.isArray(o[key]))
      throw new CompactError(`${key} must be a list (e.g. ["file.txt"]), got ${JSON.stringify(o[key])}`);
}
