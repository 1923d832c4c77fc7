/** Keep-set selection: what is always kept, closure, exact V′, modes, keep-list, and clear refusals. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { countTokens } from '../src/vocab/count-tokens.js';
import { selectKeepSet } from '../src/vocab/keep-set.js';
import type { JsonObject, TokenizerFiles } from '../src/vocab/tokenizer-json.js';
import { CompactError } from '../src/util/errors.js';

const STORIES_DIR = new URL('./fixtures/vocab/stories260K/', import.meta.url);
const readJson = (name: string): JsonObject => JSON.parse(readFileSync(new URL(name, STORIES_DIR), 'utf8')) as JsonObject;
const stories: TokenizerFiles = {
  tokenizer: readJson('tokenizer.json'),
  tokenizerConfig: readJson('tokenizer_config.json'),
  config: readJson('config.json'),
  generationConfig: readJson('generation_config.json'),
  specialTokensMap: readJson('special_tokens_map.json'),
};

/**
 * A toy BPE where a low id needs a higher one: "abcd" (6) is built as "ab" (7) + "cd" (5), because
 * BPE joins c+d (rank 0) before a+b (rank 1). Ids 0-4 are always kept (<unk> and the characters).
 */
function toyTokenizer(extra: Partial<JsonObject> = {}): JsonObject {
  return {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<unk>', special: true }],
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      vocab: { '<unk>': 0, a: 1, b: 2, c: 3, d: 4, cd: 5, abcd: 6, ab: 7 },
      merges: ['c d', 'a b', 'ab cd'],
    },
    ...extra,
  };
}

const ALWAYS = [0, 1, 2, 3, 4];

function assertCompactError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof CompactError && pattern.test(error.message));
}

test('rank mode keeps the lowest ids, admits a token only with its whole derivation, and meets V′ exactly', () => {
  const tokenizer = toyTokenizer();
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 5 }).keep, ALWAYS);
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6 }).keep, [...ALWAYS, 5]);
  // "abcd" needs "ab" too: it does not fit in 7, so "ab" (next in rank) takes the last slot.
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 7 }).keep, [...ALWAYS, 5, 7]);
  const all = selectKeepSet({ tokenizer }, { size: 8 });
  assert.deepEqual(all.keep, [...ALWAYS, 5, 6, 7]);
  assert.equal(all.size, 8);
});

test('frequency mode keeps the most counted tokens, ties by id, with their derivations', () => {
  const tokenizer = toyTokenizer();
  const counts = [0, 0, 0, 0, 0, 1, 100, 2];
  // "abcd" costs 3 ids (with "ab" and "cd"); at V′=7 only 2 are left, so the next best fill them.
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 7, mode: 'frequency', counts }).keep, [...ALWAYS, 5, 7]);
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts }).keep, [...ALWAYS, 7]);
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 8, mode: 'frequency', counts: [0, 0, 0, 0, 0, 0, 1] }).keep, [...ALWAYS, 5, 6, 7]);
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [] }).keep, [...ALWAYS, 5]);
  assertCompactError(() => selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency' }), /needs token counts/);
  assertCompactError(() => selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [0, -1] }), /id 1 is -1/);
});

test('frequency mode fills with the ids its counts never saw by expected count, then by id; counted ids keep their order', () => {
  const tokenizer = toyTokenizer();
  const expected = [0, 0, 0, 0, 0, 0.5, 0, 3]; // "cd" more expected than "ab"
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [] }).keep, [...ALWAYS, 5]);
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [], expected }).keep, [...ALWAYS, 7]);
  // A counted token beats any expectation, and ties between counted tokens stay by id.
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [0, 0, 0, 0, 0, 1], expected }).keep, [...ALWAYS, 5]);
  const tie = [0, 0, 0, 0, 0, 1, 0, 1];
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: tie, expected }).keep, [...ALWAYS, 5]);
  // Rank mode ignores both.
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, mode: 'rank', counts: tie, expected }).keep, [...ALWAYS, 5]);
  assertCompactError(
    () => selectKeepSet({ tokenizer }, { size: 6, mode: 'frequency', counts: [], expected: [0, NaN] }),
    /expected count for id 1 is NaN/,
  );
});

test('keep-list entries (ids or strings) are always kept with their closure and raise the minimum', () => {
  const tokenizer = toyTokenizer();
  const result = selectKeepSet({ tokenizer }, { size: 8, keepList: ['abcd'] });
  assert.equal(result.alwaysKept, 8);
  assert.deepEqual(result.breakdown, { special: 1, bytePieces: 0, characters: 4, keepList: 1, closure: 2 });
  assert.deepEqual(selectKeepSet({ tokenizer }, { size: 6, keepList: [7] }).keep, [...ALWAYS, 7]);
  assertCompactError(() => selectKeepSet({ tokenizer }, { size: 7, keepList: ['abcd'] }), /below the minimum 8/);
  assertCompactError(
    () => selectKeepSet({ tokenizer }, { size: 8, keepList: ['ab', 'zz', 99, -1, 'Ġthe'] }),
    /^keep-list entries not in the tokenizer: "zz", 99, -1, "Ġthe"$/,
  );
});

