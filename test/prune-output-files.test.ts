/**
 * What `compact prune` puts in the output beside the weights: slow-tokenizer files rewritten for a
 * pruned vocabulary (copied unchanged otherwise), and stale weights, tokenizer files with the old
 * ids, directories and symbolic links left out and listed (--json `leftOut`, the human report, the
 * model card).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../src/cli/main.js';
import { TIMING_FILE } from '../src/model/prune-files.js';
import { readSentencePieceModel } from '../src/vocab/sentencepiece-model.js';
import { mergeParts, type TokenizerJson } from '../src/vocab/tokenizer-json.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-output-files-'));
after(() => rmSync(work, { recursive: true, force: true }));

// stories260K with its real tokenizer.model, GPT-2 style files derived from its tokenizer.json, and clutter.
const input = join(work, 'model');
cpSync(`${STORIES}hf`, input, { recursive: true });
cpSync(`${ROOT}test/fixtures/vocab/stories260K/tokenizer.model`, join(input, 'tokenizer.model'));
const tokenizer = JSON.parse(readFileSync(join(input, 'tokenizer.json'), 'utf8')) as TokenizerJson;
const byId = Object.entries(tokenizer.model.vocab).sort(([, a], [, b]) => a - b);
writeFileSync(join(input, 'vocab.json'), `{${byId.map(([t, id]) => `${JSON.stringify(t)}:${id}`).join(',')}}`);
writeFileSync(join(input, 'merges.txt'), `#version: 0.2\n${tokenizer.model.merges.map((m, r) => mergeParts(m, r).join(' ')).join('\n')}\n`);
const STALE_WEIGHTS = [
  'consolidated.safetensors',
  'flax_model.msgpack',
  'model.gguf',
  'model.onnx',
  'params.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
  'tf_model.h5',
];
for (const f of STALE_WEIGHTS) writeFileSync(join(input, f), 'stale');
writeFileSync(join(input, 'qwen.tiktoken'), 'IQ== 0\n');
for (const f of ['LICENSE', 'chat_template.jinja', '.gitattributes']) writeFileSync(join(input, f), `${f} of the source\n`);
mkdirSync(join(input, 'onnx'));
writeFileSync(join(input, 'onnx', 'model.onnx'), 'stale');
writeFileSync(join(work, 'secret.txt'), 'outside the model directory\n');
symlinkSync(join(work, 'secret.txt'), join(input, 'notes.md'));
symlinkSync('LICENSE', join(input, 'LICENSE.link'));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const listing = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f !== TIMING_FILE)
    .sort();

/** `compact prune … --json` in-process; returns the parsed report. */
async function prune(args: string[], json = true): Promise<{ code: number; stdout: string }> {
  const log = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    const code = await main(['node', 'compact', 'prune', input, ...args, ...(json ? ['--json'] : [])]);
    return { code, stdout: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

const LEFT_OUT = [
  ...STALE_WEIGHTS.slice(0, 4).map((file) => ({ file, reason: 'stale weights' })),
  { file: 'notes.md', reason: 'symbolic link' },
  { file: 'onnx/', reason: 'directory' },
  ...STALE_WEIGHTS.slice(4).map((file) => ({ file, reason: 'stale weights' })),
];

test('vocabulary pruned: slow-tokenizer files rewritten for the kept ids, the rest left out and listed', async () => {
  const out = join(work, 'vocab');
  const r = await prune(['-o', out, '--vocab', '400']);
  assert.equal(r.code, 0);
  const report = JSON.parse(r.stdout) as { leftOut: unknown };
  assert.deepEqual(
    report.leftOut,
    [...LEFT_OUT, { file: 'qwen.tiktoken', reason: 'old token ids' }].sort((a, b) => (a.file < b.file ? -1 : 1)),
  );
  assert.deepEqual(listing(out), [
    '.gitattributes',
    'LICENSE',
    'LICENSE.link',
    'README.md',
    'chat_template.jinja',
    'compact.json',
    'config.json',
    'generation_config.json',
    'merges.txt',
    'model.safetensors',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer.model',
    'tokenizer_config.json',
    'vocab.json',
  ]);
  for (const f of ['.gitattributes', 'LICENSE', 'chat_template.jinja']) assert.equal(sha256(join(out, f)), sha256(join(input, f)), f);

  // Every slow file describes the pruned tokenizer.json.
  const pruned = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const pieces = readSentencePieceModel(readFileSync(join(out, 'tokenizer.model')), 'out').pieces;
  assert.equal(pieces.length, 400);
  pieces.forEach((p, id) => assert.equal(pruned.model.vocab[p.piece], id));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'vocab.json'), 'utf8')), pruned.model.vocab);
  assert.deepEqual(
    readFileSync(join(out, 'merges.txt'), 'utf8').split('\n').slice(1, -1),
    pruned.model.merges.map((m, r) => mergeParts(m, r).join(' ')),
  );

  const card = readFileSync(join(out, 'README.md'), 'utf8');
  assert.match(card, /## Files of the source left out/);
  for (const { file, reason } of LEFT_OUT) assert.ok(card.includes(`* \`${file}\`: ${reason}`), file);

  // The same inputs give byte-identical files (the card and the manifest name the output directory).
  const again = join(work, 'vocab-again');
  assert.equal((await prune(['-o', again, '--vocab', '400'])).code, 0);
  const hashes = (dir: string) =>
    listing(dir)
      .filter((f) => f !== 'README.md' && f !== 'compact.json')
      .map((f) => sha256(join(dir, f)));
  assert.deepEqual(hashes(again), hashes(out));
});

