/**
 * The Gram's rows (engine gram with rows) and the kept-channel parts compensation forms from them
 * (src/prune/kept-gram.ts), against float64 sums in JavaScript and against the packed Gram.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { GRAM_BLOCK, gramLayout, PackedGram, packGram } from '../src/engine/gram-layout.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { compensateLayer, Gemm } from '../src/prune/compensate.js';
import { keptGramParts } from '../src/prune/kept-gram.js';
import { maxAbsDiff, STORIES } from './helpers/fixtures.js';

/** Deterministic values in [−1, 1). */
function noise(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 30 - 1;
  });
}

/** Σ rowᵀ·row over the blocks, float64 [I, I]. */
function gramOf(blocks: { rows: Float32Array; count: number }[], I: number): Float64Array {
  const full = new Float64Array(I * I);
  for (const { rows, count } of blocks)
    for (let t = 0; t < count; t++)
      for (let a = 0; a < I; a++) {
        const v = rows[t * I + a];
        if (v !== 0) for (let b = 0; b < I; b++) full[a * I + b] += v * rows[t * I + b];
      }
  return full;
}

const maxAbs = (xs: ArrayLike<number>) => Array.from(xs).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

test('kept Gram: G_KK (packed over K) and W_R·G_RK from the rows = float64 sums; every block size', async () => {
  const saved = GRAM_BLOCK.size;
  const [I, D] = [50, 6];
  const buffer = noise(42 * I, 3); // blocks as views at offsets of one buffer, as GramRowGroups gives them
  const blocks = [
    { rows: buffer.subarray(5 * I), count: 37 },
    { rows: buffer.subarray(0, 5 * I), count: 5 },
    { rows: buffer.subarray(0, 0), count: 0 },
  ];
  const full = gramOf(blocks, I);
  const W = noise(D * I, 5);
  const keep = [...Array(I).keys()].filter((j) => j % 3 !== 1); // 33 kept, 17 removed
  const removed = [...Array(I).keys()].filter((j) => j % 3 === 1);
  const wR = Float32Array.from(
    { length: D * removed.length },
    (_, i) => W[Math.floor(i / removed.length) * I + removed[i % removed.length]],
  );
  const z = new Float64Array(D * keep.length); // W_R G_RK
  for (let d = 0; d < D; d++)
    for (let a = 0; a < keep.length; a++)
      for (let c = 0; c < removed.length; c++) z[d * keep.length + a] += wR[d * removed.length + c] * full[removed[c] * I + keep[a]];
  try {
    for (const size of [1, 4, 8, 33, 512]) {
      GRAM_BLOCK.size = size;
      const got = await keptGramParts(blocks, I, keep, removed, wR, 1);
      const gKK = new PackedGram(gramLayout(keep.length), got.packed);
      const scale = maxAbs(full);
      for (let a = 0; a < keep.length; a++)
        for (let b = 0; b < keep.length; b++)
          assert.ok(Math.abs(gKK.at(a, b) - full[keep[a] * I + keep[b]]) <= 1e-6 * scale, `blocks of ${size}: G_KK[${a}, ${b}]`);
      assert.ok(maxAbsDiff(got.z, Float32Array.from(z)) <= 1e-6 * maxAbs(z), `blocks of ${size}: W_R·G_RK`);
    }
  } finally {
    GRAM_BLOCK.size = saved;
  }
});

test('compensateLayer from the rows = from the packed full Gram (the same system, other rounding)', async () => {
  const saved = GRAM_BLOCK.size;
  GRAM_BLOCK.size = 8;
  try {
    const [I, D] = [40, 5];
    const blocks = [{ rows: noise(60 * I, 21), count: 60 }];
    const W = noise(D * I, 22);
    const keep = [...Array(I).keys()].filter((j) => j % 4 !== 0);
    const gemm = new Gemm(1);
    const fromRows = await compensateLayer(gemm, W, { I, blocks }, keep, 0.01);
    const fromPacked = await compensateLayer(gemm, W, packGram(gramOf(blocks, I), I), keep, 0.01);
    assert.ok(Math.abs(fromRows.lambda - fromPacked.lambda) <= 1e-6 * fromPacked.lambda, 'λ');
    assert.ok(maxAbsDiff(fromRows.weight, fromPacked.weight) <= 1e-5 * maxAbs(fromPacked.weight), 'W′');
    // Nothing removed: W unchanged, and the silent kept channels (a zero column of the rows) counted.
    const silent = blocks[0].rows.map((v, i) => (i % I < 3 ? 0 : v));
    const all = await compensateLayer(gemm, W, { I, blocks: [{ rows: silent, count: 60 }] }, [...Array(I).keys()], 0.01);
    await gemm.release();
    assert.deepEqual(all.weight, W);
    assert.equal(all.silentKept, 3);
  } finally {
    GRAM_BLOCK.size = saved;
  }
});

test('engine gram as rows: per group, Σ rowᵀ·row = the packed Gram of that group', async () => {
  const ckpt = openCheckpoint(`${STORIES}hf`);
  const I = ckpt.spec.intermediateSize;
  const windows = [0, 1, 2].map((s) => Array.from({ length: 40 }, (_, t) => 1 + ((s * 97 + t * 31) % 400)));
  const weight = (s: number, t: number) => ((s + t) % 5 === 0 ? 0 : 0.25 + ((s * 7 + t * 3) % 11) / 4); // 0 or 0.25…2.75
  // Two groups: even positions in group 0, odd in group 1; group 1 has no position in sequence 2.
  const two = windows.map((w, s) =>
    Float32Array.from({ length: 2 * w.length }, (_, i) =>
      Math.floor(i / 2) % 2 === i % 2 && !(s === 2 && i % 2 === 1) ? weight(s, Math.floor(i / 2)) : 0,
    ),
  );
  const packed: Float32Array[] = [];
  const fromRows: Float64Array[][] = []; // [layer][group]: G [I, I], formed inside onLayer (the rows are reused by the next layer)
  const engine = new Engine(ckpt, { tokensPerRun: 80 }); // several micro-batches
  await engine.forward(windows, {
    gram: { weights: two, groups: 2, onLayer: (l: number, g: Float32Array) => void (packed[l] = g.slice()) },
  });
  await engine.forward(windows, {
    gram: { weights: two, groups: 2, rows: true, onLayer: (l, g) => void (fromRows[l] = [0, 1].map((c) => gramOf(g.blocks([c]), I))) },
  });
  await engine.release();
  const layout = gramLayout(I);
  for (let l = 0; l < ckpt.spec.numLayers; l++) {
    for (const c of [0, 1]) {
      const want = new PackedGram(layout, packed[l].subarray(c * layout.length, (c + 1) * layout.length));
      const got = fromRows[l][c];
      const scale = maxAbs(want.packed);
      let diff = 0;
      for (let a = 0; a < I; a++) for (let b = 0; b < I; b++) diff = Math.max(diff, Math.abs(got[a * I + b] - want.at(a, b)));
      assert.ok(diff <= 1e-5 * scale, `layer ${l}, group ${c}: max |ΔG| ${diff} of ${scale}`);
    }
  }
});
