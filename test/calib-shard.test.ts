/**
 * `prune --calib-shard i/n` + `--scores-in`: calibration split over machines sums to exactly the
 * single run (byte for byte: the pruned weights and the scores file), in any order; mixing shards
 * of other models or settings, a shard given twice or missing, and bad shard specs are refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { calibrateShard, prune as libraryPrune } from '../src/api.js';
import { main } from '../src/cli/main.js';
import { ExactSums, formatExact, parseExact, scaledToNumber } from '../src/prune/exact-sum.js';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { FAMILY_FIXTURES, HELDOUT_TEXT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-calib-shard-'));
after(() => rmSync(work, { recursive: true, force: true }));

const MODEL = `${STORIES}hf`;
const CALIB = ['--calib', HELDOUT_TEXT, '--samples', '12', '--seq-len', '64', '--seed', '3'];
const BUDGET = ['--vocab', '430', '--ffn', '130', '--no-compensate'];

/** `compact prune …` in-process: exit code, what it printed, what it wrote to stderr. */
async function prune(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const log = console.log;
  const write = process.stderr.write;
  let stdout = '';
  let stderr = '';
  console.log = (line: string) => (stdout += `${line}\n`);
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'compact', 'prune', ...args]), stdout, stderr };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

async function ok(args: string[]): Promise<string> {
  const r = await prune(args);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const path = (name: string) => join(work, name);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** The single run and its three shards for `flags`; returns the scores files. */
async function singleAndShards(name: string, flags: string[]): Promise<{ single: string; shards: string[] }> {
  const single = path(`${name}-single.json`);
  await ok([MODEL, '-o', path(`${name}-single`), ...flags, ...CALIB, '--scores-out', single]);
  const shards = [1, 2, 3].map((i) => path(`${name}-shard${i}.json`));
  for (const [k, file] of shards.entries()) {
    // Shard 2 runs on one thread: the per-window statistics must not depend on it.
    const threads = k === 1 ? ['--threads', '1'] : [];
    await ok([MODEL, ...flags, ...CALIB, '--calib-shard', `${k + 1}/3`, '--scores-out', file, ...threads, '--json']);
  }
  return { single, shards };
}

/** Prunes from the shards (in this order); checks output and scores are the single run's, byte for byte. */
async function assertSumIsSingle(name: string, flags: string[], single: string, shards: string[]): Promise<void> {
  const out = path(`${name}-merged-${shards.map((s) => s.slice(-6, -5)).join('')}`);
  const merged = `${out}.json`;
  await ok([MODEL, '-o', out, ...flags, '--scores-in', ...shards, '--scores-out', merged]);
  const singleDir = single.replace(/\.json$/, '');
  assert.equal(sha256(join(out, 'model.safetensors')), sha256(join(singleDir, 'model.safetensors')), 'pruned weights');
  assert.equal(readFileSync(merged, 'utf8'), readFileSync(single, 'utf8'), 'summed scores file = the single run’s');
  assert.deepEqual(json(join(out, 'compact.json')).channels, json(join(singleDir, 'compact.json')).channels);
}

test('3 shards summed = one run, byte for byte, whatever the order of --scores-in (binary weighting)', async () => {
  const { single, shards } = await singleAndShards('binary', BUDGET);
  const parts = shards.map(json);
  parts.forEach((p, k) => {
    assert.deepEqual(p.calibrations[0].shard, { index: k + 1, count: 3 });
    assert.equal(p.exact.weightTotal, '0x1p8', 'each shard counts its 4 windows × 64 tokens');
  });
  assert.notDeepEqual(parts[0].layers, parts[1].layers, 'the shards ran different windows');
  assert.deepEqual(json(single).calibrations[0].shard, null);
  await assertSumIsSingle('binary', BUDGET, single, [shards[2], shards[0], shards[1]]);
  await assertSumIsSingle('binary', BUDGET, single, [shards[1], shards[2], shards[0]]);
  // Re-pruning the summed scores to another width = what the single run's scores give.
  const narrow = [...BUDGET.slice(0, 2), '--ffn', '90', '--no-compensate'];
  await ok([MODEL, '-o', path('narrow-shards'), ...narrow, '--scores-in', ...shards]);
  await ok([MODEL, '-o', path('narrow-single'), ...narrow, '--scores-in', single]);
  assert.equal(sha256(path('narrow-shards/model.safetensors')), sha256(path('narrow-single/model.safetensors')));
});

test('the library: calibrateShard writes the CLI shard, byte for byte; prune refuses calibShard', async () => {
  const file = path('library-shard.json');
  const settings = { vocab: 430, ffn: 130, compensate: false, calib: [HELDOUT_TEXT], samples: 12, seqLen: 64, seed: 3 };
  const report = await calibrateShard(MODEL, { index: 2, count: 3 }, { ...settings, scoresOut: file });
  assert.deepEqual(report.windows, [1, 4, 7, 10]);
  const cli = path('cli-shard.json');
  await ok([MODEL, ...BUDGET, ...CALIB, '--calib-shard', '2/3', '--scores-out', cli]);
  assert.equal(readFileSync(file, 'utf8'), readFileSync(cli, 'utf8'));
  await assert.rejects(
    libraryPrune(MODEL, path('never'), { ...settings, calibShard: { index: 1, count: 3 } }),
    /a calibration shard writes only its scores, no model: use calibrateShard/,
  );
});

test('the shard report says which windows it ran (w mod n = i − 1)', async () => {
  const r = JSON.parse(await ok([MODEL, ...BUDGET, ...CALIB, '--calib-shard', '2/5', '--scores-out', path('report.json'), '--json']));
  assert.deepEqual(r.windows, [1, 6, 11]);
  assert.deepEqual(r.shard, { index: 2, count: 5 });
});

test('frequency weighting: the weights come from all windows, so shards still sum to the single run', async () => {
  const flags = [...BUDGET, '--weighting', 'frequency'];
  const { single, shards } = await singleAndShards('frequency', flags);
  await assertSumIsSingle('frequency', flags, single, shards);
});

test('ShortGPT: block influence sums exactly over shards (same layers dropped)', async () => {
  const flags = ['--method', 'shortgpt', '--ratio', '0.2'];
  const { single, shards } = await singleAndShards('shortgpt', flags);
  await assertSumIsSingle('shortgpt', flags, single, shards);
  assert.ok(json(single).exact.influence.every((v: string) => v !== '0'));
});

test("a window's statistics do not depend on the windows batched with it (stories260K and every family fixture)", async () => {
  for (const dir of [
    MODEL,
    ...readdirSync(FAMILY_FIXTURES)
      .filter((f) => !f.endsWith('.md'))
      .map((f) => FAMILY_FIXTURES + f),
  ]) {
    const ckpt = openCheckpoint(dir);
    const V = ckpt.spec.vocabSize;
    const windows = Array.from({ length: 6 }, (_, s) => Array.from({ length: 24 }, (_, t) => (s * 7919 + t * 104729) % V));
    const G = 2;
    const statWeights = windows.map((w) =>
      Float32Array.from({ length: w.length * G }, (_, i) => (((i >> 1) % 3 === 0) === (i % 2 === 0) ? 1 : 0)),
    );
    const perWindow = async (tokensPerRun: number) => {
      const seen: string[] = [];
      const engine = new Engine(ckpt, { tokensPerRun });
      await engine.forward(windows, {
        statWeights,
        statGroups: G,
        onSequenceStats: (layer, s, act2, influence) =>
          (seen[layer * windows.length + s] = Buffer.from(Float32Array.of(...act2, influence).buffer).toString('hex')),
      });
      await engine.release();
      return seen;
    };
    // One window per run, two, and all six in one run.
    const alone = await perWindow(24);
    assert.equal(alone.length, ckpt.spec.numLayers * windows.length);
    assert.deepEqual(await perWindow(48), alone, dir);
    assert.deepEqual(await perWindow(4096), alone, dir);
  }
});

test('exact sums: any order and grouping give the same value, where float64 does not', () => {
  const terms = [2 ** 100, 1, -(2 ** 100), Math.fround(0.1), 2 ** -149, Math.fround(3e38), -Math.fround(3e38), 2 ** 60, 3];
  const float = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.notEqual(float(terms), float([...terms].reverse()), 'float64 summation depends on the order here');
  const exact = (xs: number[]) => {
    const s = new ExactSums(1);
    for (const x of xs) s.add(0, x);
    return s.scaled(0);
  };
  // The exact value, computed by hand: 1 + fround(0.1) + 2^-149 + 2^60 + 3.
  const expected = (1n << 149n) + BigInt(Math.fround(0.1) * 2 ** 149) + 1n + (1n << 209n) + (3n << 149n);
  assert.equal(exact(terms), expected);
  assert.equal(exact([...terms].reverse()), expected);
  // Two partial sums (two shards) added exactly give the same.
  const halves = exact(terms.slice(0, 4)) + exact(terms.slice(4));
  assert.equal(halves, expected);
  assert.equal(parseExact(formatExact(expected), 'x'), expected);
  assert.equal(parseExact(formatExact(-expected), 'x'), -expected);
  assert.equal(scaledToNumber(expected), 2 ** 60 + 4 + Math.fround(0.1));
  assert.equal(formatExact(0n), '0');
  assert.equal(formatExact(3n << 149n), '0x3p0');
  assert.equal(formatExact(1n << 148n), '0x1p-1');
  assert.equal(formatExact(-(5n << 100n)), '-0x5p-49');
});

/** A refusal: exit 2, one line, and neither the output nor the scores file written. */
async function expectRefusal(args: string[], pattern: RegExp): Promise<void> {
  const before = readdirSync(work).sort();
  const r = await prune(args);
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^compact: (error: )?/);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.deepEqual(readdirSync(work).sort(), before, 'nothing written');
}

