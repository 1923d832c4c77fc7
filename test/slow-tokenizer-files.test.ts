/**
 * The slow-tokenizer files rewritten for a pruned vocabulary (src/vocab/sentencepiece-model.ts,
 * src/vocab/slow-tokenizer-files.ts): byte-for-byte preservation of what pruning does not touch,
 * the id fields it must touch, and one clear refusal for files that are malformed or disagree with
 * tokenizer.json. Readers' ids on real pruned files: test/vocab-slow-oracle.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isStaleWeightFile } from '../src/model/checkpoint-writer.js';
import { CompactError } from '../src/util/errors.js';
import { checkPiecesMatch, pruneSentencePieceModel, readSentencePieceModel } from '../src/vocab/sentencepiece-model.js';
import {
  pruneFlatJsonObject,
  pruneMergesTxt,
  readFlatJsonObject,
  readMergesTxt,
  readSlowTokenizerFiles,
  staleTokenizerFile,
} from '../src/vocab/slow-tokenizer-files.js';
import type { TokenizerJson } from '../src/vocab/tokenizer-json.js';
import { indexVocabulary } from '../src/vocab/vocabulary.js';
import { ROOT } from './helpers/fixtures.js';

// ── a minimal protobuf encoder, to build models field by field ──
const varint = (v: bigint | number): number[] => {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  do {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x ? b | 0x80 : b);
  } while (x);
  return out;
};
const tag = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, v: number) => [...tag(field, 0), ...varint(v)];
const bytes = (field: number, payload: number[] | string) => {
  const p = typeof payload === 'string' ? [...new TextEncoder().encode(payload)] : payload;
  return [...tag(field, 2), ...varint(p.length), ...p];
};
const float = (field: number, v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, v, true);
  return [...tag(field, 5), ...b];
};
const piece = (s: string, score: number, type?: number, extra: number[] = []) =>
  bytes(1, [...bytes(1, s), ...float(2, score), ...(type ? int(3, type) : []), ...extra]);

const STORIES_MODEL = readFileSync(`${ROOT}test/fixtures/vocab/stories260K/tokenizer.model`);

test('tok512.model: 512 pieces with their types and scores; pruning nothing gives the same bytes', () => {
  const model = readSentencePieceModel(STORIES_MODEL, 'tokenizer.model');
  assert.equal(model.pieces.length, 512);
  assert.deepEqual(model.pieces.slice(0, 4), [
    { piece: '<unk>', score: 0, type: 'UNKNOWN' },
    { piece: '<s>', score: 0, type: 'CONTROL' },
    { piece: '</s>', score: 0, type: 'CONTROL' },
    { piece: '<0x00>', score: 0, type: 'BYTE' },
  ]);
  assert.deepEqual(model.pieces[260], { piece: 'he', score: -1, type: 'NORMAL' });
  const identity = Int32Array.from({ length: 512 }, (_, i) => i);
  assert.deepEqual(pruneSentencePieceModel(model, identity, 'tokenizer.model'), new Uint8Array(STORIES_MODEL));
  const json = JSON.parse(readFileSync(`${ROOT}test/fixtures/vocab/stories260K/tokenizer.json`, 'utf8')) as TokenizerJson;
  checkPiecesMatch(model, indexVocabulary(json), 'tokenizer.model');
});

// pieces: "a" (with an extension field 200), "<unk>" (UNKNOWN), "<s>" (CONTROL), "b" (type absent: NORMAL)
const PIECES = [piece('a', -1, 1, int(200, 7)), piece('<unk>', 0, 2), piece('<s>', 0, 3), piece('b', -2)];
const TRAINER_OTHER = [...int(3, 2), ...bytes(24, '<unk>')]; // model_type BPE, unk_piece
const trainer = (ids: number[]) => bytes(2, [...TRAINER_OTHER, ...ids]);
const NORMALIZER = bytes(3, bytes(1, 'identity'));
const SELF_TEST = bytes(4, bytes(1, [...bytes(1, 'ab'), ...bytes(2, '▁a b')]));
const EXTENSION = bytes(200, 'kept as is');
// unk_id 1, bos_id 2, eos_id −1 (a 10-byte varint); pad_id absent (default −1)
const MODEL = Uint8Array.from([
  ...PIECES.flat(),
  ...trainer([...int(40, 1), ...int(41, 2), ...int(42, -1)]),
  ...NORMALIZER,
  ...SELF_TEST,
  ...EXTENSION,
]);
const VOCAB = indexVocabulary({
  model: { vocab: { a: 0, '<unk>': 1, '<s>': 2, b: 3 }, merges: [] },
  added_tokens: [{ id: 4, content: '<extra>' }],
});

test('SentencePiece: dropped pieces go, kept ones keep their bytes, trainer ids follow, self-test data goes, the rest stays', () => {
  const model = readSentencePieceModel(MODEL, 'm.model');
  assert.deepEqual(model.pieces, [
    { piece: 'a', score: -1, type: 'NORMAL' },
    { piece: '<unk>', score: 0, type: 'UNKNOWN' },
    { piece: '<s>', score: 0, type: 'CONTROL' },
    { piece: 'b', score: -2, type: 'NORMAL' },
  ]);
  checkPiecesMatch(model, VOCAB, 'm.model');
  const pruned = pruneSentencePieceModel(model, Int32Array.from([-1, 0, 1, 2, 3]), 'm.model');
  // unk_id 1 → 0 and bos_id 2 → 1 are rewritten (appended: field order is free in protobuf), eos −1 stays.
  const expected = [...PIECES.slice(1).flat(), ...trainer([...int(42, -1), ...int(40, 0), ...int(41, 1)]), ...NORMALIZER, ...EXTENSION];
  assert.deepEqual([...pruned], expected);
  assert.deepEqual(
    readSentencePieceModel(pruned, 'out').pieces.map((p) => p.piece),
    ['<unk>', '<s>', 'b'],
  );
});

test('SentencePiece: trainer ids left at their defaults are written when they move; a dropped one is refused', () => {
  // "<unk>" last (unk_id 3 explicit), bos_id and eos_id at their defaults 1 and 2.
  const pieces = [piece('a', -1), piece('<s>', 0, 3), piece('</s>', 0, 3), piece('<unk>', 0, 2)];
  const model = readSentencePieceModel(Uint8Array.from([...pieces.flat(), ...trainer(int(40, 3))]), 'm.model');
  const pruned = pruneSentencePieceModel(model, Int32Array.from([-1, 0, 1, 2]), 'm.model');
  assert.deepEqual([...pruned], [...pieces.slice(1).flat(), ...trainer([...int(40, 2), ...int(41, 0), ...int(42, 1)])]);
  // Dropping "<s>" would leave bos_id naming a piece that no longer exists.
  assert.throws(
    () => pruneSentencePieceModel(model, Int32Array.from([0, -1, 1, 2]), 'm.model'),
    /m\.model trainer_spec bos_id is 1, a piece the pruned vocabulary drops/,
  );
  // Only an added token (id 4, not a piece) dropped: the model is unchanged, self-test data included.
  assert.deepEqual(pruneSentencePieceModel(readSentencePieceModel(MODEL, 'm.model'), Int32Array.from([0, 1, 2, 3, -1]), 'm.model'), MODEL);
});

test('SentencePiece: a piece may start with U+FEFF (a byte-order mark is part of the string, not stripped)', () => {
  const model = readSentencePieceModel(Uint8Array.from([...piece('<unk>', 0, 2), ...piece('\ufeffx', -1)]), 'm.model');
  assert.deepEqual(
    model.pieces.map((p) => p.piece),
    ['<unk>', '\ufeffx'],
  );
});

test('SentencePiece: anything else is refused with one line naming the file', () => {
  const bad: [string, number[], RegExp][] = [
    ['empty', [], /no pieces/],
    ['text', [...new TextEncoder().encode('IQ== 0\nIg== 1\nIw== 2\n')], /not a SentencePiece model/],
    ['truncated', [...MODEL.subarray(0, MODEL.length - 3)], /runs past the end|truncated/],
    ['pieces as a varint', [...int(1, 5)], /field 1 has wire type 0/],
    ['unknown piece type', piece('a', 0, 9), /piece 0: unknown piece type 9/],
    ['no piece string', bytes(1, float(2, 0)), /piece 0 has no piece string/],
    ['piece not UTF-8', bytes(1, bytes(1, [0xff, 0xfe])), /piece 0: piece is not UTF-8/],
    ['group wire type', [...PIECES[0], ...tag(9, 3)], /wire type 3/],
  ];
  for (const [name, content, pattern] of bad) {
    assert.throws(
      () => readSentencePieceModel(Uint8Array.from(content), 'dir/tokenizer.model'),
      (e: unknown) =>
        e instanceof CompactError &&
        e.message.startsWith('dir/tokenizer.model: not a SentencePiece model (') &&
        pattern.test(e.message) &&
        !e.message.includes('\n'),
      name,
    );
  }
});

test('SentencePiece: pieces that are not tokenizer.json ids are refused', () => {
  const model = readSentencePieceModel(MODEL, 'm.model');
  const other = indexVocabulary({ model: { vocab: { a: 0, '<unk>': 1, c: 2, b: 3 }, merges: [] } });
  assert.throws(
    () => checkPiecesMatch(model, other, 'm.model'),
    /m\.model piece 2 is "<s>" but tokenizer\.json id 2 is "c"; the two files describe different vocabularies/,
  );
  const smaller = indexVocabulary({ model: { vocab: { a: 0, '<unk>': 1 }, merges: [] } });
  assert.throws(() => checkPiecesMatch(model, smaller, 'm.model'), /m\.model has 4 pieces but tokenizer\.json only 2 ids/);
});

// ── vocab.json / added_tokens.json ──

test('flat JSON objects keep their order, key literals and layout; only kept entries remain, renumbered', () => {
  const old2new = Int32Array.from([0, -1, 1, 2]);
  const layouts: [string, string, string][] = [
    ['compact, one line (Qwen)', '{"10":0,"\\u0120a":1,"0":2,"!":3}', '{"10":0,"0":1,"!":2}'],
    ['GPT-2 spacing, final newline', '{"10": 0, "\\u0120a": 1, "0": 2, "!": 3}\n', '{"10": 0, "0": 1, "!": 2}\n'],
    ['indented (transformers)', '{\n  "10": 0,\n  "Ġa": 1,\n  "0": 2,\n  "!": 3\n}\n', '{\n  "10": 0,\n  "0": 1,\n  "!": 2\n}\n'],
  ];
  for (const [name, input, output] of layouts) {
    const json = readFlatJsonObject(input, 'vocab.json');
    assert.deepEqual(
      json.entries.map((e) => e.token),
      ['10', 'Ġa', '0', '!'],
      name,
    );
    assert.equal(pruneFlatJsonObject(json, Int32Array.from([0, 1, 2, 3])), input, `${name}: unchanged when all kept`);
    assert.equal(pruneFlatJsonObject(json, old2new), output, name);
  }
  assert.equal(pruneFlatJsonObject(readFlatJsonObject('{}\n', 'a.json'), old2new), '{}\n');
  for (const bad of ['[1]', '{"a": 1.5}', '{"a": -1}', '{"a": "1"}', '{"a": 1', '{"a": 1} x']) {
    assert.throws(
      () => readFlatJsonObject(bad, 'dir/vocab.json'),
      /^CompactError: dir\/vocab\.json: not a \{"token": id\} JSON object \(/,
      bad,
    );
  }
});

// ── merges.txt ──

test('merges.txt keeps its header, line endings and final newline, and exactly the kept merges', () => {
  for (const [input, output] of [
    ['#version: 0.2\na b\nab c\nx y\n', '#version: 0.2\na b\nx y\n'],
    ['a b\nab c\nx y', 'a b\nx y'],
    ['#version: 0.2\r\na b\r\nab c\r\nx y\r\n', '#version: 0.2\r\na b\r\nx y\r\n'],
  ]) {
    const merges = readMergesTxt(input, 'merges.txt');
    assert.deepEqual(merges.parts, [
      ['a', 'b'],
      ['ab', 'c'],
      ['x', 'y'],
    ]);
    assert.equal(pruneMergesTxt(merges, [0, 1, 2]), input);
    assert.equal(pruneMergesTxt(merges, [0, 2]), output);
  }
  assert.throws(
    () => readMergesTxt('#version: 0.2\na b c\n', 'dir/merges.txt'),
    /dir\/merges\.txt line 2 "a b c" is not two tokens separated by a space/,
  );
});

test('vocab.json, merges.txt and added_tokens.json must describe tokenizer.json', () => {
  const tokenizer = {
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] },
    added_tokens: [{ id: 3, content: '<|end|>' }],
  };
  const enc = (s: string) => new TextEncoder().encode(s);
  const read = (raw: Record<string, string>) =>
    readSlowTokenizerFiles(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, enc(v)])), { tokenizer }, 'dir');
  read({ 'vocab.json': '{"a":0,"b":1,"ab":2}', 'merges.txt': '#version: 0.2\na b\n', 'added_tokens.json': '{"<|end|>": 3}' });
  assert.throws(
    () => read({ 'vocab.json': '{"a":0,"b":2}' }),
    /dir\/vocab\.json gives "b" id 2 but tokenizer\.json gives it id 1; the two files describe different vocabularies/,
  );
  assert.throws(() => read({ 'vocab.json': '{"z":0}' }), /dir\/vocab\.json gives "z" id 0 but tokenizer\.json does not have it/);
  assert.throws(() => read({ 'merges.txt': 'b a\n' }), /dir\/merges\.txt merge #0 is "b a" but tokenizer\.json's is "a b"/);
  assert.throws(() => read({ 'merges.txt': 'a b\nb a\n' }), /dir\/merges\.txt has 2 merges but tokenizer\.json 1/);
  assert.throws(
    () => read({ 'added_tokens.json': '{"<|end|>": 4}' }),
    /dir\/added_tokens\.json gives "<\|end\|>" id 4 but tokenizer\.json gives it id 3/,
  );
  assert.throws(() => read({ 'vocab.json': '\xff' }), /dir\/vocab\.json: not a \{"token": id\} JSON object/);
  assert.throws(
    () => readSlowTokenizerFiles({ 'merges.txt': Uint8Array.from([0xff]) }, { tokenizer }, 'dir'),
    /dir\/merges\.txt: not UTF-8 text/,
  );
});

test('which files are stale after pruning', () => {
  for (const name of [
    'pytorch_model.bin',
    'pytorch_model-00001-of-00002.bin',
    'pytorch_model.bin.index.json',
    'model.gguf',
    'model.onnx',
    'model.onnx_data',
    'flax_model.msgpack',
    'tf_model.h5',
    'consolidated.safetensors',
    'consolidated.00.pth',
    'params.json',
    'adapter_model.safetensors',
    'training_args.bin',
    'model.ckpt',
    'weights.pt',
  ]) {
    assert.ok(isStaleWeightFile(name), name);
  }
  for (const name of [
    'config.json',
    'tokenizer.json',
    'generation_config.json',
    'LICENSE',
    'README.md',
    '.gitattributes',
    'chat_template.jinja',
    'tokenizer.model',
    'merges.txt',
  ]) {
    assert.ok(!isStaleWeightFile(name), name);
  }
  for (const name of ['qwen.tiktoken', 'tekken.json', 'tokenizer.model.v3', 'spiece.model', 'tok512.vocab', 'vocab.txt'])
    assert.ok(staleTokenizerFile(name), name);
  for (const name of ['tokenizer_config.json', 'chat_template.json', 'README.md', 'LICENSE']) assert.ok(!staleTokenizerFile(name), name);
});
