/** Tokenizer surgery on synthetic files: every place an id lives is remapped, merges filtered by membership. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { selectKeepSet } from '../src/vocab/keep-set.js';
import { pruneTokenizerFiles } from '../src/vocab/surgery.js';
import type { JsonObject, TokenizerFiles } from '../src/vocab/tokenizer-json.js';
import { CompactError } from '../src/util/errors.js';

/** ids: 0 <s>, 1 </s>, 2 a, 3 b, 4 c, 5 ab, 6 bc, 7 abc; added <pad> 8 and <|im_end|> 9 outside the vocab. */
function files(merges: Array<string | [string, string]>, postProcessor: JsonObject): TokenizerFiles {
  return {
    tokenizer: {
      version: '1.0',
      truncation: { max_length: 16, strategy: 'LongestFirst', stride: 0, direction: 'Right' },
      padding: { strategy: 'BatchLongest', pad_id: 8, pad_token: '<pad>', pad_type_id: 0, direction: 'Right' },
      added_tokens: [
        { id: 0, content: '<s>', special: true },
        { id: 1, content: '</s>', special: true },
        { id: 8, content: '<pad>', special: true },
        { id: 9, content: '<|im_end|>', special: true },
      ],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: postProcessor,
      decoder: null,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        vocab: { '<s>': 0, '</s>': 1, a: 2, b: 3, c: 4, ab: 5, bc: 6, abc: 7 },
        merges,
      },
    },
    tokenizerConfig: {
      bos_token: '<s>',
      eos_token: { content: '<|im_end|>', special: true },
      added_tokens_decoder: {
        '0': { content: '<s>' },
        '1': { content: '</s>' },
        '8': { content: '<pad>' },
        '9': { content: '<|im_end|>' },
      },
      chat_template: "{{ '<s>' + message + '<|im_end|>' }}",
    },
    config: {
      model_type: 'gemma3',
      vocab_size: 12,
      bos_token_id: 0,
      eos_token_id: [1, 9],
      pad_token_id: 8,
      decoder_start_token_id: null,
      image_token_index: 9,
      text_config: { vocab_size: 12, eos_token_id: 9 },
    },
    generationConfig: { bos_token_id: 0, eos_token_id: [9, 1], do_sample: false },
    specialTokensMap: { bos_token: '<s>', eos_token: '<|im_end|>', pad_token: '<pad>' },
  };
}

const template = (bos: string, eos: string): JsonObject => ({
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: eos, type_id: 0 } }],
  pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { [bos]: { id: bos, ids: [0], tokens: [bos] }, [eos]: { id: eos, ids: [9], tokens: [eos] } },
});

// "bc" (6) is dropped: "b c" and "a bc" go, "abc" survives through "ab c".
const KEEP = [0, 1, 2, 3, 4, 5, 7, 8, 9];

function assertCompactError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof CompactError && pattern.test(error.message));
}

test('surgery renumbers densely, filters merges by membership in either spelling, and remaps every id', () => {
  for (const merges of [
    ['a b', 'b c', 'ab c', 'a bc'],
    [
      ['a', 'b'],
      ['b', 'c'],
      ['ab', 'c'],
      ['a', 'bc'],
    ] as Array<[string, string]>,
  ]) {
    const input = files(merges, {
      type: 'Sequence',
      processors: [{ type: 'ByteLevel', trim_offsets: false }, template('<s>', '<|im_end|>')],
    });
    const before = structuredClone(input);
    const { files: out, old2new, vocabSize } = pruneTokenizerFiles(input, KEEP);
    assert.deepEqual(input, before, 'inputs are not modified');
    assert.equal(vocabSize, 9);
    assert.deepEqual([...old2new], [0, 1, 2, 3, 4, 5, -1, 6, 7, 8, -1, -1]); // 12 rows: config.vocab_size
    const tokenizer = out.tokenizer as JsonObject & { model: JsonObject; added_tokens: JsonObject[]; post_processor: JsonObject };
    assert.deepEqual(Object.keys(tokenizer), Object.keys(input.tokenizer as object), 'same fields, same order');
    assert.deepEqual(tokenizer.model.vocab, { '<s>': 0, '</s>': 1, a: 2, b: 3, c: 4, ab: 5, abc: 6 });
    assert.deepEqual(
      tokenizer.model.merges,
      typeof merges[0] === 'string'
        ? ['a b', 'ab c']
        : [
            ['a', 'b'],
            ['ab', 'c'],
          ],
    );
    assert.deepEqual(
      tokenizer.added_tokens.map((t) => [t.id, t.content]),
      [
        [0, '<s>'],
        [1, '</s>'],
        [7, '<pad>'],
        [8, '<|im_end|>'],
      ],
    );
    assert.deepEqual(tokenizer.padding, { strategy: 'BatchLongest', pad_id: 7, pad_token: '<pad>', pad_type_id: 0, direction: 'Right' });
    assert.deepEqual(tokenizer.truncation, (input.tokenizer as JsonObject).truncation);
    const processors = tokenizer.post_processor.processors as JsonObject[];
    assert.deepEqual(processors[0], { type: 'ByteLevel', trim_offsets: false });
    assert.deepEqual(processors[1].special_tokens, {
      '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] },
      '<|im_end|>': { id: '<|im_end|>', ids: [8], tokens: ['<|im_end|>'] },
    });
    assert.deepEqual(Object.keys(out.tokenizerConfig!.added_tokens_decoder as object), ['0', '1', '7', '8']);
    assert.equal(out.tokenizerConfig!.chat_template, input.tokenizerConfig!.chat_template);
    assert.deepEqual(out.config, {
      model_type: 'gemma3',
      vocab_size: 9,
      bos_token_id: 0,
      eos_token_id: [1, 8],
      pad_token_id: 7,
      decoder_start_token_id: null,
      image_token_index: 8,
      text_config: { vocab_size: 9, eos_token_id: 8 },
    });
    assert.deepEqual(out.generationConfig, { bos_token_id: 0, eos_token_id: [8, 1], do_sample: false });
    assert.deepEqual(out.specialTokensMap, input.specialTokensMap);

    // The result loads and encodes: "abc" is still one token, BOS/EOS come from the remapped template.
    const pruned = new Tokenizer(out.tokenizer as object, out.tokenizerConfig!);
    assert.deepEqual(pruned.encode('abcbc').ids, [0, 6, 3, 4, 8]);
  }
});

