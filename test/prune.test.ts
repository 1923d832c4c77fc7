/**
 * `compact prune` end to end. Pruned checkpoints must load in transformers with the logits our
 * engine gives (oracle: tools/reference/prune_oracle.py), channel scores must equal a brute-force
 * reference computed outside the graph, and the output must be deterministic and standard.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../src/cli/main.js';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { writeWeights } from '../src/model/checkpoint-writer.js';
import { readTensorBytes } from '../src/model/safetensors.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { readUserJson } from '../src/util/files.js';
import { buildCalibration } from '../src/prune/calibration.js';
import { TIMING_FILE, type PruneTiming } from '../src/model/prune-files.js';
import { maxAbsDiff, readF32, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-prune-'));
after(() => rmSync(work, { recursive: true, force: true }));
const FIXTURES = `${ROOT}test/fixtures/pruned/`;
const cases = JSON.parse(readFileSync(`${FIXTURES}cases.json`, 'utf8')) as { name: string; source: string; args: string[] }[];
const oracle = JSON.parse(readFileSync(`${FIXTURES}oracle.json`, 'utf8')) as {
  cases: Record<
    string,
    {
      weights_sha256: Record<string, string>;
      inputs: number[][];
      prompts: string[] | null;
      vocab_size: number;
      intermediate_size: number;
      num_hidden_layers: number;
    }
  >;
  act2: { source: string; windows_sha256: string; scores: number[][] };
};

/** Runs `compact prune` in-process (quietly); returns the exit code. */
async function pruneCli(args: string[]): Promise<number> {
  const log = console.log;
  console.log = () => {};
  try {
    return await main(['node', 'compact', 'prune', ...args, '--json']);
  } finally {
    console.log = log;
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** Hashes of a pruned directory's files, but for the wall-time record (the one file that differs between runs). */
const filesOf = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f !== TIMING_FILE)
      .sort()
      .map((f) => [f, sha256(join(dir, f))]),
  );

for (const c of cases) {
  test(`prune ${c.name}: loads in transformers with the logits our engine gives`, async () => {
    const want = oracle.cases[c.name];
    const out = join(work, c.name);
    assert.equal(await pruneCli([`${ROOT}${c.source}`, '-o', out, ...c.args]), 0);
    const weights = Object.fromEntries(Object.entries(filesOf(out)).filter(([f]) => f.endsWith('.safetensors')));
    assert.deepEqual(weights, want.weights_sha256, 'same bytes as the checkpoint transformers loaded');
    const ckpt = openCheckpoint(out);
    assert.equal(ckpt.spec.vocabSize, want.vocab_size);
    assert.equal(ckpt.spec.intermediateSize, want.intermediate_size);
    assert.equal(ckpt.spec.numLayers, want.num_hidden_layers);
    if (want.prompts) {
      const tokenizer = loadTokenizer(out);
      assert.deepEqual(
        want.prompts.map((p) => encode(tokenizer, p)),
        want.inputs,
        'our tokenizer = HF tokenizers on the pruned tokenizer.json',
      );
    }
    const expected = readF32(`${FIXTURES}${c.name}.logits.f32`);
    const { logits } = await new Engine(ckpt).forward(want.inputs, { logits: true });
    let offset = 0;
    for (const [i, ids] of want.inputs.entries()) {
      const n = ids.length * want.vocab_size;
      const diff = maxAbsDiff(logits![i], expected.subarray(offset, offset + n));
      assert.ok(diff <= 1e-4, `input ${i}: max |Δlogit| ${diff}`);
      offset += n;
    }
  });
}

test('common act² scores (what prune ranks channels by, as --scores-out saves them) equal a brute-force float64 reference computed outside the graph', async () => {
  const act2Case = cases.find((c) => c.name === 'stories260K-compact')!;
  const arg = (flag: string) => act2Case.args[act2Case.args.indexOf(flag) + 1];
  const source = `${ROOT}${act2Case.source}`;
  const calibration = buildCalibration(loadTokenizer(source), [`${ROOT}${arg('--calib')}`], {
    samples: Number(arg('--samples')),
    seqLen: Number(arg('--seq-len')),
    seed: 0,
    field: 'text',
  });
  const pythonJson = JSON.stringify(calibration.windows).replaceAll(',', ', ');
  assert.equal(createHash('sha256').update(pythonJson).digest('hex'), oracle.act2.windows_sha256, 'same calibration windows as the oracle');
  // The oracle weighted each token by whether this case's pruned vocabulary keeps it (binary).
  const scores = join(work, 'act2.scores.json');
  const args = act2Case.args.map((a) => (a === arg('--calib') ? `${ROOT}${a}` : a));
  assert.equal(await pruneCli([source, '-o', join(work, 'act2'), ...args, '--scores-out', scores]), 0);
  const saved = readUserJson(scores) as { criterion: string; weighting: string; layers: number[][] };
  assert.deepEqual([saved.criterion, saved.weighting], ['act2', 'binary']);
  assert.equal(saved.layers.length, oracle.act2.scores.length);
  for (const [l, want] of oracle.act2.scores.entries()) {
    const scale = Math.max(...want);
    const got = saved.layers[l];
    assert.equal(got.length, want.length);
    for (const [j, v] of want.entries()) assert.ok(Math.abs(got[j] - v) <= 1e-5 * scale, `layer ${l} channel ${j}: ${got[j]} vs ${v}`);
  }
});

