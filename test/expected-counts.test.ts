/**
 * A frequency vocabulary's fill order: the dense model's expected token counts (Σ over positions of
 * its next-token probabilities) against the same sums over transformers' logits for every family
 * (tools/reference/make_family_fixtures.py). The sequences differ in length, so one padded batch
 * also checks that padding rows are left out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { expectedCounts } from '../src/prune/expected-counts.js';
import { sameOnWindows } from '../src/prune/vocabulary.js';
import { runCli } from './helpers/cli.js';
import { FAMILY_FIXTURES, readF32, STORIES } from './helpers/fixtures.js';

interface Golden {
  inputs: { input_ids: number[]; logits_file: string }[];
}

/** Σ_t softmax(logits_t) in float64, from logits [T, V]. */
function softmaxSums(logits: Float32Array, T: number, into: Float64Array): void {
  const V = into.length;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    const max = Math.max(...row);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    for (let v = 0; v < V; v++) into[v] += Math.exp(row[v] - max) / sum;
  }
}

const cases = readdirSync(FAMILY_FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

for (const name of cases) {
  test(`${name}: expected token counts equal the softmax sums of transformers' logits`, async () => {
    const dir = join(FAMILY_FIXTURES, name);
    const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
    const ckpt = openCheckpoint(dir);
    const V = ckpt.spec.vocabSize;
    const want = new Float64Array(V);
    for (const { input_ids: ids, logits_file } of golden.inputs) softmaxSums(readF32(join(dir, logits_file)), ids.length, want);
    const lengths = new Set(golden.inputs.map((i) => i.input_ids.length));
    assert.ok(lengths.size > 1, 'sequences of different lengths, so the batch is padded');

    const got = await expectedCounts(
      ckpt,
      golden.inputs.map((i) => i.input_ids),
      {},
    );
    const positions = golden.inputs.reduce((n, i) => n + i.input_ids.length, 0);
    assert.ok(Math.abs(got.reduce((a, b) => a + b, 0) - positions) < 1e-6 * positions, 'one unit of probability per position');
    let worst = 0;
    for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(got[v] - want[v]) / (want[v] + 1e-6));
    assert.ok(worst <= 1e-3, `max relative difference ${worst}`);
  });
}

test('prune-vocab --mode frequency on a text shorter than one window: it prunes, and every token the text uses is kept', async () => {
  const work = mkdtempSync(join(tmpdir(), 'compact-expected-'));
  try {
    const corpus = join(work, 'corpus.txt');
    writeFileSync(corpus, 'Once upon a time, a little dog ran to the park. The dog was happy.\n');
    const out = join(work, 'out');
    const r = runCli(['prune-vocab', `${STORIES}hf`, '-o', out, '--vocab', '400', '--mode', 'frequency', '--corpus', corpus, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { vocab: { after: number } };
    assert.equal(report.vocab.after, 400);
    const dense = loadTokenizer(`${STORIES}hf`);
    const kept = new Set(Object.keys((JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as TokenizerJson).model.vocab));
    const denseVocab = (JSON.parse(readFileSync(`${STORIES}hf/tokenizer.json`, 'utf8')) as TokenizerJson).model.vocab;
    const strings = new Map(Object.entries(denseVocab).map(([s, id]) => [id, s]));
    for (const id of encode(dense, readFileSync(corpus, 'utf8')))
      assert.ok(kept.has(strings.get(id)!), `counted token ${strings.get(id)} kept`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

interface TokenizerJson {
  model: { vocab: Record<string, number> };
}

test('a calibrated frequency prune writes the same files whether the calibration pass sums the expected counts or a pass of their own does', async () => {
  const work = mkdtempSync(join(tmpdir(), 'compact-expected-'));
  try {
    // A text of few distinct tokens, so most of V′ is filled by the expected counts.
    const corpus = join(work, 'corpus.txt');
    writeFileSync(corpus, 'Once upon a time, a little dog ran to the park. The dog was happy.\n'.repeat(60));
    const common = ['--vocab', '450', '--ffn', '128', '--vocab-mode', 'frequency', '--calib', corpus, '--samples', '4', '--seq-len', '64'];
    // --vocab-corpus naming the calibration file itself gives the same windows, counted by their own pass.
    const [inPass, ownPass, byId] = [join(work, 'in-pass'), join(work, 'own-pass'), join(work, 'by-id')];
    for (const [out, extra] of [
      [inPass, []],
      [ownPass, ['--vocab-corpus', corpus]],
    ] as const) {
      const r = runCli(['prune', `${STORIES}hf`, '-o', out, ...common, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const file of ['model.safetensors', 'tokenizer.json'])
      assert.ok(readFileSync(join(inPass, file)).equals(readFileSync(join(ownPass, file))), `${file} byte-identical`);
    // The fill matters here: filling by id (rank) keeps another vocabulary.
    assert.equal(runCli(['prune', `${STORIES}hf`, '-o', byId, ...common.slice(0, 4), ...common.slice(6)]).code, 0);
    assert.ok(!readFileSync(join(inPass, 'tokenizer.json')).equals(readFileSync(join(byId, 'tokenizer.json'))), 'rank keeps other tokens');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('sameOnWindows: only the tokens the windows hold decide whether a pass must count again', () => {
  const windows = [
    [1, 2],
    [2, 5],
  ];
  // Candidate vocabularies that differ only on ids the windows never hold (0, 3, 4): the same.
  assert.ok(sameOnWindows([[1, 2, 5, 0]], [[1, 2, 5, 3]], windows, 6));
  // One that drops a window token (5) for another: not the same, for any candidate.
  assert.ok(
    !sameOnWindows(
      [
        [1, 2, 3],
        [1, 2, 5, 0],
      ],
      [
        [1, 2, 3],
        [1, 2, 3, 0],
      ],
      windows,
      6,
    ),
  );
});
