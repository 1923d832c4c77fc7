/** Broken checkpoints: each gives one clear line naming the file and the problem, exit 2, no stack trace. */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { runCli } from './helpers/cli.js';
import { STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-bad-'));
after(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;

/** A copy of stories260K/hf with `mutate` applied to it. */
async function brokenCopy(mutate: (dir: string) => unknown): Promise<string> {
  const dir = join(work, `case${counter++}`);
  cpSync(`${STORIES}hf`, dir, { recursive: true });
  await mutate(dir);
  return dir;
}

function rawSafetensors(file: string, header: string, data = Buffer.alloc(0), declaredLength?: number): void {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength ?? Buffer.byteLength(header)));
  writeFileSync(file, Buffer.concat([length, Buffer.from(header), data]));
}

function expectUserError(dir: string, pattern: RegExp): void {
  const r = runCli(['inspect', dir]);
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const cases: [string, (dir: string) => unknown, RegExp][] = [
  ['missing config.json', (d) => rmSync(join(d, 'config.json')), /config\.json: cannot read \(ENOENT\)/],
  ['malformed config.json', (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "llama",'), /config\.json: not valid JSON/],
  [
    'unsupported model_type',
    (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), model_type: 'gpt2' })),
    /unsupported model_type "gpt2"; supported: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text/,
  ],
  ['config field of the wrong type', (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), hidden_size: '64' })), /field hidden_size must be a positive integer/],
  ['header length past the end', (d) => rawSafetensors(join(d, 'model.safetensors'), '{}', Buffer.alloc(0), 1 << 20), /model\.safetensors: header length 1048576 is invalid/],
  ['header that is not JSON', (d) => rawSafetensors(join(d, 'model.safetensors'), '{"a": [1,'), /model\.safetensors: header is not valid JSON/],
  ['unknown dtype', (d) => rawSafetensors(join(d, 'model.safetensors'), JSON.stringify({ x: { dtype: 'F13', shape: [1], data_offsets: [0, 2] } }), Buffer.alloc(2)), /tensor x: unknown dtype "F13"/],
  ['offsets that disagree with the shape', (d) => rawSafetensors(join(d, 'model.safetensors'), JSON.stringify({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }), Buffer.alloc(8)), /tensor x: F32\[2\] needs 8 bytes but data_offsets span 4/],
  [
    'overlapping tensors',
    (d) => rawSafetensors(join(d, 'model.safetensors'), JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }), Buffer.alloc(12)),
    /tensors a and b overlap/,
  ],
  ['range past the end of the file', (d) => rawSafetensors(join(d, 'model.safetensors'), JSON.stringify({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), Buffer.alloc(8)), /tensor a: data_offsets end 16 is past the end of the data \(8 bytes; file truncated\?\)/],
  ['truncated file', (d) => truncateSync(join(d, 'model.safetensors'), 500_000), /past the end of the data .* file truncated/],
  [
    'tensor shape that disagrees with the config',
    (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), intermediate_size: 170 })),
    /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[172,64\] but config\.json implies \[170,64\]/,
  ],
  [
    'missing tensor',
    (d) => writeSafetensors(join(d, 'model.safetensors'), [{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [512, 64], bytes: () => new Uint8Array(512 * 64 * 4) }]),
    /tensor model\.layers\.0\.input_layernorm\.weight is missing/,
  ],
  [
    'shard index pointing outside the directory',
    (d) => {
      rmSync(join(d, 'model.safetensors'));
      writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.embed_tokens.weight': '../../etc/passwd' } }));
    },
    /shard "\.\.\/\.\.\/etc\/passwd" points outside the checkpoint directory/,
  ],
  [
    'shard index naming a missing file',
    (d) => {
      rmSync(join(d, 'model.safetensors'));
      writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors' } }));
    },
    /shard model-00001-of-00002\.safetensors does not exist/,
  ],
  ['no weights at all', (d) => rmSync(join(d, 'model.safetensors')), /no model\.safetensors or model\.safetensors\.index\.json/],
];

for (const [name, mutate, pattern] of cases) {
  test(`bad checkpoint: ${name}`, async () => expectUserError(await brokenCopy(mutate), pattern));
}

test('eval: bad flags and files are user errors', () => {
  let r = runCli(['eval', `${STORIES}hf`, '--text', join(work, 'nope.txt')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope\.txt: cannot read \(ENOENT\)/);
  r = runCli(['eval', `${STORIES}hf`, '--text', `${STORIES}README.md`, '--window', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--window must be a positive integer, got "0"/);
});
