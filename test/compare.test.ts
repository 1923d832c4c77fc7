/**
 * `compact compare`: every cell is what `compact prune` + `compact eval` give for the same options,
 * unreachable cells are reported with their reason, the HTML works offline, bad input writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { StudyRow } from '../src/study/study.js';
import { runCli } from './helpers/cli.js';
import { CALIBRATION_TEXT, HELDOUT_TEXT, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-compare-'));
after(() => rmSync(work, { recursive: true, force: true }));
const calibration = ['--calib', CALIBRATION_TEXT, '--samples', '4', '--seq-len', '128', '--seed', '5'];

test('compare: cells equal compact prune + compact eval; unreachable cells give their reason; report files', () => {
  const report = join(work, 'report');
  const r = runCli([
    'compare',
    `${STORIES}hf`,
    '-o',
    report,
    '--ratios',
    '0.2',
    '--methods',
    'compact,vocab-only',
    '--eval-text',
    HELDOUT_TEXT,
    '--paragraphs',
    '8',
    '--continuation',
    '32',
    ...calibration,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const { rows } = JSON.parse(readFileSync(join(report, 'study.json'), 'utf8')) as { rows: StudyRow[] };
  assert.deepEqual(
    rows.map((row) => row.method),
    ['dense', 'compact', 'vocab-only'],
  );

  const [dense, compact, vocabOnly] = rows;
  assert.equal(dense.agreement!.greedy, 1);
  assert.ok(dense.agreement!.kl < 1e-6);
  assert.match(vocabOnly.error!, /can give at most 3\.7 %/);

  // The same cell by hand: the study's compact is the paper's (fixed split, no compensation).
  const pruned = join(work, 'by-hand');
  assert.equal(runCli(['prune', `${STORIES}hf`, '-o', pruned, '--ratio', '0.2', '--no-auto', '--no-compensate', ...calibration]).code, 0);
  const byHand = runCli([
    'eval',
    pruned,
    '--text',
    HELDOUT_TEXT,
    '--reference',
    `${STORIES}hf`,
    '--paragraphs',
    '8',
    '--continuation',
    '32',
    '--json',
  ]);
  assert.equal(byHand.code, 0, byHand.stderr);
  const m = JSON.parse(byHand.stdout);
  assert.equal(compact.bitsPerByte.heldout_10pct, m.bitsPerByte);
  assert.equal(compact.agreement!.greedy, m.agreement.greedy.meanAgreement);
  assert.equal(compact.agreement!.kl, m.agreement.kl.meanKl);
  assert.equal(compact.agreement!.top1, m.agreement.kl.top1Agreement);
  assert.equal(compact.parameters!.total, m.efficiency.parameters.total);

  const csv = readFileSync(join(report, 'study.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 4);
  assert.match(readFileSync(join(report, 'study.md'), 'utf8'), /\| compact \| 20\.0 % \|/);
  const html = readFileSync(join(report, 'study.html'), 'utf8');
  assert.doesNotMatch(html, /<script src=|<link /, 'everything inlined: viewable offline');
  assert.match(html, /new Chart\(/);
});

test('compare refuses an existing report directory before the study (it ran every cell, then refused)', () => {
  const existing = join(work, 'existing-report');
  mkdirSync(existing, { recursive: true });
  writeFileSync(join(existing, 'keep.txt'), 'mine');
  // The model directory does not exist: a check made only after the study would never be reached.
  const r = runCli(['compare', join(work, 'no-model'), '-o', existing, '--eval-text', HELDOUT_TEXT]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^compact: error: output \S*existing-report already exists; pass --force to replace it\n$/);
  assert.equal(readFileSync(join(existing, 'keep.txt'), 'utf8'), 'mine');
});

test('compare bad input: unknown method, bad ratio, a repeat: clear error, no report directory', () => {
  const report = join(work, 'never');
  for (const [args, pattern] of [
    [['--methods', 'compact,wanda'], /unknown method\(s\) wanda; known: compact, compact-auto/],
    [['--ratios', '0.2,1.5'], /--ratios must be numbers in \(0, 1\)/],
    // Repeats ran a cell twice, or (two texts of one file name) wrote both into one column.
    [['--ratios', '0.2,0.20'], /--ratios: "0\.2" is given twice/],
    [['--methods', 'compact,compact'], /--methods: "compact" is given twice/],
    [
      ['--eval-text', `${STORIES}README.md`, `${ROOT}README.md`],
      /--eval-text \(its file names, without extension, name the columns\): "README" is given twice/,
    ],
  ] as const) {
    const r = runCli(['compare', `${STORIES}hf`, '-o', report, '--eval-text', HELDOUT_TEXT, ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(existsSync(report), false);
  }
});
