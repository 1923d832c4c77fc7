/**
 * Few-shot contexts, MMLU and GSM8K against tools/reference/fewshot_oracle.py (transformers for the
 * model, Python's own `random` and lm-eval 0.4.13's samplers.py for the shots), on stories260K and
 * the fixture slices of test/fixtures/tasks (mmlu/, gsm8k/, lambada/):
 *   * the samplers: lm-eval's default sampler with the evaluated document excluded (duplicates too);
 *   * MMLU 0- and 5-shot on 3 subjects × 10 questions: prompts byte-identical (sha256), token
 *     splits, log-likelihoods within 1e-4, acc per question and per subject, the size-weighted group;
 *   * GSM8K 5-shot on 10 questions: prompts byte-identical, greedy generations identical token for
 *     token and as strings, both filters and exact_match equal;
 *   * LAMBADA 2-shot (shots drawn from the evaluated split itself): prompts and log-likelihoods;
 *   * generate_until's stop strings and max_gen_toks on prompts the model does stop on; gsm8k's
 *     regex filters and exact_match on crafted responses (Python's re).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Decoder } from '../src/engine/decoder.js';
import { Engine } from '../src/engine/engine.js';
import {
  exactMatch,
  type GenerationModel,
  type GenerationScore,
  generateUntil,
  generateUntilBatch,
  scoreGeneration,
  scoreGenerations,
} from '../src/eval/generation.js';
import { resolveTask, resolveTasks } from '../src/eval/tasks/definitions.js';
import { sampleFewshot } from '../src/eval/tasks/fewshot.js';
import { PyRandom } from '../src/eval/tasks/py-random.js';
import { sha256 } from '../src/eval/tasks/task.js';
import { aggregateGroup, evaluateTask, type TaskReport } from '../src/eval/zero-shot.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { FAMILY_FIXTURES, ROOT, STORIES } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;
const ckpt = openCheckpoint(`${STORIES}hf`);
const engine = new Engine(ckpt);
const tokenizer = loadTokenizer(`${STORIES}hf`);
const enc = (s: string) => encode(tokenizer, s);
after(() => engine.release());

interface OracleRequest {
  context_tokens: number;
  continuation: number[];
  truncated: boolean;
  ll: number;
  greedy: boolean;
}
interface OracleGeneration {
  prompt_tokens: number;
  truncated: boolean;
  generated_ids: number[];
  text: string;
}
const oracle = JSON.parse(readFileSync(`${DATA}/oracle-fewshot-stories260K.json`, 'utf8')) as {
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
          docs: { prompt_sha256: string; prompt_chars: number; prompt?: string; requests: OracleRequest[]; gold: number; acc: number }[];
        }
      >;
      group: { n: number; acc: number; acc_stderr: number };
    }
  >;
  gsm8k: {
    n: number;
    exact_match: Record<string, { value: number; stderr: number }>;
    docs: (OracleGeneration & { prompt_sha256: string; filtered: Record<string, string>; exact_match: Record<string, number> })[];
  };
  lambada_openai: { docs: { prompt_sha256: string; request: OracleRequest }[] };
  sampler_cases: { pool: number[]; n: number; exclude: number; picks: number[][] }[];
  generation_cases: (OracleGeneration & { context: string; until: string[]; max_gen_toks: number })[];
  filter_cases: {
    response: string;
    reference: string;
    'strict-match': string;
    'flexible-extract': string;
    exact_match: Record<string, number>;
  }[];
};

function checkRequest(
  got: { logprob: number; isGreedy: boolean; tokens: number; truncated: boolean },
  want: OracleRequest,
  where: string,
): void {
  assert.equal(got.tokens, want.continuation.length, `${where}: continuation tokens`);
  assert.equal(got.truncated, want.truncated, `${where}: truncated`);
  assert.ok(Math.abs(got.logprob - want.ll) <= 1e-4, `${where}: log-likelihood ${got.logprob} vs ${want.ll}`);
  assert.equal(got.isGreedy, want.greedy, `${where}: greedy`);
}

test("lm-eval's default sampler excluding the evaluated document: the same draws as its samplers.py (Python's random)", () => {
  for (const c of oracle.sampler_cases) {
    const rnd = new PyRandom(1234);
    const keys = c.pool.map((k) => String(k));
    for (const want of c.picks)
      assert.deepEqual(
        sampleFewshot('default', rnd, keys, c.n, String(c.exclude), () => 'too few'),
        want,
        JSON.stringify(c.pool),
      );
  }
  // first_n: the first n, without the document; too few is an error with the caller's message.
  assert.deepEqual(
    sampleFewshot('first_n', new PyRandom(1), ['a', 'b', 'c'], 2, 'a', () => 'x'),
    [1, 2],
  );
  assert.throws(() => sampleFewshot('first_n', new PyRandom(1), ['a', 'b'], 3, undefined, () => 'only 2'), /only 2/);
  assert.throws(() => sampleFewshot('default', new PyRandom(1), ['a', 'b', 'c'], 3, 'z', () => 'needs 4'), /needs 4/);
});

for (const shots of [0, 5]) {
  test(`MMLU ${shots}-shot, 3 subjects × 10 questions: prompts byte-identical, log-likelihoods, acc and the weighted group as the oracle`, async () => {
    const want = oracle.mmlu[String(shots)];
    const reports: TaskReport[] = [];
    for (const [name, w] of Object.entries(want.tasks)) {
      const task = resolveTask(name);
      const docs = task.load(DATA, { numFewshot: shots });
      assert.equal(docs.length, w.n);
      docs.forEach((doc, i) => {
        const context = doc.requests[0].context;
        if (w.docs[i].prompt != null) assert.equal(context, w.docs[i].prompt, `${name} ${doc.where}: prompt`);
        assert.equal(sha256(context), w.docs[i].prompt_sha256, `${name} ${doc.where}: prompt bytes`);
        assert.deepEqual(
          doc.requests.map((r) => r.continuation),
          [' A', ' B', ' C', ' D'],
        );
      });
      const report = await evaluateTask(engine, enc, task, docs, { maxLength: oracle.max_length, numFewshot: shots });
      report.docs.forEach((doc, i) => {
        doc.requests.forEach((got, j) => checkRequest(got, w.docs[i].requests[j], `${name} ${doc.where} choice ${j}`));
        assert.equal(doc.score!.gold, w.docs[i].gold);
        assert.equal(doc.score!.acc, w.docs[i].acc, `${name} ${doc.where}: acc`);
      });
      assert.equal(report.metrics.acc!.value, w.acc, `${name}: acc`);
      assert.ok(Math.abs(report.metrics.acc!.stderr! - w.acc_stderr) < 1e-12, `${name}: stderr`);
      if (shots === 5) assert.ok(report.truncated > 0, 'stories260K (512 positions) cuts long 5-shot prompts from the left');
      reports.push(report);
    }
    const group = aggregateGroup('three subjects', reports);
    assert.equal(group.n, want.group.n);
    assert.ok(Math.abs(group.acc.value - want.group.acc) < 1e-12);
    assert.ok(Math.abs(group.acc.stderr! - want.group.acc_stderr) < 1e-12);
  });
}

test('mmlu = the 57 subjects in four categories; unknown subjects and categories are refused', () => {
  const { tasks, groups } = resolveTasks('mmlu');
  assert.equal(tasks.length, 57);
  assert.deepEqual(
    groups.map((g) => [g.name, g.tasks.length]),
    [
      ['mmlu', 57],
      ['mmlu_stem', 19],
      ['mmlu_other', 13],
      ['mmlu_social_sciences', 12],
      ['mmlu_humanities', 13],
    ],
  );
  assert.equal(resolveTasks('mmlu_humanities').tasks.length, 13);
  assert.throws(() => resolveTask('mmlu_astrology'), /unknown MMLU subject or category "astrology"; subjects: abstract_algebra, anatomy/);
  const [doc] = resolveTask('mmlu_global_facts').load(DATA, { numFewshot: 1, limit: 1 });
  assert.ok(doc.requests[0].context.startsWith('The following are multiple choice questions (with answers) about global facts.\n\n'));
});

function generationModel(decoder: Decoder): GenerationModel {
  return {
    decoder,
    encode: enc,
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true }),
    eosIds: [2],
    eosText: tokenizer.decode([2], { skip_special_tokens: false }),
    maxLength: oracle.max_length,
  };
}

test('GSM8K 5-shot on 10 questions: prompts byte-identical, greedy generations identical (batched and alone), filters and exact_match equal', async () => {
  const task = resolveTask('gsm8k');
  assert.equal(task.defaultNumFewshot, 5);
  const docs = task.load(DATA);
  assert.equal(docs.length, oracle.gsm8k.n);
  docs.forEach((doc, i) => assert.equal(sha256(doc.context!), oracle.gsm8k.docs[i].prompt_sha256, `${doc.where}: prompt bytes`));
  const decoder = await Decoder.open(ckpt);
  const model = generationModel(decoder);
  // 4 sequences decoded together (batches of 4, 4, 2), and the first document alone.
  const scores: GenerationScore[] = await scoreGenerations(model, docs, task.generation!, 4);
  scores.unshift(await scoreGeneration(model, docs[0], task.generation!));
  await decoder.release();
  scores.forEach((got, j) => {
    const i = Math.max(0, j - 1);
    const want = oracle.gsm8k.docs[i];
    const where = `${docs[i].where}${j === 0 ? ' (alone)' : ''}`;
    assert.equal(got.output.promptTokens, want.prompt_tokens, where);
    assert.equal(got.output.truncated, want.truncated, where);
    assert.deepEqual(got.output.ids, want.generated_ids, `${where}: tokens generated`);
    assert.equal(got.output.text, want.text, `${where}: generated text`);
    assert.deepEqual(got.filtered, want.filtered, where);
    assert.deepEqual(got.exactMatch, want.exact_match, where);
  });
  for (const f of ['strict-match', 'flexible-extract']) {
    const xs = scores.slice(1).map((s) => s.exactMatch[f]);
    assert.equal(xs.reduce((a, b) => a + b, 0) / xs.length, oracle.gsm8k.exact_match[f].value);
  }
});

test('generate_until: stop strings, EOS text and max_gen_toks as transformers + lm-eval (token for token)', async () => {
  const decoder = await Decoder.open(ckpt);
  const model = generationModel(decoder);
  const configOf = (c: (typeof oracle.generation_cases)[number]) => ({
    until: c.until,
    maxGenToks: c.max_gen_toks,
    filters: [],
    exactMatch: { ignoreCase: false, regexesToIgnore: [] },
  });
  for (const c of oracle.generation_cases) {
    const got = await generateUntil(model, c.context, configOf(c));
    assert.deepEqual(got.ids, c.generated_ids, `${JSON.stringify(c.context)}: tokens`);
    assert.equal(got.text, c.text, JSON.stringify(c.context));
    assert.equal(got.promptTokens, c.prompt_tokens);
    assert.equal(got.stoppedBy, c.until.length > 0 ? 'until' : 'max_gen_toks');
  }
  // Prompts of different lengths stopping at different steps, decoded together: each as alone.
  const config = { until: ['!', '\n'], maxGenToks: 40, filters: [], exactMatch: { ignoreCase: false, regexesToIgnore: [] } };
  const contexts = [...oracle.generation_cases.map((c) => c.context), 'Lily', 'The sun was hot and the dog was'];
  const together = await generateUntilBatch(model, contexts, config);
  for (const [i, context] of contexts.entries())
    assert.deepEqual(together[i], await generateUntil(model, context, config), `${JSON.stringify(context)} in a batch`);
  assert.ok(new Set(together.map((o) => o.generatedTokens)).size > 2, 'the sequences stop at different steps');
  await decoder.release();
});

test("gsm8k's strict-match / flexible-extract filters and exact_match equal Python's re on crafted responses", () => {
  const config = resolveTask('gsm8k').generation!;
  const [strict, flexible] = config.filters;
  for (const c of oracle.filter_cases) {
    assert.equal(strict.apply(c.response), c['strict-match'], JSON.stringify(c.response));
    assert.equal(flexible.apply(c.response), c['flexible-extract'], JSON.stringify(c.response));
    assert.equal(exactMatch(strict.apply(c.response), c.reference, config.exactMatch), c.exact_match['strict-match']);
    assert.equal(exactMatch(flexible.apply(c.response), c.reference, config.exactMatch), c.exact_match['flexible-extract']);
    assert.equal(exactMatch(c.response, c.reference, config.exactMatch), c.exact_match.raw, JSON.stringify(c.response));
  }
});

test('LAMBADA 2-shot (shots from the test split itself, the document not excluded): prompts and log-likelihoods', async () => {
  const task = resolveTask('lambada_openai');
  const docs = task.load(DATA, { numFewshot: 2, limit: 10 });
  docs.forEach((doc, i) =>
    assert.equal(sha256(doc.requests[0].context), oracle.lambada_openai.docs[i].prompt_sha256, `${doc.where}: prompt bytes`),
  );
  const report = await evaluateTask(engine, enc, task, docs, { maxLength: oracle.max_length });
  report.docs.forEach((doc, i) => checkRequest(doc.requests[0], oracle.lambada_openai.docs[i].request, doc.where));
});

test('Decoder.generateBatch gives each sequence the tokens generate gives it alone, on every family (sliding windows, local/global RoPE, soft-capping)', async () => {
  for (const name of ['gemma', 'gemma2-softcap', 'gemma3-local-global', 'llama3-untied', 'mistral-sliding', 'qwen2-bias', 'qwen3-qknorm']) {
    const family = await Decoder.open(openCheckpoint(`${FAMILY_FIXTURES}${name}`));
    const V = family.spec.vocabSize;
    const prompts = [[1, 5, 9, 2, 7], [3, 3, 8, 1, 6, 4, 2, 9, 5, 7, 1, 2], [4]].map((p) => p.map((t) => (t * 37) % V));
    const alone = [];
    for (const p of prompts) alone.push(await family.generate(p, 10));
    assert.deepEqual(await family.generateBatch(prompts, 10), alone, name);
    await family.release();
  }
});

test('few-shot prompts of consecutive questions share one prefix tree: fewer tokens run, the same log-likelihoods as one tree per question', async () => {
  const task = resolveTask('mmlu_global_facts');
  const docs = task.load(DATA, { numFewshot: 1 });
  const alone = await evaluateTask(engine, enc, task, docs, { maxLength: oracle.max_length, shareTokens: 0 });
  const shared = await evaluateTask(engine, enc, task, docs, { maxLength: oracle.max_length });
  assert.ok(shared.inputTokens < alone.inputTokens * 0.75, `${shared.inputTokens} vs ${alone.inputTokens} tokens`);
  shared.docs.forEach((doc, i) =>
    doc.requests.forEach((r, j) => {
      assert.ok(Math.abs(r.logprob - alone.docs[i].requests[j].logprob) < 1e-4);
      assert.equal(r.isGreedy, alone.docs[i].requests[j].isGreedy);
    }),
  );
  assert.deepEqual(
    shared.docs.map((d) => d.score!.acc),
    alone.docs.map((d) => d.score!.acc),
  );
});

test("few-shot contexts of PIQA, BoolQ, WinoGrande, ARC, OpenBookQA are lm-eval's own (its fewshot_context; the document excluded where its test split is unset)", () => {
  // shared/data has no train splits: the evaluated slice stands in for train, so the evaluated
  // document is in the pool — excluded for PIQA/BoolQ/WinoGrande, not for ARC/OpenBookQA, as lm-eval does.
  const want = JSON.parse(readFileSync(`${DATA}/lm-eval-fewshot-prompts.json`, 'utf8')) as {
    shots: number;
    limit: number;
    tasks: Record<string, string[][] | string | string[]>;
  };
  const dir = mkdtempSync(join(tmpdir(), 'compact-fewshot-'));
  try {
    cpSync(DATA, dir, { recursive: true });
    const copies: [string, string][] = [
      ['piqa/valid.jsonl', 'piqa/train.jsonl'],
      ['piqa/valid-labels.lst', 'piqa/train-labels.lst'],
      ['boolq/boolq_validation.csv', 'boolq/boolq_train.csv'],
      ['winogrande/winogrande_dev.jsonl', 'winogrande/winogrande_train_xl.jsonl'],
      ['arc/ARC-Easy-test.jsonl', 'arc/ARC-Easy-train.jsonl'],
      ['openbookqa/test.tsv', 'openbookqa/train.tsv'],
    ];
    for (const [from, to] of copies) cpSync(join(dir, from), join(dir, to));
    for (const name of ['piqa', 'boolq', 'winogrande', 'arc_easy', 'openbookqa']) {
      const docs = resolveTask(name).load(dir, { numFewshot: want.shots, limit: want.limit });
      const first = want.tasks[`${name}:first`];
      assert.deepEqual(
        name === 'winogrande' ? docs[0].requests.map((r) => r.context) : docs[0].requests[0].context,
        first,
        `${name}: first context`,
      );
      const got = docs.map((d) => [...new Set(d.requests.map((r) => r.context))].map(sha256));
      assert.deepEqual(got, want.tasks[name], `${name}: contexts`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--num-fewshot on a task whose few-shot split is absent: one clear error naming the file lm-eval's split would be read from", () => {
  // shared/data (and these fixtures) hold no train splits of these tasks; lm-eval draws their shots from train.
  const missing: [string, string][] = [
    ['arc_easy', 'arc/ARC-Easy-train.jsonl'],
    ['arc_challenge', 'arc/ARC-Challenge-train.jsonl'],
    ['piqa', 'piqa/train.jsonl'],
    ['hellaswag', 'hellaswag/hellaswag_train.jsonl'],
    ['winogrande', 'winogrande/winogrande_train_xl.jsonl'],
    ['boolq', 'boolq/boolq_train.csv'],
    ['openbookqa', 'openbookqa/train.tsv'],
  ];
  for (const [name, file] of missing) {
    assert.throws(
      () => resolveTask(name).load(DATA, { numFewshot: 2 }),
      (e: Error) => e.message === `${DATA}/${file}: cannot read (ENOENT); task ${name} with --num-fewshot 2 (its train split) needs it`,
      name,
    );
    assert.equal(resolveTask(name).load(DATA, { numFewshot: 0, limit: 1 }).length, 1, `${name}: zero-shot needs no train split`);
  }
});
