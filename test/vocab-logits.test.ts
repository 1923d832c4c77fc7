/**
 * Vocabulary pruning through the engine: on text whose tokens are all kept, the pruned model's
 * logits are the original logits restricted to the kept rows (same order, renumbered).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { prune } from '../src/prune/prune.js';
import { HELDOUT_TEXT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-vocab-logits-'));
after(() => rmSync(work, { recursive: true, force: true }));

for (const variant of ['hf', 'hf-untied']) {
  test(`stories260K ${variant}: pruned logits = original logits on the kept rows (text of kept tokens only)`, async () => {
    const out = join(work, variant);
    await prune(`${STORIES}${variant}`, out, {
      method: 'vocab-only',
      vocab: 480,
      vocabMode: 'frequency',
      vocabCorpus: [HELDOUT_TEXT],
      weighting: 'binary',
      criterion: 'act2',
      calib: [],
      calibField: 'text',
      samples: 1,
      seqLen: 1,
      seed: 0,
      commandLine: 'test',
      version: 'test',
    });
    const old2new = (JSON.parse(readFileSync(join(out, 'compact.json'), 'utf8')) as { old2new: number[] }).old2new;
    // Sentences of held-out text that the original tokenizer encodes with kept tokens only.
    const original = loadTokenizer(`${STORIES}${variant}`);
    const pruned = loadTokenizer(out);
    const lines = readFileSync(HELDOUT_TEXT, 'utf8')
      .split(/(?<=[.!?])\s+/)
      .filter((l) => l.length > 20)
      .slice(0, 200);
    const usable = lines
      .map((l) => encode(original, l))
      .filter((ids) => ids.every((id) => old2new[id] >= 0))
      .slice(0, 4);
    assert.ok(usable.length >= 2, 'some lines use kept tokens only');
    const remapped = usable.map((ids) => ids.map((id) => old2new[id]));
    usable.forEach((ids, i) =>
      assert.deepEqual(
        encode(pruned, original.decode(ids, { skip_special_tokens: true })),
        remapped[i],
        'pruned tokenizer gives old2new(original ids)',
      ),
    );
    const before = await new Engine(openCheckpoint(`${STORIES}${variant}`)).forward(usable, { logits: true });
    const afterPrune = await new Engine(openCheckpoint(out)).forward(remapped, { logits: true });
    const kept = old2new
      .map((n, old) => [n, old])
      .filter(([n]) => n >= 0)
      .sort((a, b) => a[0] - b[0])
      .map(([, old]) => old);
    for (const [s, ids] of usable.entries()) {
      let max = 0;
      for (let t = 0; t < ids.length; t++) {
        for (const [n, old] of kept.entries())
          max = Math.max(max, Math.abs(afterPrune.logits![s][t * kept.length + n] - before.logits![s][t * 512 + old]));
      }
      assert.ok(max <= 1e-5, `sequence ${s}: max |Δlogit| ${max}`);
    }
  });
}