test('bad shard specs and shard runs that cannot work are refused with one line', async () => {
  const shardArgs = (spec: string) => [MODEL, ...BUDGET, ...CALIB, '--calib-shard', spec, '--scores-out', path('never.json')];
  await expectRefusal(shardArgs('0/3'), /--calib-shard 0\/3: the shard index must be in 1…3/);
  await expectRefusal(shardArgs('4/3'), /--calib-shard 4\/3: the shard index must be in 1…3/);
  await expectRefusal(shardArgs('a/b'), /--calib-shard must be i\/n \(e\.g\. 2\/3: the second of three parts\), got "a\/b"/);
  await expectRefusal(shardArgs('1/0'), /--calib-shard 1\/0: the number of shards must be at least 1/);
  await expectRefusal(shardArgs('2'), /--calib-shard must be i\/n .*got "2"/);
  await expectRefusal(shardArgs('13/13'), /12 calibration windows cannot be split into 13 non-empty shards/);
  await expectRefusal(
    [MODEL, ...BUDGET, ...CALIB, '--calib-shard', '1/3'],
    /--calib-shard writes the shard's scores to --scores-out FILE; give --scores-out/,
  );
  await expectRefusal(
    [MODEL, '-o', path('never'), ...BUDGET, ...CALIB, '--calib-shard', '1/3', '--scores-out', path('never.json')],
    /--calib-shard writes only the shard's scores \(--scores-out\), no model: drop -o\/--output/,
  );
  await expectRefusal(
    [MODEL, '--ffn', '130', '--compensate', ...CALIB, '--calib-shard', '1/3', '--scores-out', path('never.json')],
    /--compensate: a calibration shard writes only its scores \(the Gram is not summed over shards\); use --no-compensate/,
  );
  await expectRefusal(
    [MODEL, '--ratio', '0.2', '--auto', ...CALIB, '--calib-shard', '1/3', '--scores-out', path('never.json')],
    /--calib-shard: the split search \(--auto\) measures pruned candidates/,
  );
  await expectRefusal(
    [MODEL, '--method', 'vocab-only', '--vocab', '430', ...CALIB, '--calib-shard', '1/3', '--scores-out', path('never.json')],
    /--calib-shard splits the calibration pass, and this prune has none/,
  );
  await expectRefusal([MODEL, ...BUDGET, ...CALIB], /required option '-o, --output <dir>' not specified/);
  // The shard's scores file is its only output: it is not replaced without --force.
  const existing = path('existing.json');
  writeFileSync(existing, 'keep me');
  await expectRefusal([...shardArgs('1/3').slice(0, -1), existing], /output \S*existing\.json already exists; pass --force to replace it/);
  assert.equal(readFileSync(existing, 'utf8'), 'keep me');
});

