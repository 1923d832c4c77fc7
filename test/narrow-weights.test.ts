/**
 * Weights fed as stored (bf16 bits, f16) and widened inside the graph give what the same values
 * widened to f32 give: checkpoints of random bf16 weights (and an f16 copy) against their exact
 * f32 copies, through the Engine (layers, the head in parts, targets and logits) and the Decoder
 * holding its weights as stored. Vocabularies of 9,000 and 10,000 ids make the head several parts.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { randomCheckpoint } from '../bench/real-shapes.js';
import { Decoder } from '../src/engine/decoder.js';
import { Engine } from '../src/engine/engine.js';
import { HEAD_PART_ROWS } from '../src/engine/layer-weights.js';
import { type Checkpoint, loadF32, openCheckpoint } from '../src/model/checkpoint.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { maxAbsDiff } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-narrow-'));
after(() => rmSync(work, { recursive: true, force: true }));

const shapes = (vocab: number, tied: boolean) => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: vocab,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: tied,
});

/** A copy of `ckpt` with every tensor in `dtype` (f32 exactly; f16 rounded from the f32 values). */
async function copyAs(ckpt: Checkpoint, dtype: 'F32' | 'F16', name: string): Promise<Checkpoint> {
  const dir = join(work, name);
  mkdirSync(dir);
  copyFileSync(join(ckpt.dir, 'config.json'), join(dir, 'config.json'));
  const tensors = [...ckpt.tensors.values()].map((info) => ({
    name: info.name,
    dtype,
    shape: info.shape,
    bytes: () => {
      const values = loadF32(ckpt, info.name);
      return new Uint8Array(dtype === 'F32' ? values.buffer : Uint16Array.from(values, f16Bits).buffer);
    },
  }));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return openCheckpoint(dir);
}

/** f16 bits of x, rounded to nearest (the weights here are small normal numbers or zero). */
function f16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24); // subnormal
  const e = Math.floor(Math.log2(a));
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return m === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | m;
}

const ids = [
  [5, 17, 8999, 4000, 4096, 12, 8191, 3],
  [8192, 1, 4095, 7000],
];
const targets = ids.map((s) => Int32Array.from(s.slice(1).concat([-1])));

async function forward(ckpt: Checkpoint, logits: boolean) {
  const engine = new Engine(ckpt, { threads: 1 });
  const expected = new Float64Array(ckpt.spec.vocabSize);
  try {
    const result = await engine.forward(ids, {
      targets,
      logits,
      expected,
      statWeights: ids.map((s) => new Float32Array(s.length).fill(1)),
    });
    return { ...result, expected };
  } finally {
    await engine.release();
  }
}

/** Σ over positions of softmax(logits) in float64, from the per-sequence logits [T, V]. */
function softmaxSums(logits: Float32Array[], V: number): Float64Array {
  const sums = new Float64Array(V);
  for (const l of logits) {
    for (let t = 0; t < l.length / V; t++) {
      const row = l.subarray(t * V, (t + 1) * V);
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      const total = row.reduce((n, x) => n + Math.exp(x - max), 0);
      for (let v = 0; v < V; v++) sums[v] += Math.exp(row[v] - max) / total;
    }
  }
  return sums;
}

for (const [label, vocab, tied, dtype] of [
  ['bf16, tied head', 9000, true, 'BF16'],
  ['bf16, untied head', 10000, false, 'BF16'],
  ['f16, tied head', 9000, true, 'F16'],
] as const) {
  test(`${label}: the Engine on weights as stored gives what their f32 copy gives`, async () => {
    assert.ok(vocab > 2 * HEAD_PART_ROWS, 'the head has three parts');
    let narrow = openCheckpoint(await randomCheckpoint(work, `v${vocab}-${tied}`, 7, shapes(vocab, tied)));
    if (dtype === 'F16') narrow = await copyAs(narrow, 'F16', `v${vocab}-${tied}-f16`);
    assert.equal(narrow.tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, dtype);
    const wide = await copyAs(narrow, 'F32', `v${vocab}-${tied}-${dtype}-f32`);
    for (const logits of [false, true]) {
      const [a, b] = [await forward(narrow, logits), await forward(wide, logits)];
      for (let layer = 0; layer < 2; layer++) assert.deepEqual(a.act2![layer], b.act2![layer], `act² of layer ${layer}`);
      assert.deepEqual(a.argmax, b.argmax);
      for (const [s, lp] of a.logprobs!.entries()) {
        const [x, y] = [lp.slice(0, -1), b.logprobs![s].slice(0, -1)]; // the last position has no target (NaN)
        assert.ok(x.every(Number.isFinite) && Number.isNaN(lp.at(-1)));
        assert.ok(maxAbsDiff(x, y) <= 1e-5, `log-probabilities of sequence ${s}: ${maxAbsDiff(x, y)}`);
      }
      if (logits) for (const [s, l] of a.logits!.entries()) assert.deepEqual(l, b.logits![s], `logits of sequence ${s}`);
      // Expected counts: the head in parts (narrow) and whole (f32), against the f32 logits' softmax sums.
      if (logits) {
        const want = softmaxSums(b.logits!, vocab);
        for (const [name, got] of [
          ['narrow', a.expected],
          ['f32', b.expected],
        ] as const) {
          const worst = got.reduce((m, x, v) => Math.max(m, Math.abs(x - want[v])), 0);
          assert.ok(worst <= 1e-6, `${name} expected counts: max difference ${worst}`);
        }
      }
    }
  });
}

test('Decoder with weights as stored decodes what it decodes with f32 weights', async () => {
  const ckpt = openCheckpoint(await randomCheckpoint(work, 'v10000-false', 7, shapes(10000, false)));
  const [stored, f32] = [
    await Decoder.open(ckpt, { threads: 1, weights: 'stored' }),
    await Decoder.open(ckpt, { threads: 1, weights: 'f32' }),
  ];
  try {
    assert.deepEqual(await stored.prefill(ids[0]), await f32.prefill(ids[0]));
    assert.deepEqual(await stored.step(42), await f32.step(42));
    assert.deepEqual(await stored.generateBatch(ids, 6), await f32.generateBatch(ids, 6));
  } finally {
    await stored.release();
    await f32.release();
  }
});
