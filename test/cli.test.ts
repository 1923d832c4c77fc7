/** The command line as a user meets it: help, inspect's accounting, eval's report. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { HELDOUT_TEXT, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('every command has --help', () => {
  for (const args of [['--help'], ['inspect', '--help'], ['eval', '--help']]) {
    const r = runCli(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /Usage: compact/);
  }
});

test('inspect --json: stories260K has the 260,032 parameters its README states', () => {
  const r = runCli(['inspect', `${STORIES}hf`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.parameters.total, 260032);
  assert.equal(out.parameters.embedding, 512 * 64);
  assert.equal(out.parameters.lmHead, 0);
  assert.equal(out.tiedEmbeddings, true);
  // 5 layers × (q 64·64 + k 32·64 + v 32·64 + o 64·64) and 5 × 3 · 64 · 172
  assert.equal(out.parameters.attention, 5 * (64 * 64 * 2 + 32 * 64 * 2));
  assert.equal(out.parameters.ffn, 5 * 3 * 64 * 172);
});

test('inspect: untied head is counted separately', () => {
  const out = JSON.parse(runCli(['inspect', `${STORIES}hf-untied`, '--json']).stdout);
  assert.equal(out.parameters.lmHead, 512 * 64);
  assert.equal(out.parameters.total, 260032 + 512 * 64);
});

test('eval --json reports tokens, bytes, NLL, perplexity and bits per byte consistently', () => {
  const r = runCli([
    'eval',
    `${STORIES}hf`,
    '--text',
    `${ROOT}data/tinystories/heldout_10pct.txt`,
    '--json',
    '--window',
    '256',
    '--stride',
    '128',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.equal(m.bytes, 83442);
  assert.equal(m.predictions, m.tokens - 1, 'every next-token prediction scored exactly once');
  assert.ok(Math.abs(m.perplexity - Math.exp(m.totalNll / m.predictions)) < 1e-9);
  assert.ok(Math.abs(m.bitsPerByte - m.totalNll / Math.LN2 / 83442) < 1e-12);
  assert.ok(m.perplexity > 3 && m.perplexity < 8, `in-domain perplexity ${m.perplexity}`);
});

test('prune --eval-text measures the input and the output as eval --text does', () => {
  const text = join(work, 'heldout-20k.txt');
  writeFileSync(text, readFileSync(HELDOUT_TEXT, 'utf8').slice(0, 20_000));
  const out = join(work, 'pruned');
  const r = runCli(['prune', `${STORIES}hf`, '-o', out, '--ffn', '100', '--criterion', 'magnitude', '--eval-text', text, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const quality = JSON.parse(r.stdout).quality;
  assert.equal(quality.text, text);
  for (const [dir, metrics] of [
    [`${STORIES}hf`, quality.before],
    [out, quality.after],
  ]) {
    const e = runCli(['eval', dir, '--text', text, '--json']);
    assert.equal(e.code, 0, e.stderr);
    const evaluated = JSON.parse(e.stdout);
    assert.ok(Object.keys(metrics).length >= 10 && metrics.bitsPerByte > 0, JSON.stringify(metrics));
    for (const [key, value] of Object.entries(metrics)) assert.equal(value, evaluated[key], `${dir}: ${key}`);
  }
  assert.ok(quality.after.bitsPerByte > quality.before.bitsPerByte, 'pruning 72 of 172 FFN channels by magnitude costs bits per byte');
});

test('a reader that closes the pipe early (compact … | head) ends the command quietly: exit 0, no stack trace', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', `${ROOT}test/helpers/cli-entry.ts`, 'inspect', `${STORIES}hf`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy()); // like `head -1` after its line
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});
