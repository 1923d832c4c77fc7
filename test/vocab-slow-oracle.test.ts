/**
 * Pruned slow-tokenizer files (tokenizer.model; vocab.json + merges.txt + added_tokens.json) are the
 * bytes that readers which never see tokenizer.json validated, and those readers give the ids our
 * fast tokenizer gives. Fixture: tools/reference/slow_tokenizer_oracle.py (sentencepiece, transformers
 * loading only the slow files, an independent pure-Python GPT-2 BPE), see test/fixtures/vocab/README.md.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { prunedFiles, type SlowCase } from '../tools/reference/slow-tokenizer-cases.js';
import { ROOT } from './helpers/fixtures.js';

type Ids = number[][];
interface OracleCase extends SlowCase {
  pruned_sha256: Record<string, string>;
  fast_ids: Ids;
  fast_ids_without_specials?: Ids;
  slow: Array<{
    reader: string;
    versus: 'fast_ids' | 'fast_ids_without_specials';
    differs_on_original: number[];
    ids: Array<number[] | null>;
  }>;
}

const oracle = JSON.parse(readFileSync(`${ROOT}test/fixtures/vocab/oracle-slow.json`, 'utf8')) as {
  versions: Record<string, string>;
  texts: string[];
  cases: OracleCase[];
};
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

for (const c of oracle.cases) {
  test(`${c.name}: the slow-tokenizer files the oracle validated, and their readers' ids (transformers ${oracle.versions.transformers}, sentencepiece ${oracle.versions.sentencepiece})`, () => {
    const { keep, files } = prunedFiles(ROOT, c, oracle.texts);
    assert.equal(keep.length, c.size);
    assert.deepEqual(
      Object.fromEntries([...files].map(([name, bytes]) => [name, sha256(bytes)]).sort()),
      c.pruned_sha256,
      'sha256 of the pruned files',
    );

    const decode = (name: string) => JSON.parse(new TextDecoder().decode(files.get(name))) as object;
    const fast = new Tokenizer(decode('tokenizer.json'), decode('tokenizer_config.json'));
    const ours = {
      fast_ids: oracle.texts.map((t) => fast.encode(t).ids),
      fast_ids_without_specials: oracle.texts.map((t) => fast.encode(t, { add_special_tokens: false }).ids),
    };
    assert.deepEqual(ours.fast_ids, c.fast_ids, 'our fast ids = Rust tokenizers ids');
    if (c.fast_ids_without_specials) assert.deepEqual(ours.fast_ids_without_specials, c.fast_ids_without_specials);

    for (const reader of c.slow) {
      oracle.texts.forEach((text, i) => {
        if (reader.differs_on_original.includes(i)) return; // slow and fast already differ on the unpruned files
        const slowIds = reader.ids[i] ?? c[reader.versus]![i];
        assert.deepEqual(ours[reader.versus][i], slowIds, `${reader.reader} on ${JSON.stringify(text)}`);
      });
      // Most texts must count: a fixture where slow and fast disagree everywhere would prove nothing.
      assert.ok(
        reader.differs_on_original.length <= oracle.texts.length / 3,
        `${reader.reader}: ${reader.differs_on_original.length} texts excluded`,
      );
    }
  });
}
