/**
 * `npm run demo`'s core path (tools/demo.ts through the library): prune, bits per byte of both
 * models on held-out text, greedy continuations, GGUF export, and the side-by-side table. Run on
 * stories260K with a fixed split so it stays fast; the demo itself runs tinystories-llama32k.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEMO_DEFAULTS, formatDemo, runDemo } from '../tools/demo.js';
import { evaluate } from '../src/index.js';
import { HELDOUT_TEXT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-demo-'));
after(() => rmSync(work, { recursive: true, force: true }));
// The first paragraphs of the held-out text (about 8 KB), to keep the test fast.
const text = join(work, 'heldout-head.txt');
writeFileSync(
  text,
  readFileSync(HELDOUT_TEXT, 'utf8')
    .slice(0, 8192)
    .replace(/\n[^\n]*$/, '\n'),
);

test('demo: dense vs pruned side by side, where the output went, how to run it in llama.cpp', async () => {
  const out = join(work, 'stories260K-compact');
  const steps: string[] = [];
  const r = await runDemo({
    ...DEMO_DEFAULTS,
    model: `${STORIES}hf`,
    out,
    text,
    newTokens: 12,
    prune: { vocabShare: 0 },
    onStep: (s) => steps.push(s),
  });
  assert.equal(steps.length, 3);
  assert.match(steps[0], /compact prune .*stories260K\/hf -o .* --ratio 0\.3 --vocab-share 0 --force/);
  assert.equal(r.dense.inspect.parameters.total, 260_032);
  assert.equal(r.pruned.inspect.parameters.total, r.prune.parameters.after.total);
  assert.ok(r.prune.parameters.removedRatio > 0.29 && r.prune.parameters.removedRatio < 0.31);
  // The numbers shown are the library's evaluate on the same text.
  const again = await evaluate(out, { text });
  assert.equal(r.pruned.eval.text!.bitsPerByte, again.text!.bitsPerByte);
  assert.ok(r.dense.eval.text!.bitsPerByte < r.pruned.eval.text!.bitsPerByte, 'pruning costs bits per byte');
  assert.ok(r.dense.continuation.length > 0 && r.pruned.continuation.length > 0);
  assert.ok(existsSync(`${out}.gguf`) && existsSync(join(out, 'model.safetensors')));

  const shown = formatDemo(r);
  const lines = shown.split('\n');
  for (const label of [
    'vocabulary (embedding + LM head)',
    'attention',
    'FFN',
    'norms',
    'total parameters',
    'bits per byte, held-out text',
  ]) {
    assert.ok(
      lines.some((l) => l.startsWith(label)),
      `row ${label}`,
    );
  }
  assert.match(shown, /^ +dense +pruned +change$/m);
  assert.match(shown, /^total parameters +260,032 +182,272 +−29\.9 %$/m);
  assert.match(
    shown,
    new RegExp(
      `^bits per byte, held-out text +${r.dense.eval.text!.bitsPerByte.toFixed(4)} +${r.pruned.eval.text!.bitsPerByte.toFixed(4)} +\\+\\d+\\.\\d %$`,
      'm',
    ),
  );
  assert.match(shown, /^ {2}dense : .+\n {2}pruned: .+$/m);
  assert.ok(shown.includes(`pruned checkpoint: ${out}`));
  assert.ok(shown.includes(`npx compact export ${out} -o ${out}.gguf`));
  assert.match(shown, /llama-cli -m .*\.gguf -p "One day, .*" -n 12 --temp 0/);
});
