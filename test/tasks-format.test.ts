/**
 * The zero-shot task definitions without a model: the exact (context, continuation) strings of
 * each format as lm-eval builds them, the whitespace move of _encode_pair, the readers' error
 * messages (file, line, field), acc / acc_norm / stderr arithmetic.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodePair, modelMaxLength } from '../src/eval/loglikelihood.js';
import { aggregateChoices, meanStderr, scoreChoices } from '../src/eval/multiple-choice.js';
import { hellaswagPreprocess, resolveTask, TASK_NAMES } from '../src/eval/tasks/definitions.js';
import { readJsonl, readTable } from '../src/eval/tasks/readers.js';
import { pyCapitalize, pyLen, pyStrip } from '../src/eval/tasks/text.js';
import { ROOT } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;
const work = mkdtempSync(join(tmpdir(), 'compact-tasks-'));
after(() => rmSync(work, { recursive: true, force: true }));

const first = (name: string) => resolveTask(name).load(DATA)[0];

test('ARC: "Question: {question}\\nAnswer:" + " " + choice, gold = index of answerKey', () => {
  const doc = first('arc_easy');
  const q = 'Which statement best explains why photosynthesis is the foundation of most food webs?';
  assert.deepEqual(doc.requests[0], {
    context: `Question: ${q}\nAnswer:`,
    continuation: ' Sunlight is the source of energy for nearly all ecosystems.',
  });
  assert.equal(doc.requests.length, 4);
  assert.equal(doc.gold, 0); // answerKey "A"
  assert.equal(doc.choices[3], 'The producers in all ecosystems are plants.');
  assert.match(doc.where, /arc\/ARC-Easy-test\.jsonl:1$/);
  assert.equal(resolveTask('arc_challenge').load(DATA).length, 50);
});

test('PIQA: "Question: {goal}\\nAnswer:" + " " + sol1/sol2, label from valid-labels.lst', () => {
  const doc = first('piqa');
  assert.equal(doc.requests[0].context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  assert.ok(
    doc.requests[1].continuation.startsWith(' Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans'),
  );
  assert.equal(doc.gold, 0);
});

test('BoolQ: "{passage}\\nQuestion: {question}?\\nAnswer:" + " no" / " yes"', () => {
  const doc = first('boolq');
  assert.ok(doc.requests[0].context.startsWith('Ethanol fuel -- All biomass goes through'));
  assert.ok(doc.requests[0].context.endsWith('\nQuestion: does ethanol take more energy make that produces?\nAnswer:'));
  assert.deepEqual(
    doc.requests.map((r) => r.continuation),
    [' no', ' yes'],
  );
  assert.deepEqual(doc.choices, ['no', 'yes']);
  assert.equal(doc.gold, 0);
});

test('OpenBookQA: question_stem + " " + choice, gold = answerKey', () => {
  const doc = first('openbookqa');
  assert.equal(
    doc.requests[0].context,
    'A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to',
  );
  assert.deepEqual(doc.choices, [
    'make more phone calls',
    'quit eating lunch out',
    'buy less with monopoly money',
    'have lunch with friends',
  ]);
  assert.equal(doc.requests[1].continuation, ' quit eating lunch out');
  assert.equal(doc.gold, 1);
});

test('WinoGrande: partial scoring — the option completes the context, the shared rest is the continuation', () => {
  const doc = first('winogrande');
  assert.deepEqual(doc.requests, [
    { context: 'Sarah was a much better surgeon than Maria so Sarah', continuation: ' always got the easier cases.' },
    { context: 'Sarah was a much better surgeon than Maria so Maria', continuation: ' always got the easier cases.' },
  ]);
  assert.equal(doc.gold, 1);
  assert.deepEqual(resolveTask('winogrande').metrics, ['acc']);
});

test('LAMBADA: the last space-separated word (with its space) given the rest', () => {
  const doc = first('lambada_openai');
  assert.equal(doc.requests.length, 1);
  assert.equal(doc.requests[0].continuation, ' signs');
  assert.ok(doc.requests[0].context.endsWith("his mouth curved in a confident grin, I don't care about"));
  assert.ok(!doc.requests[0].context.endsWith(' '));
});

test('HellaSwag: lm-eval preprocess and ctx_b.capitalize() (original JSONL layout), llama.cpp layout as given', () => {
  // Python's own output for these inputs (lm-eval strips before removing brackets, and collapses "  " once).
  assert.equal(
    hellaswagPreprocess(' [header] How to fold a shirt [title] Lay it flat. [step]  Smooth it.  '),
    ' How to fold a shirt. Lay it flat.  Smooth it.',
  );
  assert.equal(hellaswagPreprocess('a [sic] b'), 'a b');
  assert.equal(pyCapitalize('the lady named ANN'), 'The lady named ann');
  assert.equal(pyCapitalize(''), '');
  const doc = first('hellaswag');
  assert.equal(doc.requests[0].context, 'Roof shingle removal: A man is sitting on a roof. he');
  assert.equal(doc.requests[3].continuation, ' starts pulling up roofing on a roof.');
  assert.equal(doc.gold, 3);
  // The original release layout, when present, is processed exactly as lm-eval's process_docs.
  const dir = join(work, 'hs');
  const folder = join(dir, 'hellaswag');
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, 'hellaswag_val.jsonl'),
    `${JSON.stringify({ activity_label: 'Roof shingle removal', ctx_a: 'A man is sitting on a roof.', ctx_b: 'he', endings: ['is using wrap to wrap a pair of skis.', 'is ripping level tiles off.', "is holding a rubik's cube.", 'starts pulling up roofing on a roof.'], label: 3 })}\n`,
  );
  const exact = resolveTask('hellaswag').load(dir)[0];
  assert.equal(exact.requests[0].context, 'Roof shingle removal: A man is sitting on a roof. He');
  assert.equal(exact.gold, 3);
});

test('mc:FILE — your own multiple choice; a space joins context and choice', () => {
  const task = resolveTask(`mc:${DATA}/mc/questions.jsonl`);
  const docs = task.load('.');
  assert.equal(docs.length, 12);
  assert.equal(docs[0].requests[1].continuation, ' B');
  assert.equal(docs[0].gold, 1);
  assert.deepEqual(task.metrics, ['acc', 'acc_norm']);
});

test('encodePair: trailing whitespace moves to the continuation; split at the context token count', () => {
  const calls: string[] = [];
  const chars = (s: string) => {
    calls.push(s);
    return [...s].map((c) => c.codePointAt(0)!);
  };
  const pair = encodePair(chars, 'Spot likes to  \n', 'run');
  assert.deepEqual(calls, ['Spot likes to  \nrun', 'Spot likes to']);
  assert.equal(String.fromCodePoint(...pair.continuation), '  \nrun');
  // A tokenizer that merges across the boundary: the continuation is what follows the context's count.
  const words = (s: string) => s.split(/(?=\s)/).map((w) => w.length);
  assert.deepEqual(encodePair(words, 'a bc', ' d'), { context: [1, 3], continuation: [2] });
  assert.equal(pyStrip('\u3000 x \x1c\n'), 'x');
});

test('max length as lm-eval resolves it', () => {
  assert.equal(modelMaxLength({ max_position_embeddings: 512 }), 512);
  assert.equal(modelMaxLength({ n_positions: 1024, max_position_embeddings: 512 }), 1024);
  assert.equal(modelMaxLength({}, { model_max_length: 4096 }), 4096);
  assert.equal(modelMaxLength({}, { model_max_length: 1e30 }), 2048);
});

test('acc, acc_norm (÷ characters, as lm-eval), acc_bytes (÷ UTF-8 bytes), sample stderr', () => {
  // "é" is 1 character but 2 bytes: the two normalisations can disagree.
  const s = scoreChoices([-4, -4.2], ['éé', 'abc'], 1);
  assert.equal(s.pred, 0); // −4 > −4.2
  assert.equal(s.predNorm, 1); // −4/2 = −2 < −4.2/3 = −1.4
  assert.equal(s.predBytes, 0); // −4/4 = −1 > −4.2/3 = −1.4
  assert.deepEqual([s.acc, s.accNorm, s.accBytes], [0, 1, 0]);
  assert.equal(pyLen('😀a'), 2);
  assert.equal(scoreChoices([-1, -1], ['a', 'b'], 0).pred, 0, 'first maximum, like np.argmax');
  const m = meanStderr([1, 0, 0, 1, 1]);
  assert.equal(m.value, 0.6);
  assert.ok(Math.abs(m.stderr! - Math.sqrt(0.3) / Math.sqrt(5)) < 1e-15); // sample variance 1.2/4 = 0.3
  assert.equal(meanStderr([1]).stderr, null);
  const agg = aggregateChoices([s, scoreChoices([-1, -2], ['a', 'b'], 0)], ['acc']);
  assert.deepEqual(Object.keys(agg), ['acc']);
  assert.equal(agg.acc!.value, 0.5);
});

test('readers: CSV quoting, and errors that name file, line and field', () => {
  const csv = join(work, 'q.csv');
  writeFileSync(csv, 'a,b\n"x, ""y""","multi\nline"\nplain,2\n');
  assert.deepEqual(
    readTable(csv, 't').map((r) => [r.line, r.value.a, r.value.b]),
    [
      [2, 'x, "y"', 'multi\nline'],
      [4, 'plain', '2'],
    ],
  );
  writeFileSync(csv, 'a,b\n1,2,3\n');
  assert.throws(() => readTable(csv, 't'), /q\.csv:2: 3 fields, the header has 2/);
  writeFileSync(csv, 'a,b\n"open,2\n');
  assert.throws(() => readTable(csv, 't'), /q\.csv:2: unterminated quoted field/);
  const jsonl = join(work, 'bad.jsonl');
  writeFileSync(jsonl, '{"context": "c", "choices": ["a"], "gold": 0}\n{"context": "c", "choices": ["a", "b"]\n');
  assert.throws(() => readJsonl(jsonl, 't'), /bad\.jsonl:2: not valid JSON/);
  const cases: [string, RegExp][] = [
    ['{"context": "c", "choices": ["a", "b"], "gold": 2}', /bad\.jsonl:2: field "gold" must be an integer in \[0, 2\), got 2/],
    ['{"context": "c", "choices": "a", "gold": 0}', /bad\.jsonl:2: field "choices" must be a non-empty list of strings/],
    ['{"choices": ["a"], "gold": 0}', /bad\.jsonl:2: field "context" is missing/],
    ['{"context": "", "choices": ["a"], "gold": 0}', /bad\.jsonl:2: field "context" is empty/],
    ['[1, 2]', /bad\.jsonl:2: expected a JSON object/],
  ];
  for (const [line, pattern] of cases) {
    writeFileSync(jsonl, `{"context": "c", "choices": ["a"], "gold": 0}\n${line}\n`);
    assert.throws(() => resolveTask(`mc:${jsonl}`).load('.'), pattern);
  }
  assert.throws(() => resolveTask('arc_easy').load(work), /arc\/ARC-Easy-test\.jsonl: cannot read \(ENOENT\); task arc_easy needs it/);
  assert.throws(
    () => resolveTask('squad'),
    new RegExp(
      `unknown task "squad"; known: ${TASK_NAMES.slice(0, 8).join(', ')}, gsm8k, mmlu \\(or mmlu_<subject>, mmlu_<category>\\), or mc:FILE\\.jsonl`,
    ),
  );
});
