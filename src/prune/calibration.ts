/**
 * Calibration windows: text files (each one document) or JSONL (one document per line, text in
 * a field) are tokenized, concatenated, and cut into disjoint windows of `seqLen` tokens, of which
 * `samples` are drawn with a seeded shuffle. The length never derives from the model's context.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Tokenizer } from '@huggingface/tokenizers';
import { encode } from '../model/tokenizer.js';
import { CompactError, check } from '../util/errors.js';
import { shuffled } from './random.js';

export interface CalibrationOptions {
  samples: number;
  seqLen: number;
  seed: number;
  /** JSONL field holding the text. */
  field: string;
}

export interface Calibration {
  windows: number[][];
  /** sha256 of the calibration files' bytes, in order. */
  sha256: string;
  /** Tokens in the whole corpus, of which samples × seqLen are used. */
  corpusTokens: number;
  files: string[];
  options: CalibrationOptions;
}

export function readDocuments(file: string, field: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!/\.jsonl$/i.test(file)) return text.length > 0 ? [text] : [];
  const docs: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new CompactError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const value = (row as Record<string, unknown> | null)?.[field];
    check(typeof value === 'string', `${file}:${i + 1}: field ${JSON.stringify(field)} is missing or not a string (set it with --calib-field)`);
    if (value.length > 0) docs.push(value);
  });
  return docs;
}

export function buildCalibration(tokenizer: Tokenizer, files: string[], options: CalibrationOptions): Calibration {
  check(files.length > 0, 'no calibration text: pass --calib FILE…');
  const hash = createHash('sha256');
  const stream: number[] = [];
  for (const file of files) {
    hash.update(readFileSync(file));
    for (const doc of readDocuments(file, options.field)) for (const id of encode(tokenizer, doc)) stream.push(id);
  }
  const needed = options.samples * options.seqLen;
  check(
    stream.length >= needed,
    `calibration text has ${stream.length} tokens; ${options.samples} samples × ${options.seqLen} tokens = ${needed} are needed (add text or lower --samples / --seq-len)`,
  );
  const chunks = Math.floor(stream.length / options.seqLen);
  const picked = shuffled(chunks, options.seed).slice(0, options.samples).sort((a, b) => a - b);
  return {
    windows: picked.map((c) => stream.slice(c * options.seqLen, (c + 1) * options.seqLen)),
    sha256: hash.digest('hex'),
    corpusTokens: stream.length,
    files,
    options,
  };
}