test('vocabulary kept: slow-tokenizer files copied unchanged; stale weights, links and directories still left out', async () => {
  const out = join(work, 'ffn');
  const r = await prune(['-o', out, '--ffn', '100', '--criterion', 'magnitude'], false);
  assert.equal(r.code, 0);
  for (const f of ['tokenizer.model', 'vocab.json', 'merges.txt', 'qwen.tiktoken', 'tokenizer.json'])
    assert.equal(sha256(join(out, f)), sha256(join(input, f)), f);
  for (const { file } of LEFT_OUT) assert.ok(!listing(out).includes(file.replace(/\/$/, '')), file);
  assert.equal(readFileSync(join(out, 'LICENSE.link'), 'utf8'), 'LICENSE of the source\n'); // a link inside the model: its file is copied
  assert.match(
    r.stdout,
    /^left out of the output: consolidated\.safetensors \(stale weights\), .*notes\.md \(symbolic link\), onnx\/ \(directory\), params\.json \(stale weights\), .*tf_model\.h5 \(stale weights\)$/m,
  );
  assert.doesNotMatch(r.stdout, /tiktoken/);
});

test('a Hugging Face cache snapshot (every file a link into ../../blobs) prunes like a plain directory', async () => {
  const repo = join(work, 'hub', 'models--karpathy--stories260K');
  const snapshot = join(repo, 'snapshots', 'abc123');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  for (const f of readdirSync(`${STORIES}hf`)) {
    const blob = join(repo, 'blobs', createHash('sha256').update(f).digest('hex'));
    cpSync(join(`${STORIES}hf`, f), blob);
    symlinkSync(join('..', '..', 'blobs', createHash('sha256').update(f).digest('hex')), join(snapshot, f));
  }
  symlinkSync(join(work, 'secret.txt'), join(snapshot, 'notes.md'));
  const out = join(work, 'from-cache');
  const code = await main(['node', 'compact', 'prune', snapshot, '-o', out, '--ffn', '100', '--criterion', 'magnitude', '--json']);
  assert.equal(code, 0);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    assert.equal(sha256(join(out, f)), sha256(join(`${STORIES}hf`, f)), f);
    assert.ok(lstatSync(join(out, f)).isFile(), `${f} is a regular file`);
  }
  assert.ok(!listing(out).includes('notes.md'));
});

test('the bundled calibration text is named the same on every machine in the report, the manifest and the model card (its absolute path was written)', async () => {
  const out = join(work, 'bundled-calib');
  const r = await prune(['-o', out, '--ffn', '100', '--samples', '2', '--seq-len', '64', '--no-compensate']);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout).calibration.files, ['compact-llm/data/tinystories/calibration_90pct.txt (bundled)']);
  for (const file of readdirSync(out).filter((f) => f.endsWith('.json') || f.endsWith('.md'))) {
    assert.ok(!readFileSync(join(out, file), 'utf8').includes(ROOT), `${file} names the machine's path`);
  }
});
