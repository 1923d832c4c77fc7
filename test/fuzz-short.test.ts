/**
 * A short run of the fuzzer (tools/fuzz, `npm run fuzz` for long ones): mutated copies of
 * stories260K through inspect, eval --text and prune, from the sources; every run must be a clean
 * one-line error or a correct result. A failure prints the case ids: `npm run fuzz -- --replay ID`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classify } from '../tools/fuzz/classify.js';
import { fuzz, summary } from '../tools/fuzz/fuzz.js';
import type { RunResult } from '../tools/fuzz/run-cli.js';

const run = (r: Partial<RunResult>): RunResult => ({
  code: 2,
  signal: null,
  stdout: '',
  stderr: 'compact: error: x\n',
  timedOut: false,
  overMemory: false,
  peakRssMiB: 0,
  ms: 0,
  ...r,
});
const seen = { inputChanged: false, outputExists: false, outputLoads: null, strays: [] };

test('the classifier tells the contract from each way of breaking it', () => {
  assert.equal(classify({ ...seen, run: run({}) }), 'clean-error');
  assert.equal(classify({ ...seen, run: run({ code: 0, stdout: 'bits per byte 1.2\n' }) }), 'correct');
  assert.equal(classify({ ...seen, run: run({ code: 0, stdout: 'bits per byte NaN\n' }) }), 'nonfinite-exit0');
  assert.equal(
    classify({ ...seen, run: run({ code: 1, stderr: 'file:///x.js:1\nTypeError: x is not a function\n    at f (file:///x.js:1:2)\n' }) }),
    'stack-trace',
  );
  assert.equal(classify({ ...seen, run: run({ code: null, signal: 'SIGABRT', stderr: 'FATAL ERROR: Reached heap limit\n' }) }), 'abort');
  assert.equal(classify({ ...seen, run: run({ code: null, signal: 'SIGKILL', timedOut: true }) }), 'hang');
  assert.equal(classify({ ...seen, run: run({ stderr: 'compact: error: a\nb\n' }) }), 'multi-line-error');
  assert.equal(classify({ ...seen, run: run({ stderr: `compact: error: got "${'A'.repeat(5000)}"\n` }) }), 'long-error');
  assert.equal(classify({ ...seen, inputChanged: true, run: run({}) }), 'input-modified');
  assert.equal(classify({ ...seen, outputExists: true, run: run({}) }), 'partial-output');
  assert.equal(classify({ ...seen, strays: ['.out.compact-tmp-1'], run: run({}) }), 'stray-temp');
  assert.equal(classify({ ...seen, outputLoads: false, run: run({ code: 0 }) }), 'bad-output');
});

test('fuzz: up to 60 one-mutation checkpoints (seeded; as many as 45 s allow, at least 10), every run a clean error or a correct result', async () => {
  // bounded in time whatever the machine's load: the cases that ran must all be clean
  const results = await fuzz({ cases: 60, seed: 11, parallel: 2, flavour: 'src', mode: 'warm', timeLimit: 45 });
  const bad = results.filter((r) => r.cls !== 'clean-error' && r.cls !== 'correct');
  assert.ok(results.length >= 10, `only ${results.length} cases ran`);
  assert.deepEqual(
    bad.map((r) => `${r.id} ${r.cls} (warm: ${r.warmClass}) [${r.kind}/${r.command}] ${r.description} | ${r.excerpt}`),
    [],
    summary(results),
  );
});
