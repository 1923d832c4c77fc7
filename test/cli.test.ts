/** The command line as a user meets it: help, inspect's accounting, eval's report. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

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
