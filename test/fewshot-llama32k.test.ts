/**
 * The few-shot oracle (tools/reference/fewshot_oracle.py: transformers for the model, lm-eval
 * 0.4.13's samplers.py for the shots) on the second real model, tinystories-llama32k (8.6M
 * parameters, a real 32,000-token SentencePiece-style tokenizer, 512 positions):
 *   * MMLU 0- and 5-shot on 3 subjects × 10 questions: prompts byte-identical (sha256), token
 *     splits, log-likelihoods within 1e-4, acc per question and subject, the size-weighted group;
 *   * GSM8K 5-shot on 10 questions, decoded 4 at a time: prompts byte-identical, greedy generations
 *     identical token for token and as strings, both filters, exact_match and its means equal.
 * Two oracles, one per copy of the model: the BF16 copy bundled in models/ (oracle-fewshot-llama32k-bf16.json;
 * transformers widens it to f32 as our engine does) and the f32 original in ../shared/models/
 * (oracle-fewshot-llama32k.json). The first copy whose model.safetensors has its oracle's sha256 is
 * tested; with neither, the tests skip, saying why.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Decoder } from '../src/engine/decoder.js';
import { Engine } from '../src/engine/engine.js';
import { type GenerationModel, scoreGenerations } from '../src/eval/generation.js';
import { resolveTask } from '../src/eval/tasks/definitions.js';
import { sha256 } from '../src/eval/tasks/task.js';
import { aggregateGroup, evaluateTask, type TaskReport } from '../src/eval/zero-shot.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { ROOT } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;

interface OracleRequest {
  continuation: number[];
  truncated: boolean;
  ll: number;
  greedy: boolean;
}
type Oracle = {
  weights_sha256: string;
  max_length: number;
  mmlu: Record<
    string,
    {
      tasks: Record<
        string,
        {
          n: number;
          acc: number;
          acc_stderr: number;
          docs: { prompt_sha256: string; requests: OracleRequest[]; gold: number; acc: number }[];
        }
      >;
      group: { n: number; acc: number; acc_stderr: number };
    }
  >;
  gsm8k: {
    n: number;
    exact_match: Record<string, { value: number; stderr: number | null }>;
    docs: {
      prompt_sha256: string;
      prompt_tokens: number;
      truncated: boolean;
      generated_ids: number[];
      text: string;
      filtered: Record<string, string>;
      exact_match: Record<string, number>;
    }[];
  };
};

/** The checkpoint and the oracle that ran it: the bundled BF16 copy first, then the shared f32 original. */
function findModel(): { dir?: string; oracle?: Oracle; label: string; skip: string | false } {
  const candidates = [
    [join(ROOT, 'models', 'tinystories-llama32k', 'hf'), 'oracle-fewshot-llama32k-bf16.json', 'bundled BF16'],
    [join(ROOT, '..', 'shared', 'models', 'tinystories-llama32k', 'hf'), 'oracle-fewshot-llama32k.json', 'shared f32'],
  ];
  const seen: string[] = [];
  for (const [dir, oracleFile, label] of candidates) {
    const file = join(dir, 'model.safetensors');
    if (!existsSync(file) || !existsSync(join(DATA, oracleFile))) continue;
    const oracle = JSON.parse(readFileSync(join(DATA, oracleFile), 'utf8')) as Oracle;
    if (createHash('sha256').update(readFileSync(file)).digest('hex') === oracle.weights_sha256) return { dir, oracle, label, skip: false };
    seen.push(`${dir} holds other weights than ${oracleFile}'s (rerun tools/reference/fewshot_oracle.py on it)`);
  }
  return {
    label: 'absent',
    skip: seen.length > 0 ? seen.join('; ') : `no tinystories-llama32k checkpoint (looked in ${candidates.map((c) => c[0]).join(', ')})`,
  };
}
const { dir, oracle: found, label, skip } = findModel();
const oracle = found!;

