/**
 * Calibration windows: text files (each one document) or JSONL (one document per line, text in
 * a field) are cut at line starts into blocks of about 8·seqLen characters; blocks are visited in
 * a seeded random order and each one that encodes to at least `seqLen` tokens (with the
 * tokenizer's own special tokens, e.g. a leading BOS) gives one window: its first `seqLen` ids.
 * Only the visited blocks are tokenized, so a large corpus costs what the sample needs. The
 * length never derives from the model's context.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Tokenizer } from '@huggingface/tokenizers';
import { encode } from '../model/tokenizer.js';
import { CompactError, check } from '../util/errors.js';
import { oneLine, readUserBytes, readUserText } from '../util/files.js';
import { shuffled } from './random.js';

export interface CalibrationOptions {
  samples: number;
  seqLen: number;
  seed: number;
  /** JSONL field holding the text. */
  field: string;
  /** Keep back the last ~10 % of the text (at most this many characters) for evaluation. */
  holdOutChars?: number;
  /**
   * Accept fewer than `samples` windows, and shorter ones when the text has no block of `seqLen`
   * tokens (a frequency vocabulary's expected counts can use any text; statistics cannot).
   */
  fewer?: boolean;
}

/** Bundled calibration text (TinyStories, CDLA-Sharing-1.0): fits the bundled models; pass your own for real models. */
export const DEFAULT_CALIBRATION = fileURLToPath(new URL('../../data/tinystories/calibration_90pct.txt', import.meta.url));
/** How reports and model cards name the bundled text: the same on every machine (its absolute path is not). */
const BUNDLED_NAME = 'compact-llm/data/tinystories/calibration_90pct.txt (bundled)';

export interface Calibration {
  windows: number[][];
  /** sha256 of the calibration files' bytes, in order. */
  sha256: string;
  /** Tokens encoded while drawing the windows (the whole corpus only when it was too short). */
  corpusTokens: number;
  /** The files as given (the bundled text by its name in the package). */
  files: string[];
  options: CalibrationOptions;
  /** The held-out text (empty unless holdOutChars was given); windows never come from it. */
  heldOut: string;
  /** The documents the windows are drawn from (the held-out text cut off): what a frequency vocabulary may count. */
  documents: string[];
}

export function readDocuments(file: string, field: string): string[] {
  const text = readUserText(file);
  if (!/\.jsonl$/i.test(file)) return text.length > 0 ? [text] : [];
  const docs: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new CompactError(`${file}:${i + 1}: not valid JSON (${oneLine((e as Error).message)})`);
    }
    const value = (row as Record<string, unknown> | null)?.[field];
    check(
      typeof value === 'string',
      `${file}:${i + 1}: field ${JSON.stringify(field)} is missing or not a string (set it with --calib-field)`,
    );
    if (value.length > 0) docs.push(value);
  });
  return docs;
}

export function buildCalibration(tokenizer: Tokenizer, files: string[], options: CalibrationOptions): Calibration {
  check(files.length > 0, 'no calibration text: pass --calib FILE…');
  const hash = createHash('sha256');
  const documents: string[] = [];
  for (const file of files) {
    hash.update(readUserBytes(file));
    documents.push(...readDocuments(file, options.field));
  }
  const heldOut = options.holdOutChars ? holdOut(documents, options.holdOutChars) : '';
  const blocks = documents.flatMap((doc) => lineBlocks(doc, options.seqLen * 8));
  let windows: { block: number; ids: number[] }[] = [];
  const short: { block: number; ids: number[] }[] = [];
  let encoded = 0;
  for (const block of shuffled(blocks.length, options.seed)) {
    const ids = encode(tokenizer, blocks[block]);
    encoded += ids.length;
    if (ids.length >= options.seqLen) windows.push({ block, ids: ids.slice(0, options.seqLen) });
    else if (options.fewer && ids.length > 0 && short.length < options.samples) short.push({ block, ids });
    if (windows.length === options.samples) break;
  }
  const source = files.join(', ');
  if (options.fewer) {
    if (windows.length === 0) windows = short;
    check(windows.length > 0, `${source}: the text has no tokens to count`);
  } else
    check(
      windows.length === options.samples,
      `${source}: the calibration text has ${encoded} tokens in ${blocks.length} blocks, giving ${windows.length} windows of ${options.seqLen}; ${options.samples} samples × ${options.seqLen} tokens = ${options.samples * options.seqLen} are needed (add text or lower --samples / --seq-len)`,
    );
  return {
    windows: windows.sort((a, b) => a.block - b.block).map((w) => w.ids),
    sha256: hash.digest('hex'),
    corpusTokens: encoded,
    files: files.map((f) => (f === DEFAULT_CALIBRATION ? BUNDLED_NAME : f)),
    options,
    heldOut,
    documents,
  };
}

