/**
 * compact export: encoders bit-identical to llama.cpp's converter (gguf-py), deterministic and
 * atomic output, F16/Q8_0 agreement through llama.cpp, and bad input (one line, exit 2, nothing
 * written, input untouched).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportGguf } from '../src/gguf/export.js';
import { encode, type GgmlType } from '../src/gguf/quantize.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { runCli } from './helpers/cli.js';
import { HELDOUT_TEXT, readF32, ROOT, STORIES } from './helpers/fixtures.js';
import { llamaGreedy, llamaLogProbs, loadGguf, ourGreedy, ourLogProbs } from './helpers/llama-cpp.js';

const work = mkdtempSync(join(tmpdir(), 'compact-export-'));
after(() => rmSync(work, { recursive: true, force: true }));
const DENSE = join(STORIES, 'hf');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** sha256 of every file under `dir`, by relative path. */
function treeHash(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .sort()
      .filter((f) => statSync(join(dir, f)).isFile())
      .map((f) => [f, sha256(readFileSync(join(dir, f)))]),
  );
}

test('F16, BF16 and Q8_0 encodings are byte-identical to gguf-py (tools/reference/gguf_quant_oracle.py)', () => {
  const values = readF32(join(ROOT, 'test/fixtures/gguf/quant-input.f32'));
  const oracle = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/gguf/quant-oracle.json'), 'utf8')) as Record<GgmlType, string>;
  for (const type of ['F16', 'BF16', 'Q8_0'] as const) assert.equal(sha256(encode(values.slice(), type)), oracle[type], type);
});

test('export is deterministic, leaves the input untouched and replaces an output only with --force', async () => {
  const before = treeHash(DENSE);
  for (const type of ['f16', 'q8_0'] as const) {
    const a = join(work, `a-${type}.gguf`);
    const b = join(work, `b-${type}.gguf`);
    assert.equal(runCli(['export', DENSE, '-o', a, '--type', type, '--name', 'stories260K']).code, 0);
    await exportGguf(DENSE, b, { type, name: 'stories260K' });
    assert.equal(sha256(readFileSync(a)), sha256(readFileSync(b)), type);
  }
  const out = join(work, 'a-f16.gguf');
  const held = sha256(readFileSync(out));
  const refused = runCli(['export', DENSE, '-o', out, '--type', 'q8_0']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^compact: error: output .*a-f16\.gguf already exists; pass --force to replace it\n$/);
  assert.equal(sha256(readFileSync(out)), held);
  assert.equal(runCli(['export', DENSE, '-o', out, '--type', 'q8_0', '--force', '--json']).code, 0);
  assert.notEqual(sha256(readFileSync(out)), held);
  assert.deepEqual(treeHash(DENSE), before);
  assert.deepEqual(
    readdirSync(work).filter((f) => f.includes('compact-tmp')),
    [],
  );
});

test('F16 and Q8_0 GGUFs in llama.cpp: top-1 and greedy agreement with the F32 model (reported)', async () => {
  const text = readFileSync(HELDOUT_TEXT, 'utf8').slice(0, 1200);
  const ids = loadTokenizer(DENSE).encode(text).ids.slice(0, 256);
  const ours = await ourLogProbs(DENSE, ids);
  const argmax = (row: Float64Array) => row.reduce((best, x, i) => (x > row[best] ? i : best), 0);
  const prompt = ids.slice(0, 8);
  const greedy = await ourGreedy(DENSE, prompt, 48);
  for (const [type, minimum] of [
    ['f16', 0.97],
    ['q8_0', 0.9],
  ] as const) {
    const file = join(work, `agree-${type}.gguf`);
    await exportGguf(DENSE, file, { type });
    const model = await loadGguf(file);
    const theirs = await llamaLogProbs(model, ids, ours[0].length);
    const top1 = ours.filter((row, t) => argmax(row) === argmax(theirs[t])).length / ids.length;
    const theirGreedy = await llamaGreedy(model, prompt, 48);
    await model.dispose();
    const common = theirGreedy.findIndex((id, i) => id !== greedy[i]);
    console.log(
      `${type}: top-1 agreement ${(100 * top1).toFixed(1)} % of ${ids.length} positions; greedy: ${common < 0 ? 48 : common} of 48 tokens before the first difference`,
    );
    assert.ok(top1 >= minimum, `${type}: top-1 agreement ${top1}`);
  }
});

/** A copy of stories260K with a modified tokenizer.json. */
function withTokenizer(name: string, edit: (t: Record<string, any>) => void): string {
  const dir = join(work, name);
  cpSync(DENSE, dir, { recursive: true });
  const t = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  edit(t);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t));
  return dir;
}