test('nothing removed (--vocab V --ffn I): every tensor byte-identical, logits identical', async () => {
  const out = join(work, 'identity');
  assert.equal(
    await pruneCli([
      `${STORIES}hf-untied`,
      '-o',
      out,
      '--vocab',
      '512',
      '--ffn',
      '172',
      '--calib',
      `${ROOT}data/tinystories/heldout_10pct.txt`,
    ]),
    0,
  );
  const a = openCheckpoint(`${STORIES}hf-untied`);
  const b = openCheckpoint(out);
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  for (const [name, info] of a.tensors) assert.deepEqual(readTensorBytes(b.tensors.get(name)!), readTensorBytes(info), name);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'])
    assert.equal(sha256(join(out, f)), sha256(`${STORIES}hf-untied/${f}`), f);
  const ids = [[1, 403, 407, 261, 378, 432]];
  const [x, y] = await Promise.all([new Engine(a).forward(ids, { logits: true }), new Engine(b).forward(ids, { logits: true })]);
  assert.equal(maxAbsDiff(x.logits![0], y.logits![0]), 0);
});

test('channels whose score is exactly zero are the ones pruned, and logits do not change', async () => {
  // stories260K with up_proj rows of channels 7, 14, … zeroed: h_j = act(gate_j)·0 = 0 exactly.
  const zeroed = join(work, 'zeroed');
  cpSync(`${STORIES}hf`, zeroed, { recursive: true });
  rmSync(join(zeroed, 'model.safetensors'));
  const src = openCheckpoint(`${STORIES}hf`);
  const dead = Array.from({ length: 172 }, (_, j) => j).filter((j) => j % 7 === 0); // 25 channels
  await writeWeights(src, zeroed, (info) => ({
    name: info.name,
    shape: info.shape,
    bytes: () => {
      const bytes = readTensorBytes(info);
      if (info.name.endsWith('mlp.up_proj.weight')) for (const j of dead) bytes.fill(0, j * 64 * 4, (j + 1) * 64 * 4);
      return bytes;
    },
  }));
  const out = join(work, 'zeroed-pruned');
  assert.equal(
    await pruneCli([
      zeroed,
      '-o',
      out,
      '--ffn',
      String(172 - dead.length),
      '--calib',
      `${ROOT}data/tinystories/heldout_10pct.txt`,
      '--samples',
      '4',
      '--seq-len',
      '64',
    ]),
    0,
  );
  const manifest = JSON.parse(readFileSync(join(out, 'compact.json'), 'utf8')) as { channels: number[][] };
  const alive = Array.from({ length: 172 }, (_, j) => j).filter((j) => !dead.includes(j));
  for (const kept of manifest.channels) assert.deepEqual(kept, alive);
  const ids = [[1, 403, 407, 261, 378, 432, 383, 286, 261, 376]];
  const before = await new Engine(openCheckpoint(zeroed)).forward(ids, { logits: true });
  const afterPrune = await new Engine(openCheckpoint(out)).forward(ids, { logits: true });
  assert.ok(maxAbsDiff(before.logits![0], afterPrune.logits![0]) <= 1e-5);
});

test('same inputs and seed give a byte-identical output directory; saved scores re-prune identically', async () => {
  const args = [
    '--vocab',
    '430',
    '--ffn',
    '130',
    '--calib',
    `${ROOT}data/tinystories/heldout_10pct.txt`,
    '--samples',
    '6',
    '--seq-len',
    '96',
    '--seed',
    '7',
  ];
  const out = join(work, 'det');
  const first = join(work, 'det-first');
  const scores = join(work, 'scores.json');
  const firstScores = join(work, 'scores-first.json');
  assert.equal(await pruneCli([`${STORIES}hf`, '-o', out, ...args, '--scores-out', scores]), 0);
  renameSync(out, first);
  renameSync(scores, firstScores); // the same command line again (it is recorded), without --force
  assert.equal(await pruneCli([`${STORIES}hf`, '-o', out, ...args, '--scores-out', scores]), 0);
  assert.deepEqual(filesOf(out), filesOf(first));
  assert.equal(sha256(scores), sha256(firstScores), 'same scores file');
  const timing = JSON.parse(readFileSync(join(out, TIMING_FILE), 'utf8')) as PruneTiming;
  assert.ok(timing.seconds.total > 0 && timing.seconds.total >= timing.seconds.score, 'the pruning time is recorded beside the manifest');
  // Re-pruning from the saved scores to another width = pruning to it directly.
  const fromScores = join(work, 'from-scores');
  const direct = join(work, 'direct');
  assert.equal(await pruneCli([`${STORIES}hf`, '-o', fromScores, ...args.slice(0, 2), '--ffn', '100', '--scores-in', scores]), 0);
  // --scores-in skips calibration, so it cannot compensate: compare with the uncompensated direct prune.
  assert.equal(await pruneCli([`${STORIES}hf`, '-o', direct, ...args.slice(0, 2), '--ffn', '100', ...args.slice(4), '--no-compensate']), 0);
  assert.equal(sha256(join(fromScores, 'model.safetensors')), sha256(join(direct, 'model.safetensors')));
});