test('RobertaProcessing / BertProcessing cls and sep ids are remapped', () => {
  for (const type of ['RobertaProcessing', 'BertProcessing']) {
    const { files: out } = pruneTokenizerFiles(files(['a b'], { type, sep: ['<|im_end|>', 9], cls: ['<s>', 0], trim_offsets: true }), KEEP);
    assert.deepEqual((out.tokenizer as { post_processor: JsonObject }).post_processor, {
      type,
      sep: ['<|im_end|>', 8],
      cls: ['<s>', 0],
      trim_offsets: true,
    });
  }
});

test('surgery refuses keep sets that drop a token the files still need, and unknown id-bearing fields', () => {
  const base = (): TokenizerFiles => files(['a b'], template('<s>', '<|im_end|>'));
  assertCompactError(
    () =>
      pruneTokenizerFiles(
        base(),
        [0, 1, 2, 3, 4, 8, 9].filter((id) => id !== 9),
      ),
    /post_processor special token <\|im_end\|> names token id 9, which the pruned vocabulary drops/,
  );
  const noTemplate = (): TokenizerFiles => files(['a b'], { type: 'ByteLevel' });
  assertCompactError(() => pruneTokenizerFiles(noTemplate(), [0, 1, 2, 3, 4, 9]), /padding pad_id names token id 8/);
  const withoutPadding = noTemplate();
  delete (withoutPadding.tokenizer as JsonObject).padding;
  assertCompactError(
    () => pruneTokenizerFiles(withoutPadding, [0, 1, 2, 3, 4, 9]),
    /config.json pad_token_id names token id 8, which the pruned vocabulary drops/,
  );
  delete withoutPadding.config;
  delete withoutPadding.generationConfig;
  assertCompactError(() => pruneTokenizerFiles(withoutPadding, [0, 1, 2, 3, 4, 9]), /special_tokens_map.json names token "<pad>"/);
  assertCompactError(() => pruneTokenizerFiles(base(), [0, 1, 2, 3, 4, 8, 9, 10]), /keep set names id 10/);
  assertCompactError(() => pruneTokenizerFiles(base(), [1, 0, 2, 3, 4, 8, 9]), /ascending order/);
  const smallEmbedding = base();
  smallEmbedding.config!.vocab_size = 9;
  assertCompactError(() => pruneTokenizerFiles(smallEmbedding, KEEP), /token id 9 has no embedding row: config.json vocab_size is 9/);
  assertCompactError(() => pruneTokenizerFiles(files(['a b'], { type: 'Mystery' }), KEEP), /post_processor type Mystery is not supported/);
  const whisperish = base();
  whisperish.generationConfig = { suppress_tokens: [1, 2] };
  assertCompactError(() => pruneTokenizerFiles(whisperish, KEEP), /generation_config.json suppress_tokens lists token ids/);
  assertCompactError(
    () => pruneTokenizerFiles({ tokenizer: { model: { type: 'Unigram', vocab: [] } } }, []),
    /model type Unigram is not supported/,
  );
  assertCompactError(() => pruneTokenizerFiles({}, []), /no tokenizer.json/);
});

test('stories260K: the pruned checkpoint files agree with old2new and the keep set', () => {
  const dir = new URL('./fixtures/vocab/stories260K/', import.meta.url);
  const read = (name: string): JsonObject => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as JsonObject;
  const input: TokenizerFiles = {
    tokenizer: read('tokenizer.json'),
    tokenizerConfig: read('tokenizer_config.json'),
    config: read('config.json'),
    generationConfig: read('generation_config.json'),
    specialTokensMap: read('special_tokens_map.json'),
  };
  const { keep } = selectKeepSet(input, { size: 400 });
  const { files: out, old2new } = pruneTokenizerFiles(input, keep);
  assert.equal(out.config!.vocab_size, 400);
  assert.equal(old2new.length, 512);
  assert.equal(old2new.filter((id) => id >= 0).length, 400);
  keep.forEach((id, newId) => assert.equal(old2new[id], newId));
  const before = (input.tokenizer as { model: { vocab: Record<string, number> } }).model.vocab;
  const after = (out.tokenizer as { model: { vocab: Record<string, number> } }).model.vocab;
  for (const [token, id] of Object.entries(after)) assert.equal(id, old2new[before[token]]);
  assert.deepEqual([out.config!.bos_token_id, out.config!.eos_token_id, out.generationConfig!.eos_token_id], [1, 2, 2]);
  const tokenizer = new Tokenizer(out.tokenizer as object, out.tokenizerConfig!);
  const original = new Tokenizer(input.tokenizer as object, input.tokenizerConfig!);
  const text = 'Once upon a time, there was a little girl named Lily.';
  assert.equal(tokenizer.decode(tokenizer.encode(text).ids), original.decode(original.encode(text).ids));
  assert.equal(tokenizer.encode(text).ids[0], 1);
});
