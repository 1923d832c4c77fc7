/**
 * Zero-shot scoring on the real stories260K model:
 *   * the engine's head outputs (argmax, several targets per position, head only on target rows)
 *     against full logits;
 *   * prefix trees (a document's prompt run once for all its answers) against one chain per request;
 *   * every task format against log-likelihoods computed by hand from full logits, so the scorer
 *     sums exactly the continuation's positions (WinoGrande: the shared suffix after each context);
 *   * 50 documents of every task (12 of the mc: fixture) against tools/reference/task_oracle.py
 *     (transformers, following lm-eval's definitions independently): token split, per-request
 *     log-likelihood, greedy flag, and the aggregate accuracies exactly.
 * A 260K-parameter TinyStories model is at chance on these tasks: this checks correctness, not quality.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { encodePair, scorePairs } from '../src/eval/loglikelihood.js';
import { scoreChoices } from '../src/eval/multiple-choice.js';
import { resolveTask } from '../src/eval/tasks/definitions.js';
import { evaluateTask } from '../src/eval/zero-shot.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;
const MC = 'mc:test/fixtures/tasks/mc/questions.jsonl';
const engine = new Engine(openCheckpoint(`${STORIES}hf`));
const tokenizer = loadTokenizer(`${STORIES}hf`);
const enc = (s: string) => encode(tokenizer, s);
const V = engine.spec.vocabSize;

/** log-softmax of one row of logits, in float64. */
function logSoftmaxAt(logits: Float32Array, position: number, token: number): number {
  const row = logits.subarray(position * V, (position + 1) * V);
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return row[token] - max - Math.log(sum);
}

const argmaxOf = (logits: Float32Array, position: number): number => {
  const row = logits.subarray(position * V, (position + 1) * V);
  let best = 0;
  for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
  return best;
};

test('engine head: argmax, K targets per position, head run only where targets are', async () => {
  const seqs = [enc('Once upon a time, there was a little girl named Lily.'), enc('Tom had a big red ball.')];
  const { logits } = await engine.forward(seqs, { logits: true });
  // K = 2: the next token and a fixed other token at every position except the last of each sequence.
  const K = 2;
  const targets = seqs.map((s) => {
    const t = new Int32Array(s.length * K).fill(-1);
    for (let p = 0; p + 1 < s.length; p += 2) [t[p * K], t[p * K + 1]] = [s[p + 1], 7]; // every other position: gaps exercise row gathering
    return t;
  });
  const { logprobs, argmax } = await engine.forward(seqs, { targets, targetGroups: K });
  for (const [i, s] of seqs.entries()) {
    for (let p = 0; p < s.length; p++) {
      if (p % 2 === 0 && p + 1 < s.length) {
        assert.ok(Math.abs(logprobs![i][p * K] - logSoftmaxAt(logits![i], p, s[p + 1])) < 1e-5);
        assert.ok(Math.abs(logprobs![i][p * K + 1] - logSoftmaxAt(logits![i], p, 7)) < 1e-5);
        assert.equal(argmax![i][p], argmaxOf(logits![i], p));
      } else {
        assert.ok(Number.isNaN(logprobs![i][p * K]) && Number.isNaN(logprobs![i][p * K + 1]));
        assert.equal(argmax![i][p], -1);
      }
    }
  }
});

test('every task format: the scorer sums exactly the continuation positions (hand-computed from full logits)', async () => {
  for (const name of ['arc_easy', 'piqa', 'hellaswag', 'winogrande', 'boolq', 'openbookqa', 'lambada_openai', MC]) {
    const task = resolveTask(name);
    const docs = task.load(DATA).slice(0, 2);
    const pairs = docs.flatMap((d) => d.requests.map((r) => encodePair(enc, r.context, r.continuation)));
    const groups = docs.flatMap((d, i) => d.requests.map(() => i));
    // Default: each document's requests share one prefix tree; packTokens 0: one chain per distinct input.
    const { results } = await scorePairs(engine, pairs, { maxLength: 512, groups });
    const chains = (await scorePairs(engine, pairs, { maxLength: 512, packTokens: 0 })).results;
    results.forEach((r, i) => {
      assert.ok(Math.abs(r.logprob - chains[i].logprob) < 1e-4, `${name}: tree ${r.logprob} vs chain ${chains[i].logprob}`);
      assert.equal(r.isGreedy, chains[i].isGreedy);
    });
    let next = 0;
    for (const doc of docs) {
      const lls: number[] = [];
      for (const r of doc.requests) {
        const pair = pairs[next];
        const got = results[next++];
        // By hand: the whole sequence (context tokens, then continuation tokens); continuation token j
        // is predicted at position (context length − 1 + j).
        const whole = pair.context.concat(pair.continuation).slice(-(512 + 1)); // lm-eval keeps max_length + 1 tokens
        const offset = whole.length - pair.continuation.length;
        const { logits } = await engine.forward([whole], { logits: true });
        let ll = 0;
        let greedy = true;
        pair.continuation.forEach((token, j) => {
          ll += logSoftmaxAt(logits![0], offset - 1 + j, token);
          if (argmaxOf(logits![0], offset - 1 + j) !== token) greedy = false;
        });
        assert.ok(
          Math.abs(got.logprob - ll) < 1e-4,
          `${name} ${doc.where} ${JSON.stringify(r.continuation.slice(0, 30))}: ${got.logprob} vs ${ll}`,
        );
        assert.equal(got.isGreedy, greedy);
        assert.equal(got.tokens, pair.continuation.length);
        assert.deepEqual(
          enc(r.context + r.continuation).slice(-pair.continuation.length),
          pair.continuation,
          'the continuation ends the encoded whole',
        );
        lls.push(ll);
      }
      if (task.outputType === 'multiple_choice') {
        // acc / acc_norm by hand: argmax of ll and of ll ÷ characters of the choice.
        const byNorm = lls.map((ll, i) => ll / [...doc.choices[i]].length);
        const s = scoreChoices(lls, doc.choices, doc.gold);
        assert.equal(s.pred, lls.indexOf(Math.max(...lls)));
        assert.equal(s.predNorm, byNorm.indexOf(Math.max(...byNorm)));
      }
    }
    if (name === 'winogrande') {
      // Partial scoring: both requests score the same suffix tokens after different contexts.
      assert.deepEqual(pairs[0].continuation, pairs[1].continuation);
      assert.notDeepEqual(pairs[0].context, pairs[1].context);
    }
  }
});