for (const shots of [0, 5]) {
  test(
    `tinystories-llama32k (${label}), MMLU ${shots}-shot, 3 subjects × 10 questions: prompts, log-likelihoods within 1e-4, acc and the group as the oracle`,
    { skip },
    async () => {
      const ckpt = openCheckpoint(dir!);
      const tokenizer = loadTokenizer(dir!);
      const engine = new Engine(ckpt);
      const want = oracle.mmlu[String(shots)];
      const reports: TaskReport[] = [];
      try {
        for (const [name, w] of Object.entries(want.tasks)) {
          const task = resolveTask(name);
          const docs = task.load(DATA, { numFewshot: shots });
          assert.deepEqual(
            docs.map((d) => sha256(d.requests[0].context)),
            w.docs.map((d) => d.prompt_sha256),
            `${name}: prompt bytes`,
          );
          const report = await evaluateTask(engine, (s) => encode(tokenizer, s), task, docs, {
            maxLength: oracle.max_length,
            numFewshot: shots,
          });
          report.docs.forEach((doc, i) => {
            doc.requests.forEach((got, j) => {
              const r = w.docs[i].requests[j];
              const where = `${name} ${doc.where} choice ${j}`;
              assert.equal(got.tokens, r.continuation.length, `${where}: continuation tokens`);
              assert.equal(got.truncated, r.truncated, `${where}: truncated`);
              assert.ok(Math.abs(got.logprob - r.ll) <= 1e-4, `${where}: log-likelihood ${got.logprob} vs ${r.ll}`);
              assert.equal(got.isGreedy, r.greedy, `${where}: greedy`);
            });
            assert.equal(doc.score!.gold, w.docs[i].gold);
            assert.equal(doc.score!.acc, w.docs[i].acc, `${name} ${doc.where}: acc`);
          });
          assert.equal(report.metrics.acc!.value, w.acc, `${name}: acc`);
          assert.ok(Math.abs(report.metrics.acc!.stderr! - w.acc_stderr) < 1e-12, `${name}: stderr`);
          reports.push(report);
        }
      } finally {
        await engine.release();
      }
      const group = aggregateGroup('three subjects', reports);
      assert.equal(group.n, want.group.n);
      assert.ok(Math.abs(group.acc.value - want.group.acc) < 1e-12);
      assert.ok(Math.abs(group.acc.stderr! - want.group.acc_stderr) < 1e-12);
    },
  );
}

test(
  `tinystories-llama32k (${label}), GSM8K 5-shot on 10 questions (4 decoded together): prompts, greedy generations as strings, filters and exact_match as the oracle`,
  { skip },
  async () => {
    const ckpt = openCheckpoint(dir!);
    const tokenizer = loadTokenizer(dir!);
    const task = resolveTask('gsm8k');
    const docs = task.load(DATA);
    assert.deepEqual(
      docs.map((d) => sha256(d.context!)),
      oracle.gsm8k.docs.map((d) => d.prompt_sha256),
      'prompt bytes',
    );
    const decoder = await Decoder.open(ckpt);
    const model: GenerationModel = {
      decoder,
      encode: (s) => encode(tokenizer, s),
      decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true }),
      eosIds: [2],
      eosText: tokenizer.decode([2], { skip_special_tokens: false }),
      maxLength: oracle.max_length,
    };
    const scores = await scoreGenerations(model, docs, task.generation!, 4).finally(() => decoder.release());
    scores.forEach((got, i) => {
      const want = oracle.gsm8k.docs[i];
      const where = docs[i].where;
      assert.equal(got.output.promptTokens, want.prompt_tokens, where);
      assert.equal(got.output.truncated, want.truncated, where);
      assert.deepEqual(got.output.ids, want.generated_ids, `${where}: tokens generated`);
      assert.equal(got.output.text, want.text, `${where}: generated text`);
      assert.deepEqual(got.filtered, want.filtered, where);
      assert.deepEqual(got.exactMatch, want.exact_match, where);
    });
    for (const f of ['strict-match', 'flexible-extract']) {
      const xs = scores.map((s) => s.exactMatch[f]);
      assert.equal(xs.reduce((a, b) => a + b, 0) / xs.length, oracle.gsm8k.exact_match[f].value, f);
    }
  },
);