/** A calibration from pre-tokenized windows (library use; hashed as their JSON). */
export function windowsCalibration(windows: number[][], seed: number, field: string): Calibration {
  check(windows.length > 0 && windows.every((w) => w.length > 0), 'calibration windows must be non-empty');
  return {
    windows,
    sha256: createHash('sha256').update(JSON.stringify(windows)).digest('hex'),
    corpusTokens: windows.reduce((n, w) => n + w.length, 0),
    files: [],
    options: { samples: windows.length, seqLen: Math.max(...windows.map((w) => w.length)), seed, field },
    heldOut: '',
    documents: [],
  };
}

/** Splits text at line starts into pieces of at least `size` characters (the last may be shorter). */
export function lineBlocks(text: string, size: number): string[] {
  const blocks: string[] = [];
  for (let start = 0; start < text.length;) {
    const newline = text.indexOf('\n', start + size);
    const end = newline < 0 ? text.length : newline + 1;
    blocks.push(text.slice(start, end));
    start = end;
  }
  return blocks;
}

/** Cuts the last ~10 % of the text (≤ maxChars, from a line start) off the last documents. */
function holdOut(documents: string[], maxChars: number): string {
  const total = documents.reduce((n, d) => n + d.length, 0);
  let wanted = Math.min(maxChars, Math.floor(total / 10));
  const parts: string[] = [];
  while (wanted > 0 && documents.length > 0) {
    const last = documents[documents.length - 1];
    if (last.length <= wanted) {
      parts.unshift(documents.pop()!);
      wanted -= last.length;
      continue;
    }
    const lineStart = last.indexOf('\n', last.length - wanted);
    const cut = lineStart < 0 ? last.length - wanted : lineStart + 1;
    parts.unshift(last.slice(cut));
    documents[documents.length - 1] = last.slice(0, cut);
    break;
  }
  return parts.join('\n');
}

/** Next-token positions at the end of each window whose loss calibration checks (the head runs on these only). */
const LOSS_POSITIONS = 32;
/** A mean loss above this (nats per token) means broken weights, not a weak model: uniform guessing over 10⁶ tokens costs 14. */
const ABSURD_LOSS = 1000;

/** Per window, the next token at its last LOSS_POSITIONS positions ([T]; −1: not scored). */
export function lossTargets(windows: number[][]): Int32Array[] {
  return windows.map((w) => {
    const targets = new Int32Array(w.length).fill(-1);
    for (let t = Math.max(0, w.length - 1 - LOSS_POSITIONS); t < w.length - 1; t++) targets[t] = w[t + 1];
    return targets;
  });
}

/**
 * Refuses a model whose next-token loss on the calibration text is not finite or absurd: a broken
 * final norm or LM head leaves the layer statistics finite, so pruning would write an equally
 * broken checkpoint with exit 0 (`compact eval` refuses such a model too).
 */
export function checkCalibrationLoss(targets: Int32Array[], logprobs: Float32Array[]): void {
  let sum = 0;
  let count = 0;
  targets.forEach((row, s) =>
    row.forEach((target, t) => {
      if (target < 0) return;
      sum -= logprobs[s][t];
      count++;
    }),
  );
  const mean = sum / count;
  check(
    count === 0 || (Number.isFinite(mean) && mean <= ABSURD_LOSS),
    () =>
      `calibration: the model's next-token loss on the calibration text is ${Number.isFinite(mean) ? `${mean.toPrecision(3)} nats per token` : String(mean)}: its final norm, LM head or config.json is broken, so it cannot be pruned`,
  );
}