interface OracleRequest {
  context_tokens: number;
  continuation: number[];
  truncated: boolean;
  ll: number;
  greedy: boolean;
}
interface OracleTask {
  n: number;
  acc: number;
  acc_norm?: number;
  acc_bytes?: number;
  perplexity?: number;
  docs: { requests: OracleRequest[]; gold?: number; acc?: number; acc_norm?: number }[];
}
const oracle = JSON.parse(readFileSync(`${DATA}/oracle-stories260K.json`, 'utf8')) as {
  max_length: number;
  tasks: Record<string, OracleTask>;
};

test('a continuation longer than the maximum length: its last L tokens are scored (lm-eval cannot score it)', async () => {
  const L = 16;
  const pair = {
    context: enc('Once upon a time'),
    continuation: enc(' there was a little girl named Lily who loved to play outside').slice(1),
  };
  assert.ok(pair.continuation.length > L + 2);
  const [got] = (await scorePairs(engine, [pair], { maxLength: L })).results;
  // By hand: the model reads the L tokens before the last, and predicts the last L.
  const window = pair.continuation.slice(-(L + 1));
  const { logits } = await engine.forward([window.slice(0, -1)], { logits: true });
  const ll = window.slice(1).reduce((sum, token, j) => sum + logSoftmaxAt(logits![0], j, token), 0);
  assert.ok(Math.abs(got.logprob - ll) < 1e-4, `${got.logprob} vs ${ll}`);
  assert.equal(got.tokens, L);
  assert.equal(got.truncated, true);
});

test('50 documents of every task match the transformers oracle (task_oracle.py): tokens, log-likelihoods, accuracies', async () => {
  assert.deepEqual(
    Object.keys(oracle.tasks).sort(),
    ['arc_challenge', 'arc_easy', 'boolq', 'hellaswag', 'lambada_openai', MC, 'openbookqa', 'piqa', 'winogrande'].sort(),
  );
  let truncated = 0;
  for (const [name, want] of Object.entries(oracle.tasks)) {
    const task = resolveTask(name);
    const docs = task.load(DATA);
    const report = await evaluateTask(engine, enc, task, docs, { maxLength: oracle.max_length });
    assert.equal(report.n, want.n, name);
    report.docs.forEach((doc, i) => {
      doc.requests.forEach((got, j) => {
        const o = want.docs[i].requests[j];
        const where = `${name} ${doc.where} request ${j}`;
        assert.equal(got.tokens, o.continuation.length, `${where}: continuation tokens`);
        assert.equal(got.truncated, o.truncated, where);
        // 1e-4, or 1e-6 per token for long continuations (float32 rounding adds up over ~270 tokens).
        const tolerance = Math.max(1e-4, 1e-6 * o.continuation.length);
        assert.ok(Math.abs(got.logprob - o.ll) <= tolerance, `${where}: log-likelihood ${got.logprob} vs ${o.ll}`);
        assert.equal(got.isGreedy, o.greedy, `${where}: greedy`);
        truncated += +got.truncated;
      });
      if (doc.score) {
        assert.equal(doc.score.gold, want.docs[i].gold);
        assert.equal(doc.score.acc, want.docs[i].acc, `${name} ${doc.where}: acc`);
        assert.equal(doc.score.accNorm, want.docs[i].acc_norm, `${name} ${doc.where}: acc_norm`);
      }
    });
    assert.equal(report.metrics.acc!.value, want.acc, `${name}: acc`);
    if (want.acc_norm != null) assert.equal(report.metrics.acc_norm!.value, want.acc_norm, `${name}: acc_norm`);
    if (want.acc_bytes != null) assert.equal(report.metrics.acc_bytes!.value, want.acc_bytes, `${name}: acc_bytes`);
    if (want.perplexity != null) assert.ok(Math.abs(report.metrics.perplexity! / want.perplexity - 1) < 1e-5, `${name}: perplexity`);
  }
  assert.ok(truncated > 0, 'some BoolQ inputs exceed 512 tokens and are cut from the left');
  await engine.release();
});

test('token splits match the oracle exactly (context length and continuation ids)', () => {
  for (const [name, want] of Object.entries(oracle.tasks)) {
    resolveTask(name)
      .load(DATA)
      .forEach((doc, i) =>
        doc.requests.forEach((r, j) => {
          const pair = encodePair(enc, r.context, r.continuation);
          const o = want.docs[i].requests[j];
          assert.equal(pair.context.length, o.context_tokens, `${name} ${doc.where} request ${j}`);
          assert.deepEqual(pair.continuation, o.continuation, `${name} ${doc.where} request ${j}`);
        }),
      );
  }
});
