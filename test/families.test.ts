/**
 * Every supported family against transformers (tiny random-weight checkpoints and logits written
 * by tools/reference/make_family_fixtures.py). All sequences of a case run as one padded batch,
 * and the legacy spelling of each config (rope_theta/rope_scaling, no layer_types) must agree.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Decoder } from '../src/engine/decoder.js';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { FAMILY_FIXTURES, maxAbsDiff, readF32 } from './helpers/fixtures.js';

interface Golden {
  model_type: string;
  features: string[];
  inputs: { input_ids: number[]; logits_file: string }[];
}

const cases = readdirSync(FAMILY_FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
const work = mkdtempSync(join(tmpdir(), 'compact-families-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('fixtures cover every supported family', () => {
  const types = new Set(cases.map((c) => (JSON.parse(readFileSync(join(FAMILY_FIXTURES, c, 'golden.json'), 'utf8')) as Golden).model_type));
  assert.deepEqual([...types].sort(), ['gemma', 'gemma2', 'gemma3_text', 'llama', 'mistral', 'qwen2', 'qwen3']);
});

for (const name of cases) {
  const dir = join(FAMILY_FIXTURES, name);
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
  const expected = golden.inputs.map((i) => readF32(join(dir, i.logits_file)));

  for (const spelling of ['config.json', 'config.legacy.json']) {
    test(`${name} with ${spelling}: logits match transformers to 1e-4`, async () => {
      let modelDir = dir;
      if (spelling !== 'config.json') {
        modelDir = join(work, `${name}-legacy`);
        cpSync(dir, modelDir, { recursive: true });
        cpSync(join(dir, spelling), join(modelDir, 'config.json'));
      }
      const engine = new Engine(openCheckpoint(modelDir), { tokensPerRun: 64 });
      const { logits } = await engine.forward(
        golden.inputs.map((i) => i.input_ids),
        { logits: true },
      );
      for (const [i, want] of expected.entries()) {
        const diff = maxAbsDiff(logits![i], want);
        assert.ok(diff <= 1e-4, `sequence ${i} (length ${golden.inputs[i].input_ids.length}): max |Δlogit| ${diff}`);
      }
      await engine.release();
    });
  }
}

for (const name of cases) {
  const dir = join(FAMILY_FIXTURES, name);
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
  test(`${name}: decoding with the key/value cache gives transformers' logits at every step`, async () => {
    const decoder = await Decoder.open(openCheckpoint(dir));
    for (const { input_ids: ids, logits_file } of golden.inputs) {
      const want = readF32(join(dir, logits_file)); // [T, V]
      const V = want.length / ids.length;
      const prompt = Math.min(3, ids.length);
      const rows = [await decoder.prefill(ids.slice(0, prompt))];
      for (const id of ids.slice(prompt)) rows.push(await decoder.step(id));
      rows.forEach((row, i) => {
        const t = prompt - 1 + i;
        const diff = maxAbsDiff(row, want.subarray(t * V, (t + 1) * V));
        assert.ok(diff <= 1e-4, `position ${t} of ${ids.length}: max |Δlogit| ${diff}`);
      });
    }
    await decoder.release();
  });
}