test('added tokens at the top ids and tokens the configs name are kept whatever V′', () => {
  const tokenizer = toyTokenizer({
    added_tokens: [
      { id: 0, content: '<unk>', special: true },
      { id: 8, content: '<|im_end|>', special: true },
    ],
  });
  const result = selectKeepSet(
    { tokenizer, config: { eos_token_id: [8, 7] }, tokenizerConfig: { pad_token: 'cd', bos_token: 'not-a-token' } },
    { size: 8 },
  );
  assert.deepEqual(result.keep, [...ALWAYS, 5, 7, 8]);
  assert.equal(result.alwaysKept, 8);
  assert.equal(result.originalSize, 9);
  assertCompactError(
    () => selectKeepSet({ tokenizer, config: { pad_token_id: 151935 } }, { size: 8 }),
    /config.json pad_token_id names token id 151935, which tokenizer.json does not have/,
  );
});

test('V′ below the minimum names the minimum; V′ at or above the original keeps everything', () => {
  assertCompactError(
    () => selectKeepSet(stories, { size: 360 }),
    /vocabulary size 360 is below the minimum 361 for this tokenizer \(3 special\/added, 256 byte pieces, 102 single characters/,
  );
  const everything = selectKeepSet(stories, { size: 100_000 });
  assert.equal(everything.size, 512);
  assert.equal(everything.requested, 100_000);
  assertCompactError(() => selectKeepSet(stories, { size: 0 }), /positive integer/);
});

test('stories260K: specials, all 256 <0xNN> pieces and every character are kept; merged tokens keep their parts', () => {
  const result = selectKeepSet(stories, { size: 380 });
  assert.equal(result.size, 380);
  assert.equal(result.alwaysKept, 361);
  const kept = new Set(result.keep);
  for (let id = 0; id <= 258; id++) assert.ok(kept.has(id), `id ${id} (special or byte piece) kept`);
  const model = (stories.tokenizer as { model: { vocab: Record<string, number>; merges: [string, string][] } }).model;
  const tokenOf = new Map(Object.entries(model.vocab).map(([token, id]) => [id, token]));
  for (const [token, id] of Object.entries(model.vocab)) if ([...token].length === 1) assert.ok(kept.has(id), `character ${token} kept`);
  // Every kept merged token is the result of some merge whose two parts are kept.
  for (const id of result.keep) {
    const token = tokenOf.get(id)!;
    if ([...token].length === 1 || id <= 258) continue;
    assert.ok(
      model.merges.some(([a, b]) => a + b === token && kept.has(model.vocab[a]) && kept.has(model.vocab[b])),
      `merged token ${token} stays reachable`,
    );
  }
  // Rank mode: the merged tokens kept are the lowest-id ones, as no closure was needed here.
  const merged = result.keep.filter((id) => id > 258 && [...tokenOf.get(id)!].length > 1);
  assert.deepEqual(
    merged,
    Array.from({ length: 19 }, (_, i) => 259 + i),
  );
});

test('countTokens counts the ids the tokenizer produces, without the BOS it adds', () => {
  const tokenizer = new Tokenizer(stories.tokenizer as object, stories.tokenizerConfig as object);
  const texts = ['Once upon a time', 'there was a cat.'];
  const counts = countTokens(tokenizer, texts);
  assert.equal(counts.length, 512);
  const expected = texts.flatMap((text) => tokenizer.encode(text, { add_special_tokens: false }).ids);
  assert.equal(
    counts.reduce((sum, n) => sum + n, 0),
    expected.length,
  );
  assert.equal(counts[1], 0);
  for (const id of expected) assert.ok(counts[id] >= 1);
  const result = selectKeepSet(stories, { size: 362, mode: 'frequency', counts });
  const mostFrequentMerged = expected.filter((id) => id > 258 && id < 410).sort((a, b) => counts[b] - counts[a] || a - b)[0];
  assert.ok(result.keep.includes(mostFrequentMerged));
});

test('non-BPE and missing tokenizers are refused with their type named', () => {
  const refusals: Array<[unknown, RegExp]> = [
    [
      { model: { type: 'Unigram', vocab: [['<unk>', 0]] } },
      /model type Unigram is not supported: vocabulary pruning needs a BPE tokenizer/,
    ],
    [{ model: { type: 'WordPiece', vocab: { a: 0 } } }, /model type WordPiece is not supported/],
    [{ model: { type: 'WordLevel', vocab: { a: 0 } } }, /model type WordLevel is not supported/],
    [{ added_tokens: [] }, /has no "model"/],
    [{ model: { type: 'BPE', vocab: { a: 0 }, merges: [], end_of_word_suffix: '</w>' } }, /end_of_word_suffix "<\/w>"/],
    [{ model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b c'] } }, /merge #0 "a b c" is not two tokens/],
  ];
  for (const [tokenizer, pattern] of refusals) assertCompactError(() => selectKeepSet({ tokenizer }, { size: 1 }), pattern);
  assertCompactError(
    () => selectKeepSet({ tokenizerConfig: { tokenizer_class: 'TikTokenTokenizer' } }, { size: 1 }),
    /no tokenizer.json: .*tiktoken-only or SentencePiece-only tokenizer \(tokenizer_class TikTokenTokenizer\)/,
  );
});
