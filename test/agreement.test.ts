/**
 * Agreement with a reference model (docs/agreement.md) and the efficiency report of `compact eval`.
 * The oracle (test/fixtures/agreement/, tools/reference/agreement_oracle.py) is transformers on a
 * pruned stories260K: greedy with its own cache, coinciding positions from decoded prefixes, KL in float64.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { coincidingPositions, distributionComparer, paragraphsOf, promptOf } from '../src/eval/agreement.js';
import type { TokenTable } from '../src/eval/token-table.js';
import { runCli } from './helpers/cli.js';
import { HELDOUT_TEXT, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-agreement-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Oracle {
  prune_args: string[];
  model_weights_sha256: Record<string, string>;
  paragraphs: number;
  continuation: number;
  window: number;
  greedy: { pairs: { prompt: string; reference: string; model: string }[]; mean_agreement: number; exact: number };
  kl: {
    reference_positions: number;
    compared_positions: number;
    mean_kl: number;
    top1_agreement: number;
    mean_reference_mass_outside: number;
  };
}
const oracle = JSON.parse(readFileSync(`${ROOT}test/fixtures/agreement/oracle-stories260K.json`, 'utf8')) as Oracle;

function evalJson(args: string[]): Record<string, any> {
  const r = runCli(['eval', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, any>;
}

test('pruned stories260K against its dense model: greedy pairs, positions and KL match the transformers oracle', () => {
  const model = join(work, 'pruned');
  const pruned = runCli([
    'prune',
    `${STORIES}hf`,
    '-o',
    model,
    ...oracle.prune_args.map((a) => (a.startsWith('data/') ? ROOT + a : a)),
    '--json',
  ]);
  assert.equal(pruned.code, 0, pruned.stderr);
  const sha = createHash('sha256')
    .update(readFileSync(join(model, 'model.safetensors')))
    .digest('hex');
  assert.equal(sha, oracle.model_weights_sha256['model.safetensors'], 'the checkpoint the oracle measured');

  const out = evalJson([
    model,
    '--text',
    HELDOUT_TEXT,
    '--reference',
    `${STORIES}hf`,
    '--paragraphs',
    String(oracle.paragraphs),
    '--continuation',
    String(oracle.continuation),
    '--window',
    String(oracle.window),
  ]);
  const a = out.agreement;
  assert.deepEqual(a.greedy.pairs, oracle.greedy.pairs);
  assert.equal(a.greedy.exact, oracle.greedy.exact);
  assert.ok(Math.abs(a.greedy.meanAgreement - oracle.greedy.mean_agreement) < 1e-12);
  assert.ok(
    oracle.greedy.mean_agreement > 0.05 && oracle.greedy.exact < oracle.greedy.pairs.length,
    'the case separates agreeing from diverging continuations',
  );
  assert.equal(a.kl.referencePositions, oracle.kl.reference_positions);
  assert.equal(a.kl.comparedPositions, oracle.kl.compared_positions);
  assert.ok(a.kl.comparedPositions < a.kl.referencePositions, 'vocabulary pruning changed some tokenizations');
  assert.ok(Math.abs(a.kl.meanKl - oracle.kl.mean_kl) <= 1e-5 * oracle.kl.mean_kl, `KL ${a.kl.meanKl} vs ${oracle.kl.mean_kl}`);
  assert.ok(Math.abs(a.kl.meanReferenceMassOutside - oracle.kl.mean_reference_mass_outside) <= 1e-6);
  assert.equal(a.kl.top1Agreement, oracle.kl.top1_agreement);

  // The wall time of that prune is read back from beside the manifest.
  assert.equal(out.efficiency.pruning.seconds.total, JSON.parse(pruned.stdout).seconds.total);
});

test('a model agrees with itself: every continuation identical, KL 0, no mass outside', () => {
  const out = evalJson([
    `${STORIES}hf`,
    '--text',
    HELDOUT_TEXT,
    '--reference',
    `${STORIES}hf`,
    '--paragraphs',
    '6',
    '--continuation',
    '32',
  ]);
  const a = out.agreement;
  assert.equal(a.paragraphs, 6);
  assert.equal(a.greedy.exact, a.greedy.prompts);
  assert.equal(a.greedy.meanAgreement, 1);
  assert.equal(a.kl.comparedPositions, a.kl.referencePositions);
  assert.ok(a.kl.meanKl < 1e-6, `KL ${a.kl.meanKl}`);
  assert.equal(a.kl.top1Agreement, 1);
  assert.equal(a.kl.meanReferenceMassOutside, 0);
});

test('KL and top-1 over the shared tokens, each side renormalised (hand-computed)', () => {
  // Reference p = (0.5, 0.3, 0.2); the model lacks token 2 and gives q = (0.6, 0.4) to tokens 0 and 1.
  const compare = distributionComparer(Int32Array.from([0, 1]), 3);
  const { kl, outside, sameTop1 } = compare(Float32Array.from([0.5, 0.3, 0.2].map(Math.log)), Float32Array.from([0.6, 0.4].map(Math.log)));
  const expected = 0.625 * Math.log(0.625 / 0.6) + 0.375 * Math.log(0.375 / 0.4);
  assert.ok(Math.abs(kl - expected) < 1e-7, `${kl} vs ${expected}`);
  assert.ok(Math.abs(outside - 0.2) < 1e-7);
  assert.equal(sameTop1, true);
  // The reference's top token (id 2) is one the model lacks: top-1 compares over the shared tokens only.
  assert.equal(compare(Float32Array.from([0.2, 0.3, 0.5].map(Math.log)), Float32Array.from([0.6, 0.4].map(Math.log))).sameTop1, false);
  assert.equal(compare(Float32Array.from([0.1, 0.3, 0.6].map(Math.log)), Float32Array.from([0.3, 0.7].map(Math.log))).sameTop1, true);
});

test('coinciding positions: same start byte and same token string, with a context', () => {
  const table = (strings: string[], bytes: number[]): TokenTable => ({
    strings,
    bytes: Int32Array.from(bytes),
    idOf: new Map(strings.map((s, i) => [s, i])),
  });
  const tokens = ['<s>', '▁the', '▁cat', '▁c', 'at', '▁sat'];
  const bytes = [0, 4, 4, 2, 2, 4];
  // " the cat sat": the reference has ▁cat, the model spells it ▁c + at.
  const pairs = coincidingPositions(table(tokens, bytes), [0, 1, 2, 5], table(tokens, bytes), [0, 1, 3, 4, 5]);
  assert.deepEqual(pairs, [
    [1, 1],
    [3, 4],
  ]);
});

test('paragraphs and prompts', () => {
  assert.deepEqual(paragraphsOf('a b\n\n \n\nc d e\n  \nf', 2), ['a b', 'c d e']);
  assert.equal(promptOf('Once upon a time there was a cat.'), 'Once upon a time');
  assert.equal(promptOf('Hello'), undefined);
});

test('--speed: prefill throughput and per-token latency are measured; the dense model has no pruning time', () => {
  const out = evalJson([`${STORIES}hf`, '--speed', '--prompt-tokens', '64', '--new-tokens', '8', '--repeats', '2']);
  const e = out.efficiency;
  assert.equal(e.speed.promptTokens, 64);
  assert.ok(e.speed.prefillTokensPerSecond > 0 && e.speed.msPerToken > 0);
  assert.equal(e.parameters.storedBytes, e.parameters.total * 4, 'f32 weights');
  assert.ok(e.peakRssBytes > 0);
  assert.equal(e.pruning, undefined);
  // By default the prompt shrinks so that prompt + new tokens stay within the model's 512 positions.
  assert.equal(evalJson([`${STORIES}hf`, '--speed', '--repeats', '1']).efficiency.speed.promptTokens, 512 - 64);
  const tooLong = runCli(['eval', `${STORIES}hf`, '--speed', '--prompt-tokens', '500']);
  assert.equal(tooLong.code, 2);
  assert.match(tooLong.stderr, /--speed: 500 \+ 64 new tokens do not fit in max_position_embeddings 512/);
  assert.equal(tooLong.stdout, '');
});

test('bad reference: another family, a foreign tokenizer, or no --text: one clear line, nothing on stdout', () => {
  const foreign = join(work, 'foreign-tokenizer');
  cpSync(`${STORIES}hf`, foreign, { recursive: true });
  const json = JSON.parse(readFileSync(join(foreign, 'tokenizer.json'), 'utf8'));
  json.model.vocab = Object.fromEntries(Object.entries(json.model.vocab as Record<string, number>).map(([k, v]) => [`x${k}`, v]));
  json.model.merges = [];
  writeFileSync(join(foreign, 'tokenizer.json'), JSON.stringify(json));
  const cases: [string[], RegExp][] = [
    [
      [`${STORIES}hf`, '--text', HELDOUT_TEXT, '--reference', `${STORIES}hf-qwen2`],
      /--reference .*hf-qwen2 is a qwen2 model but .* is llama/,
    ],
    [
      [`${STORIES}hf`, '--text', HELDOUT_TEXT, '--reference', foreign],
      /its tokenizer has only 3 of the 512 tokens .* --reference must be the model this one was pruned from/,
    ],
    [[`${STORIES}hf`, '--reference', `${STORIES}hf`], /--reference needs --text/],
    [[`${STORIES}hf`, '--text', HELDOUT_TEXT, '--reference', join(work, 'missing')], /config\.json: cannot read/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(['eval', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stdout, '', 'no partial report');
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
