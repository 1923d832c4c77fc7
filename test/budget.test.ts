/** Budget solving: the (V′, I′) for a ratio, checked against the parameters a real prune removes. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { countParams } from '../src/model/param-count.js';
import { removedParams, solveBudget } from '../src/prune/budget.js';
import { prune } from '../src/prune/prune.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-budget-'));
after(() => rmSync(work, { recursive: true, force: true }));

for (const variant of ['hf', 'hf-untied']) {
  test(`${variant}: --ratio 0.2 --vocab-share 0.1 removes what the formula says, measured on the written tensors`, async () => {
    const ckpt = openCheckpoint(`${STORIES}${variant}`);
    const total = countParams(ckpt).total;
    const budget = solveBudget(ckpt.spec, { ratio: 0.2, vocabShare: 0.1, total, minVocab: 361, roundTo: 1 });
    const rowParams = variant === 'hf' ? 64 : 128;
    assert.equal(budget.vocab, 512 - Math.round((0.1 * 0.2 * total) / rowParams));
    const removed = removedParams(ckpt.spec, budget);
    assert.ok(
      Math.abs(removed - 0.2 * total) <= 960 / 2 + rowParams,
      `within half an FFN channel of the target: ${removed} vs ${0.2 * total}`,
    );
    const report = await prune(`${STORIES}${variant}`, join(work, variant), {
      method: 'compact',
      ratio: 0.2,
      vocabShare: 0.1,
      roundTo: 1,
      vocabMode: 'rank',
      weighting: 'binary',
      criterion: 'act2',
      calib: [`${ROOT}data/tinystories/heldout_10pct.txt`],
      calibField: 'text',
      samples: 4,
      seqLen: 64,
      seed: 0,
      commandLine: 'test',
      version: 'test',
    });
    assert.deepEqual([report.vocab.after, report.ffn.after], [budget.vocab, budget.ffn]);
    assert.equal(total - countParams(openCheckpoint(join(work, variant))).total, removed);
  });
}