test('summing refuses shards of another model, other settings, a shard twice, a missing one, or an old file', async () => {
  const binary = [1, 2, 3].map((i) => path(`binary-shard${i}.json`));
  if (!binary.every(existsSync)) await singleAndShards('binary', BUDGET);
  const [s1, s2, s3] = binary;
  const shard = async (name: string, args: string[], model = MODEL) => {
    const file = path(`${name}.json`);
    await ok([model, ...args, '--scores-out', file]);
    return file;
  };
  const merge = (files: string[]) => [MODEL, '-o', path('never'), ...BUDGET, '--scores-in', ...files];
  const qwen = await shard('qwen', [...BUDGET, ...CALIB, '--calib-shard', '1/3'], `${STORIES}hf-qwen2`);
  await expectRefusal(merge([s1, qwen, s3]), /qwen\.json: scores of another model than \S*binary-shard1\.json/);
  const samples = await shard('samples', [...BUDGET, ...CALIB, '--samples', '9', '--calib-shard', '1/3']);
  await expectRefusal(
    merge([samples, s2, s3]),
    /binary-shard2\.json: shard 2\/3 of another calibration than \S*samples\.json \(samples 12 vs 9\)/,
  );
  const seed = await shard('seed', [...BUDGET, ...CALIB, '--seed', '4', '--calib-shard', '2/3']);
  await expectRefusal(merge([s1, seed, s3]), /seed\.json: shard 2\/3 of another calibration than \S*binary-shard1\.json \(seed 4 vs 3\)/);
  const seqLen = await shard('seqlen', [...BUDGET, ...CALIB, '--seq-len', '48', '--calib-shard', '3/3']);
  await expectRefusal(
    merge([s1, s2, seqLen]),
    /seqlen\.json: shard 3\/3 of another calibration than \S*binary-shard1\.json \(seqLen 48 vs 64\)/,
  );
  const four = await shard('four', [...BUDGET, ...CALIB, '--calib-shard', '3/4']);
  await expectRefusal(
    merge([s1, s2, four]),
    /four\.json: shard 3\/4 of another calibration than \S*binary-shard1\.json \(split into 4 vs 3 shards\)/,
  );
  const none = await shard('none', [...BUDGET, ...CALIB, '--weighting', 'none', '--calib-shard', '2/3']);
  await expectRefusal(
    merge([s1, none, s3]),
    /none\.json: criterion\/weighting act2\/none differ from \S*binary-shard1\.json \(act2\/binary\)/,
  );
  const vocab = await shard('vocab', ['--vocab', '400', '--ffn', '130', '--no-compensate', ...CALIB, '--calib-shard', '2/3']);
  await expectRefusal(merge([s1, vocab, s3]), /vocab\.json: computed with another kept vocabulary than \S*binary-shard1\.json/);
  await expectRefusal(
    merge([s1, s2, s2, s3]),
    /binary-shard2\.json and \S*binary-shard2\.json are both shard 2\/3 \(a shard given twice\)/,
  );
  await expectRefusal(merge([s1, s3]), /shard 2\/3 missing: the files given cover only part of the calibration/);
  await expectRefusal(merge([s2]), /shard 1\/3, 3\/3 missing/);
  await expectRefusal(
    merge([path('binary-single.json'), s1, s2, s3]),
    /binary-single\.json: not a calibration shard, and \S*binary-shard1\.json is one \(shard 1\/3\)/,
  );
  const old = path('old.json');
  writeFileSync(old, JSON.stringify({ ...json(s1), format: 'compact-scores/1' }));
  await expectRefusal(
    merge([old]),
    /old\.json: scores file format compact-scores\/1 is not this version's \(compact-scores\/2\); recompute it with --scores-out/,
  );
});
