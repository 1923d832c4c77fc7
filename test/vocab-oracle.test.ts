/**
 * Our pruned tokenizers, read by @huggingface/tokenizers, give the ids that Hugging Face `tokenizers`
 * (Rust, via Python) gave for the same pruned files. Fixture: tools/reference/tokenizer_oracle.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { countTokens } from '../src/vocab/count-tokens.js';
import { selectKeepSet, type KeepSetOptions } from '../src/vocab/keep-set.js';
import { pruneTokenizerFiles } from '../src/vocab/surgery.js';
import type { JsonObject } from '../src/vocab/tokenizer-json.js';

interface OracleCase {
  name: string;
  source_dir: string;
  size: number;
  mode: 'rank' | 'frequency';
  original_ids: number[][];
  pruned_ids: number[][];
}

const ROOT = new URL('../', import.meta.url);
const oracle = JSON.parse(readFileSync(new URL('test/fixtures/vocab/oracle-ids.json', ROOT), 'utf8')) as {
  tokenizers_version: string;
  texts: string[];
  cases: OracleCase[];
};

for (const oracleCase of oracle.cases) {
  test(`${oracleCase.name}: same ids as tokenizers ${oracle.tokenizers_version} (Rust)`, () => {
    const dir = new URL(`${oracleCase.source_dir}/`, ROOT);
    const read = (name: string): JsonObject => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as JsonObject;
    const files = { tokenizer: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') };
    const original = new Tokenizer(files.tokenizer, files.tokenizerConfig);
    const options: KeepSetOptions = { size: oracleCase.size };
    if (oracleCase.mode === 'frequency') {
      options.mode = 'frequency';
      options.counts = countTokens(original, oracle.texts);
    }
    const { files: out } = pruneTokenizerFiles(files, selectKeepSet(files, options).keep);
    const pruned = new Tokenizer(out.tokenizer as object, out.tokenizerConfig!);
    oracle.texts.forEach((text, i) => {
      // The original first: a difference there would be the JS library's, not the pruning's.
      assert.deepEqual(original.encode(text).ids, oracleCase.original_ids[i], `original ids of ${JSON.stringify(text)}`);
      assert.deepEqual(pruned.encode(text).ids, oracleCase.pruned_ids[i], `pruned ids of ${JSON.stringify(text)}`);
    });
  });
}