test('bad input: one line, exit 2, no output, no temp file', () => {
  const phi = join(work, 'phi3');
  cpSync(DENSE, phi, { recursive: true });
  writeFileSync(
    join(phi, 'config.json'),
    JSON.stringify({ ...JSON.parse(readFileSync(join(DENSE, 'config.json'), 'utf8')), model_type: 'phi3' }),
  );
  const cases: [string, string[], RegExp][] = [
    ['unsupported family', [phi], /unsupported model_type "phi3"; supported: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text/],
    [
      'a byte-level pre-tokenizer llama.cpp cannot name',
      [
        withTokenizer('odd-regex', (t) => {
          t.pre_tokenizer = {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: '\\s+|\\w+' }, behavior: 'Isolated', invert: false },
              { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
            ],
          };
        }),
      ],
      /byte-level pre-tokenizer "\\\\s\+\|\\\\w\+" has no llama\.cpp name; supported: byte-level BPE with a llama-bpe or qwen2 split/,
    ],
    [
      'BPE without byte fallback or byte-level',
      [withTokenizer('no-fallback', (t) => void (t.model.byte_fallback = false))],
      /has no llama\.cpp tokenizer; supported:/,
    ],
    [
      'a missing byte piece',
      [withTokenizer('no-byte', (t) => void delete t.model.vocab['<0x41>'])],
      /byte-fallback pieces <0x41> are missing; llama\.cpp needs all 256/,
    ],
    [
      'a WordPiece tokenizer',
      [withTokenizer('wordpiece', (t) => void (t.model.type = 'WordPiece'))],
      /model type WordPiece is not supported/,
    ],
    [
      'no tokenizer.json',
      [join(ROOT, 'test/fixtures/families/qwen2-bias')],
      /no tokenizer\.json; a GGUF for llama\.cpp needs the tokenizer/,
    ],
    ['an output inside the input', [DENSE, '-o', join(DENSE, 'x.gguf')], /is inside the input/],
    ['a bad --type', [DENSE, '--type', 'q4_k'], /option '--type <t>' argument 'q4_k' is invalid/],
  ];
  for (const [label, args, message] of cases) {
    const out = join(work, `bad-${label.replace(/\W+/g, '-')}.gguf`);
    const r = runCli(['export', ...args, ...(args.includes('-o') ? [] : ['-o', out])]);
    assert.equal(r.code, 2, `${label}: ${r.stderr}`);
    assert.match(r.stderr, message, label);
    assert.equal(r.stdout, '', label);
    if (!label.includes('--type')) assert.equal(r.stderr.trim().split('\n').length, 1, `${label}: ${r.stderr}`);
    assert.ok(!existsSync(out), `${label}: wrote ${out}`);
  }
  assert.ok(!existsSync(join(DENSE, 'x.gguf')));
  assert.deepEqual(
    readdirSync(work).filter((f) => f.includes('compact-tmp')),
    [],
  );
});

test('an interrupted export (SIGTERM mid-write) leaves no file and no temp file', async () => {
  // A ~100 MB checkpoint so the signal lands while tensors are being written.
  const dir = join(work, 'big');
  mkdirSync(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(DENSE, f), join(dir, f));
  const [V, D, I, L] = [512, 512, 2048, 6];
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'llama',
      vocab_size: V,
      hidden_size: D,
      intermediate_size: I,
      num_hidden_layers: L,
      num_attention_heads: 8,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-5,
      max_position_embeddings: 512,
      tie_word_embeddings: true,
    }),
  );
  const f32 = (name: string, shape: number[]) => ({
    name,
    dtype: 'F32',
    shape,
    bytes: () => new Uint8Array(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01).buffer),
  });
  const layer = (l: number) => [
    ...['q', 'k', 'v', 'o'].map((p) => f32(`model.layers.${l}.self_attn.${p}_proj.weight`, [D, D])),
    f32(`model.layers.${l}.mlp.gate_proj.weight`, [I, D]),
    f32(`model.layers.${l}.mlp.up_proj.weight`, [I, D]),
    f32(`model.layers.${l}.mlp.down_proj.weight`, [D, I]),
    f32(`model.layers.${l}.input_layernorm.weight`, [D]),
    f32(`model.layers.${l}.post_attention_layernorm.weight`, [D]),
  ];
  await writeSafetensors(join(dir, 'model.safetensors'), [
    f32('model.embed_tokens.weight', [V, D]),
    ...Array.from({ length: L }, (_, l) => layer(l)).flat(),
    f32('model.norm.weight', [D]),
  ]);

  const out = join(work, 'interrupted.gguf');
  for (let attempt = 0; ; attempt++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/helpers/cli-entry.ts'), 'export', dir, '-o', out, '--type', 'q8_0'],
      { cwd: ROOT },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait for the temp file to appear, then interrupt.
    const tmpPrefix = '.interrupted.gguf.compact-tmp';
    while (!readdirSync(work).some((f) => f.startsWith(tmpPrefix)) && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGTERM');
    const code = await exited;
    if (code === 0 && attempt < 3) {
      rmSync(out, { force: true }); // the export won the race; try again
      continue;
    }
    assert.equal(code, 143);
    break;
  }
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(work).filter((f) => f.includes('compact-tmp')),
    [],
  );
});
