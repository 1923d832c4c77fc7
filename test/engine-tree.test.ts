/**
 * Token trees in the engine (ForwardRequest.parents): a prompt shared by several continuations,
 * packed with an unrelated sequence into one run, gives the logits of running each sequence
 * alone — for every family, sliding windows (window 6 in the fixtures) and Gemma 3's
 * local/global RoPE included.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { FAMILY_FIXTURES, maxAbsDiff } from './helpers/fixtures.js';

const cases = readdirSync(FAMILY_FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

for (const name of cases) {
  test(`${name}: a packed token tree gives each sequence's own logits`, async () => {
    const dir = join(FAMILY_FIXTURES, name);
    const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { inputs: { input_ids: number[] }[] };
    const [a, b] = golden.inputs.map((i) => i.input_ids);
    // Three sequences: a; a's first 8 tokens then b's first 9 (a shared prefix, then a branch longer than the window); b alone.
    const branch = a.slice(0, 8).concat(b.slice(0, 9));
    const sequences = [a, branch, b];
    // The tree: a as a chain (nodes 0..19), the branch's own 9 tokens under node 7, b as a second root.
    const tokens = [...a, ...b.slice(0, 9), ...b];
    const parents = Int32Array.from([
      ...a.map((_, i) => i - 1),
      ...b.slice(0, 9).map((_, i) => (i === 0 ? 7 : a.length + i - 1)),
      ...b.map((_, i) => (i === 0 ? -1 : a.length + 9 + i - 1)),
    ]);
    const nodesOf = [a.map((_, i) => i), branch.map((_, i) => (i < 8 ? i : a.length + i - 8)), b.map((_, i) => a.length + 9 + i)];
    const engine = new Engine(openCheckpoint(dir));
    const V = engine.spec.vocabSize;
    const alone = (await engine.forward(sequences, { logits: true })).logits!;
    const packed = (await engine.forward([tokens], { logits: true, parents: [parents] })).logits![0];
    sequences.forEach((seq, s) => {
      const rows = new Float32Array(seq.length * V);
      nodesOf[s].forEach((node, t) => rows.set(packed.subarray(node * V, (node + 1) * V), t * V));
      const diff = maxAbsDiff(rows, alone[s]);
      assert.ok(diff <= 1e-5, `sequence ${s}: max |Δlogit| ${diff}`);
    });
    // Targets and argmax through the tree, mixed in one call with an ordinary (chain) sequence.
    const targets = Int32Array.from(tokens.map((_, i) => (i + 1 < a.length ? a[i + 1] : -1)));
    const { logprobs, argmax } = await engine.forward([tokens, a], {
      targets: [targets, Int32Array.from(a.slice(1).concat([-1]))],
      parents: [parents, undefined],
    });
    for (let i = 0; i + 1 < a.length; i++) {
      assert.ok(Math.abs(logprobs![0][i] - logprobs![1][i]) <= 1e-5);
      assert.equal(argmax![0][i], argmax![1][i]);
    }
    await assert.rejects(
      engine.forward([a], { parents: [Int32Array.from(a.map((_, i) => i))] }),
      /token 0 has parent 0; a parent must precede its child/,
    );
    await engine.release();
  });
}
