/**
 * Least-squares compensation of down_proj (docs/compensation.md). Oracle: tools/reference/
 * compensation_oracle.py — transformers runs each dense model in float64 on the same calibration
 * windows, NumPy solves W′ = W_K + W_R G_RK (G_KK + λI)⁻¹, and transformers loads our compensated
 * checkpoint (every family) and records its logits.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { loadF32, openCheckpoint } from '../src/model/checkpoint.js';
import { writeWeights } from '../src/model/checkpoint-writer.js';
import { readTensorBytes } from '../src/model/safetensors.js';
import { encode } from '../src/gguf/quantize.js';
import { layerPrefix, LAYER_TENSORS } from '../src/model/tensor-names.js';
import { GRAM_BLOCK, gramLayout, PackedGram, packGram } from '../src/engine/gram-layout.js';
import { compensateLayer, Gemm } from '../src/prune/compensate.js';
import { CompensatedStore } from '../src/prune/compensated-store.js';
import { keptAfter, removalOrder } from '../src/prune/greedy-removal.js';
import { main } from '../src/cli/main.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { buildCalibration } from '../src/prune/calibration.js';
import { AUTO_HOLDOUT_CHARS, prune, type PruneOptions } from '../src/prune/prune.js';
import { type CompensationCase, pruneCompensationCase } from './helpers/compensation-cases.js';
import { HELDOUT_TEXT, maxAbsDiff, readF32, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-compensate-'));
after(() => rmSync(work, { recursive: true, force: true }));
const FIXTURES = `${ROOT}test/fixtures/compensation/`;
const cases = JSON.parse(readFileSync(`${FIXTURES}cases.json`, 'utf8')) as CompensationCase[];
const oracle = JSON.parse(readFileSync(`${FIXTURES}oracle.json`, 'utf8')) as {
  cases: Record<string, { inputs: number[][]; lambdas: number[]; intermediate_size: number; vocab_size: number }>;
};

// Blocks: set small by compensation-cases.ts (imported above), for these tests and the oracle's inputs alike.

for (const c of cases) {
  test(`compensation ${c.name}: W′ = the float64 least-squares reference; transformers gives our logits`, async () => {
    const want = oracle.cases[c.name];
    const out = join(work, c.name);
    const { report } = await pruneCompensationCase(c, out);
    assert.deepEqual(
      report.compensation!.layers.map((l) => l.lambda).map((l, i) => Math.abs(l - want.lambdas[i]) <= 1e-4 * want.lambdas[i]),
      want.lambdas.map(() => true),
      'λ per layer',
    );
    const ckpt = openCheckpoint(out);
    assert.equal(ckpt.spec.intermediateSize, want.intermediate_size);
    const reference = readF32(`${FIXTURES}${c.name}.down.f32`);
    const D = ckpt.spec.hiddenSize;
    const n = ckpt.spec.intermediateSize;
    // bf16 holds 8 significant bits: there W′ can only match to its rounding.
    const tolerance = ckpt.tensors.get(layerPrefix(0) + LAYER_TENSORS.down)!.dtype === 'BF16' ? 2 ** -8 : 1e-4;
    for (let l = 0; l < ckpt.spec.numLayers; l++) {
      const ours = loadF32(ckpt, layerPrefix(l) + LAYER_TENSORS.down); // [D, I′]
      const theirs = reference.subarray(l * D * n, (l + 1) * D * n);
      const scale = theirs.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const diff = maxAbsDiff(ours, theirs);
      assert.ok(diff <= tolerance * scale, `layer ${l}: max |ΔW′| ${diff} vs max |W′| ${scale}`);
    }
    // The logits are transformers' on our output with the oracle's W′ in place of ours (stored in the
    // checkpoint's dtype): in BF16 our W′ may round differently on another CPU, the oracle's does not.
    const withOracleW = join(work, `${c.name}-oracle-w`);
    cpSync(out, withOracleW, { recursive: true });
    await writeWeights(ckpt, withOracleW, (info) => {
      const layer = /^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/.exec(info.name);
      const bytes = layer
        ? encode(reference.slice(Number(layer[1]) * D * n, (Number(layer[1]) + 1) * D * n), info.dtype as 'F32' | 'BF16')
        : readTensorBytes(info, 0, info.shape[0]).slice();
      return { name: info.name, shape: info.shape, bytes: () => [bytes] };
    });
    const expected = readF32(`${FIXTURES}${c.name}.logits.f32`);
    const { logits } = await new Engine(openCheckpoint(withOracleW)).forward(want.inputs, { logits: true });
    let offset = 0;
    for (const [i, ids] of want.inputs.entries()) {
      const size = ids.length * want.vocab_size;
      const diff = maxAbsDiff(logits![i], expected.subarray(offset, offset + size));
      assert.ok(diff <= 1e-4, `input ${i}: max |Δlogit| ${diff}`);
      offset += size;
    }
  });
}

test('packed Gram (upper block triangle): every entry, row and the whole of it read back the full symmetric matrix', () => {
  const saved = GRAM_BLOCK.size;
  try {
    for (const [I, block] of [
      [1, 16],
      [7, 3],
      [48, 16],
      [50, 16],
      [172, 16],
      [20, 512],
    ]) {
      GRAM_BLOCK.size = block;
      const full = new Float64Array(I * I);
      for (let a = 0; a < I; a++) for (let b = 0; b <= a; b++) full[a * I + b] = full[b * I + a] = Math.sin(a * 31 + b * 7 + 1);
      const gram = packGram(full, I);
      assert.ok(gram.layout.length <= (I * (I + block)) / 2 + I, `I ${I}: ${gram.layout.length} entries`);
      const row = new Float64Array(I);
      for (let a = 0; a < I; a++) {
        gram.row(a, row);
        assert.deepEqual(row, full.subarray(a * I, (a + 1) * I), `I ${I}, block ${block}: row ${a}`);
        for (let b = 0; b < I; b++) assert.equal(gram.at(a, b), full[a * I + b]);
      }
      // full(): the rows copied, the lower triangle outside the diagonal blocks mirrored in 64 × 64 tiles (I 172: across tiles and blocks).
      assert.deepEqual(gram.full(), Float32Array.from(full), `I ${I}, block ${block}: full()`);
    }
  } finally {
    GRAM_BLOCK.size = saved;
  }
});

test('engine Gram with weights (not only 0/1) and two groups: diag = act², the groups sum to the one-group Gram', async () => {
  const ckpt = openCheckpoint(`${STORIES}hf`);
  const I = ckpt.spec.intermediateSize;
  const windows = [0, 1, 2].map((s) => Array.from({ length: 40 }, (_, t) => 1 + ((s * 97 + t * 31) % 400)));
  const weight = (s: number, t: number) => ((s + t) % 5 === 0 ? 0 : 0.25 + ((s * 7 + t * 3) % 11) / 4); // 0 or 0.25…2.75
  const one = windows.map((w, s) => Float32Array.from(w, (_, t) => weight(s, t))); // [T, 1]
  // Two groups: even positions in group 0, odd in group 1.
  const two = windows.map((w, s) =>
    Float32Array.from({ length: 2 * w.length }, (_, i) => (Math.floor(i / 2) % 2 === i % 2 ? weight(s, Math.floor(i / 2)) : 0)),
  );
  const grams: Float32Array[][] = [[], []];
  const engine = new Engine(ckpt);
  const { act2 } = await engine.forward(windows, {
    statWeights: one,
    statGroups: 1,
    gram: { weights: one, groups: 1, onLayer: (l: number, g: Float32Array) => void (grams[0][l] = g.slice()) },
  });
  await engine.forward(windows, {
    gram: { weights: two, groups: 2, onLayer: (l: number, g: Float32Array) => void (grams[1][l] = g.slice()) },
  });
  await engine.release();
  const layout = gramLayout(I);
  for (let l = 0; l < ckpt.spec.numLayers; l++) {
    const whole = new PackedGram(layout, grams[0][l]);
    const diag = Array.from({ length: I }, (_, j) => whole.at(j, j));
    const scale = Math.max(...act2![l]);
    assert.ok(
      diag.every((v, j) => Math.abs(v - act2![l][j]) <= 1e-5 * scale),
      `layer ${l}: diag(G) = act²`,
    );
    const sum = grams[1][l].subarray(0, layout.length).map((v, i) => v + grams[1][l][layout.length + i]);
    assert.ok(maxAbsDiff(sum, grams[0][l]) <= 1e-5 * scale, `layer ${l}: G₀ + G₁ = G`);
  }
});

test('split search: a candidate whose Gram sums several groups gets the W′ of its split compensated alone', async () => {
  // The search counts one Gram per set of candidates that count a token; the full-vocabulary
  // candidate (share 0, chosen by the stub) sums all of them. Alone, the same split has one group.
  const common = {
    method: 'compact',
    ratio: 0.2,
    weighting: 'binary',
    criterion: 'act2',
    calib: [HELDOUT_TEXT],
    calibField: 'text',
    samples: 8,
    seqLen: 128,
    seed: 0,
    compensate: true,
    selection: 'greedy', // candidates that share a Gram share one removal order
    force: true,
    threads: 2,
    commandLine: 'test',
    version: 'test',
  } satisfies Partial<PruneOptions>;
  const searched = join(work, 'searched');
  const report = await prune(`${STORIES}hf`, searched, {
    ...common,
    vocabMode: 'rank',
    auto: true,
    autoModes: ['rank', 'frequency'],
    autoRefine: false,
    // The largest vocabulary wins (ties: the first tried, rank): bits per byte −V′ on every piece, so no standard error.
    measureTexts: async (dir, texts) => {
      const vocab = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocab_size;
      return texts.map((t) => ({ bits: -vocab * Buffer.byteLength(t), bytes: Buffer.byteLength(t) }));
    },
  });
  const tried = report.auto!.candidates;
  assert.ok(
    new Set(tried.map((c) => c.vocab)).size >= 3 && tried.some((c) => c.vocabMode === 'frequency'),
    'several vocabularies in both modes',
  );
  const best = [...tried].sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte)[0];
  assert.ok(best.ffn < 172 && best.vocab === report.vocab.after);
  const windows = buildCalibration(loadTokenizer(`${STORIES}hf`), [HELDOUT_TEXT], {
    samples: 8,
    seqLen: 128,
    seed: 0,
    field: 'text',
    holdOutChars: AUTO_HOLDOUT_CHARS,
  }).windows;
  const alone = join(work, 'alone');
  await prune(`${STORIES}hf`, alone, { ...common, vocabMode: best.vocabMode, vocabShare: best.vocabShare, calibWindows: windows });
  const [a, b] = [openCheckpoint(searched), openCheckpoint(alone)];
  assert.equal(a.spec.intermediateSize, b.spec.intermediateSize);
  for (let l = 0; l < a.spec.numLayers; l++) {
    const [x, y] = [loadF32(a, layerPrefix(l) + LAYER_TENSORS.down), loadF32(b, layerPrefix(l) + LAYER_TENSORS.down)];
    const scale = y.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbsDiff(x, y) <= 1e-5 * scale, `layer ${l}: max |ΔW′| ${maxAbsDiff(x, y)} vs max |W′| ${scale}`);
  }
});

test('compensation: byte-identical outputs across runs', async () => {
  const c = cases[0];
  const a = join(work, 'again-a');
  const b = join(work, 'again-b');
  await pruneCompensationCase(c, a);
  await pruneCompensationCase(c, b);
  assert.deepEqual(readFileSync(join(a, 'model.safetensors')), readFileSync(join(b, 'model.safetensors')));
  const manifest = (dir: string) => ({ ...JSON.parse(readFileSync(join(dir, 'compact.json'), 'utf8')), output: null });
  assert.deepEqual(manifest(a), manifest(b));
});

test('compensation with every channel kept leaves W unchanged; removed channels with G_RK = 0 change nothing', async () => {
  const gemm = new Gemm(1);
  const I = 40;
  const D = 6;
  const W = Float32Array.from({ length: D * I }, (_, i) => Math.sin(i));
  const full = new Float64Array(I * I);
  for (let t = 0; t < 100; t++) {
    const h = Array.from({ length: I }, (_, j) => (j < 30 ? Math.cos(t * (j + 1)) : 0)); // channels 30… never fire
    for (let a = 0; a < I; a++) for (let b = 0; b < I; b++) full[a * I + b] += h[a] * h[b];
  }
  const gram = packGram(full, I);
  const all = [...Array(I).keys()];
  assert.deepEqual((await compensateLayer(gemm, W, gram, all, 0.01)).weight, W);
  const firing = all.slice(0, 30);
  const r = await compensateLayer(gemm, W, gram, firing, 0.01);
  assert.deepEqual(
    r.weight,
    Float32Array.from({ length: D * 30 }, (_, i) => W[Math.floor(i / 30) * I + (i % 30)]),
  );
  // Silent channels kept: damped, reported, finite.
  const withSilent = await compensateLayer(gemm, W, gram, [...all.slice(0, 20), ...all.slice(30)], 0.01);
  assert.equal(withSilent.silentKept, 10);
  assert.ok(withSilent.weight.every(Number.isFinite));
  await gemm.release();
});

test('greedy selection removes first a channel the others rebuild, however strong; act² would keep it', async () => {
  // Channel 7 = 3 × channel 2, the two strongest of all: removing either costs nothing once W′
  // moves it onto the other (cost ≈ λ-sized), where every independent channel costs its whole output.
  const gemm = new Gemm(1);
  const [I, D] = [24, 5];
  const W = Float32Array.from({ length: D * I }, (_, i) => 0.5 + Math.abs(Math.sin(3 * i)));
  const full = new Float64Array(I * I);
  for (let t = 0; t < 200; t++) {
    const h = Array.from({ length: I }, (_, j) => Math.cos(t * (j + 1) + j));
    h[2] *= 2;
    h[7] = 3 * h[2];
    for (let a = 0; a < I; a++) for (let b = 0; b < I; b++) full[a * I + b] += h[a] * h[b];
  }
  const gram = packGram(full, I);
  const byAct2 = [...Array(I).keys()].sort((a, b) => full[b * I + b] - full[a * I + a]);
  assert.deepEqual(byAct2.slice(0, 2), [7, 2]);
  const order = await removalOrder(gemm, W, gram, 6, 0.01);
  assert.equal(order.length, 6);
  assert.ok(order[0] === 2 || order[0] === 7, `removal order ${order}`);
  assert.deepEqual(
    keptAfter(order, I, 1),
    [...Array(I).keys()].filter((j) => j !== order[0]),
  );
  // The order does not depend on how many go: a shorter run is its prefix.
  assert.deepEqual(await removalOrder(gemm, W, gram, 3, 0.01), order.slice(0, 3));
  // Compensated, the removed duplicate's output moves onto its partner (up to the damping).
  const [gone, partner, factor] = order[0] === 7 ? [7, 2, 3] : [2, 7, 1 / 3];
  const kept = keptAfter(order, I, 1);
  const r = await compensateLayer(gemm, W, gram, kept, 0.01);
  for (let d = 0; d < D; d++) {
    const want = W[d * I + partner] + factor * W[d * I + gone];
    const got = r.weight[d * kept.length + kept.indexOf(partner)];
    assert.ok(Math.abs(got - want) < 0.01 * Math.abs(want), `row ${d}: ${got} vs ${want}`);
  }
  await gemm.release();
});

test('removing channels that never fire leaves the logits unchanged', async () => {
  // stories260K with up_proj rows 0…11 of every layer zeroed: those channels' down_proj inputs are 0.
  const dense = join(work, 'silent-dense');
  cpSync(`${STORIES}hf`, dense, { recursive: true });
  const src = openCheckpoint(`${STORIES}hf`);
  const D = src.spec.hiddenSize;
  await writeWeights(src, dense, (info) => ({
    name: info.name,
    shape: info.shape,
    bytes: () => {
      const bytes = readTensorBytes(info, 0, info.shape[0]).slice();
      if (info.name.endsWith(LAYER_TENSORS.up)) bytes.fill(0, 0, 12 * D * 4);
      return [bytes];
    },
  }));
  const out = join(work, 'silent-pruned');
  const { report } = await pruneCompensationCase({ name: 'silent', source: dense, ffn: 160, samples: 4, seqLen: 64 }, out);
  assert.ok(report.compensation!.layers.every((l) => l.silentKept === 0));
  const ids = [[1, 403, 407, 261, 378, 400, 261, 284, 268, 290]];
  const before = (await new Engine(openCheckpoint(dense)).forward(ids, { logits: true })).logits![0];
  const afterPrune = (await new Engine(openCheckpoint(out)).forward(ids, { logits: true })).logits![0];
  assert.ok(maxAbsDiff(before, afterPrune) <= 1e-5, `max |Δlogit| ${maxAbsDiff(before, afterPrune)}`);
});

test('too few calibration tokens for I: damped, finite, reported', async () => {
  const out = join(work, 'few-tokens');
  const { report } = await pruneCompensationCase({ name: 'few', source: 'models/stories260K/hf', ffn: 100, samples: 1, seqLen: 16 }, out);
  assert.ok(report.compensation!.layers.every((l) => l.lambda > 0 && !l.noStatistics));
  const ckpt = openCheckpoint(out);
  for (let l = 0; l < ckpt.spec.numLayers; l++) assert.ok(loadF32(ckpt, layerPrefix(l) + LAYER_TENSORS.down).every(Number.isFinite));
});

const stories = `${STORIES}hf`;
/** The CLI in this process (a child process per case costs seconds); stderr captured. */
async function cliInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'compact', ...args]), stderr };
  } finally {
    process.stderr.write = write;
  }
}
const BAD: [string, string[], RegExp][] = [
  ['shortgpt', ['--method', 'shortgpt', '--ratio', '0.2'], /^compact: error: --compensate: --method shortgpt removes no FFN channel/],
  ['vocab-only', ['--method', 'vocab-only', '--vocab', '450'], /^compact: error: --compensate: --method vocab-only removes no FFN channel/],
  [
    'magnitude',
    ['--ffn', '100', '--criterion', 'magnitude'],
    /^compact: error: --compensate: compensation needs calibration statistics, and --criterion magnitude uses none/,
  ],
  ['random', ['--ffn', '100', '--criterion', 'random'], /^compact: error: --compensate: .*--criterion random uses none/],
  ['no channel removed', ['--vocab', '450'], /^compact: error: --compensate: no FFN channel is removed/],
  ['non-positive damping', ['--ffn', '100', '--damp', '0'], /^compact: error: --damp must be > 0/],
];
const BAD_SELECTION: [string, string[], RegExp][] = [
  [
    'greedy without compensation',
    ['--ffn', '100', '--no-compensate'],
    /^compact: error: --selection greedy chooses the channels that compensation refits, and compensation is off/,
  ],
  [
    'greedy with vocab-only',
    ['--method', 'vocab-only', '--vocab', '450'],
    /^compact: error: --selection greedy needs compensation: --method vocab-only removes no FFN channel/,
  ],
  [
    'greedy with magnitude',
    ['--ffn', '100', '--criterion', 'magnitude'],
    /^compact: error: --selection greedy needs compensation: .*--criterion magnitude uses none/,
  ],
];
for (const [name, args, message] of BAD_SELECTION) {
  test(`--selection bad input (${name}): one-line error, exit 2, nothing written`, async () => {
    const out = join(work, `bad-${name.replace(/\W/g, '-')}`);
    const r = await cliInProcess(['prune', stories, '-o', out, '--selection', 'greedy', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(out), false);
  });
}
for (const [name, args, message] of BAD) {
  test(`--compensate bad input (${name}): one-line error, exit 2, nothing written`, async () => {
    const out = join(work, `bad-${name.replace(/\W/g, '-')}`);
    const r = await cliInProcess(['prune', stories, '-o', out, '--compensate', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(out), false);
  });
}

test('--selection: greedy and act2 reach the prune through the CLI, reported; another value is refused', async () => {
  const channels = async (selection: string) => {
    const out = join(work, `cli-${selection}`);
    const r = await cliInProcess([
      'prune',
      stories,
      '-o',
      out,
      '--ffn',
      '100',
      '--samples',
      '4',
      '--seq-len',
      '64',
      '--selection',
      selection,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(readFileSync(join(out, 'compact.json'), 'utf8'));
    assert.equal(manifest.compensation.selection, selection);
    return manifest.channels as number[][];
  };
  assert.notDeepEqual(await channels('greedy'), await channels('act2'));
  const r = await cliInProcess(['prune', stories, '-o', join(work, 'cli-bad'), '--ffn', '100', '--selection', 'obs']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--selection.*obs.*(greedy|act2)/);
  assert.equal(existsSync(join(work, 'cli-bad')), false);
});

test('sequential statistics: layer ℓ counted on the pruned layers’ outputs; layer 0 as one-shot, later layers differ', async () => {
  const c: CompensationCase = { name: 'seq', source: 'models/stories260K/hf', ffn: 100, samples: 4, seqLen: 64 };
  const oneShot = join(work, 'one-shot');
  const sequential = join(work, 'sequential');
  await pruneCompensationCase(c, oneShot);
  await pruneCompensationCase(c, sequential, true, { sequential: true });
  const [a, b] = [openCheckpoint(oneShot), openCheckpoint(sequential)];
  const down = (ckpt: typeof a, l: number) => loadF32(ckpt, layerPrefix(l) + LAYER_TENSORS.down);
  assert.deepEqual(down(b, 0), down(a, 0), 'layer 0 sees the same inputs');
  assert.ok(maxAbsDiff(down(b, 1), down(a, 1)) > 0, 'layer 1 sees the pruned layer 0');
  for (let l = 0; l < b.spec.numLayers; l++) assert.ok(down(b, l).every(Number.isFinite));
});

test('compensated weights beyond the memory limit go to a scratch file and come back intact; close removes it', () => {
  const file = join(work, 'store.scratch');
  const store = new CompensatedStore(file, 40);
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // 32 bytes: in memory
  const b = Float32Array.from([9, 10, 11]); // over the limit: on disk
  const c = Float32Array.from([-1.5, 2.25]);
  store.put(0, 0, a);
  store.put(0, 1, b);
  store.put(1, 0, c);
  assert.deepEqual(store.get(0, 0), a);
  assert.deepEqual(store.get(0, 1), b);
  assert.deepEqual(store.get(1, 0), c);
  assert.ok(existsSync(file));
  store.close();
  assert.equal(existsSync(file), false);
});
