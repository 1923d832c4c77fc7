/** The pipeline's first step: the source checkpoint, its parameter count and its tokenizer files, parsed. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { MAX_JSON_BYTES, readUserBytes } from '../util/files.js';
import { readJsonDocument } from '../util/json-text.js';
import { selectKeepSet } from '../vocab/keep-set.js';
import {
  readSlowTokenizerFiles,
  SLOW_TOKENIZER_FILES,
  type SlowTokenizerFile,
  type SlowTokenizerFiles,
} from '../vocab/slow-tokenizer-files.js';
import type { TokenizerFiles } from '../vocab/tokenizer-json.js';
import type { VocabularyOptions } from './options.js';

/** The source checkpoint and its tokenizer files. */
export interface Source {
  input: string;
  ckpt: Checkpoint;
  before: ParamCount;
  files: TokenizerFiles;
  floatPaths: Partial<Record<keyof TokenizerFiles, Set<string>>>;
  /** Smallest V′ the tokenizer allows (V when there is no tokenizer.json). */
  alwaysKept: number;
}

/** The JSON files tokenizer surgery rewrites, by their key in TokenizerFiles. */
export const TOKENIZER_FILES: Record<keyof TokenizerFiles, string> = {
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  config: 'config.json',
  generationConfig: 'generation_config.json',
  specialTokensMap: 'special_tokens_map.json',
};

export function openSource(input: string, o: Pick<VocabularyOptions, 'keepList'>): Source {
  const ckpt = openCheckpoint(input);
  // Without tokenizer.json the vocabulary cannot be pruned (nor text calibrated), but FFN
  // pruning by magnitude or from a scores file still works.
  const { files, floatPaths } = readTokenizerFiles(input);
  const alwaysKept =
    files.tokenizer != null ? selectKeepSet(files, { size: ckpt.spec.vocabSize, keepList: o.keepList }).alwaysKept : ckpt.spec.vocabSize;
  return { input, ckpt, before: countParams(ckpt), files, floatPaths, alwaysKept };
}

/** The tokenizer and config files, parsed, with their float-literal paths (see util/json-text.ts). */
function readTokenizerFiles(dir: string): Pick<Source, 'files' | 'floatPaths'> {
  const files: TokenizerFiles = {};
  const floatPaths: Source['floatPaths'] = {};
  for (const [key, file] of Object.entries(TOKENIZER_FILES) as [keyof TokenizerFiles, string][]) {
    if (!existsSync(join(dir, file))) continue;
    const doc = readJsonDocument(join(dir, file), { within: dir });
    (files as Record<string, unknown>)[key] = doc.value;
    floatPaths[key] = doc.floatPaths;
  }
  return { files, floatPaths };
}

/** The input's slow-tokenizer files (tokenizer.model, vocab.json, …), parsed and checked against tokenizer.json. */
export function readSlowFiles(src: Source): SlowTokenizerFiles {
  const raw: Partial<Record<SlowTokenizerFile, Uint8Array>> = {};
  for (const file of SLOW_TOKENIZER_FILES) {
    const path = join(src.input, file);
    if (!existsSync(path)) continue;
    raw[file] = readUserBytes(path, { within: src.input, maxBytes: MAX_JSON_BYTES });
  }
  return readSlowTokenizerFiles(raw, src.files, src.input);
}
