/**
 * `compact eval --tasks` with MMLU, GSM8K and --num-fewshot as a user meets them: the group and
 * category rows, GSM8K's two exact-match numbers, --log-samples records in --json, truncation
 * counted, and bad input (missing or malformed MMLU/GSM8K files, --num-fewshot larger than the
 * few-shot split or without one, unknown subject, bad flags): one line `compact: error: …`, exit 2.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;
const work = mkdtempSync(join(tmpdir(), 'compact-fewshot-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
const oracle = JSON.parse(readFileSync(`${DATA}/oracle-fewshot-stories260K.json`, 'utf8')) as {
  mmlu: Record<string, { tasks: Record<string, { docs: { acc: number; prompt_sha256: string }[] }> }>;
  gsm8k: { docs: { prompt_sha256: string; text: string; filtered: Record<string, string>; exact_match: Record<string, number> }[] };
};

interface Json {
  tasks: {
    task: string;
    n: number;
    numFewshot: number;
    truncated: number;
    metrics: Record<string, unknown>;
    samples?: Record<string, unknown>[];
  }[];
  groups?: { group: string; tasks: number; n: number; acc: { value: number; stderr: number | null } }[];
}

test('eval --tasks mmlu: 57 subjects, the size-weighted group and its four categories (table and --json)', () => {
  const r = runCli(['eval', `${STORIES}hf`, '--tasks', 'mmlu', '--data-dir', DATA, '--limit', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Json;
  assert.equal(out.tasks.length, 57);
  assert.deepEqual(
    out.groups!.map((g) => [g.group, g.tasks, g.n]),
    [
      ['mmlu', 57, 114],
      ['mmlu_stem', 19, 38],
      ['mmlu_other', 13, 26],
      ['mmlu_social_sciences', 12, 24],
      ['mmlu_humanities', 13, 26],
    ],
  );
  const accOf = (t: Json['tasks'][number]) => (t.metrics.acc as { value: number }).value;
  const micro = out.tasks.reduce((a, t) => a + accOf(t) * t.n, 0) / 114;
  assert.ok(Math.abs(out.groups![0].acc.value - micro) < 1e-12, 'mmlu acc is the micro-average over all questions');
  for (const name of ['abstract_algebra', 'global_facts', 'machine_learning']) {
    const t = out.tasks.find((x) => x.task === `mmlu_${name}`)!;
    const want = oracle.mmlu['0'].tasks[`mmlu_${name}`].docs.slice(0, 2);
    assert.equal(accOf(t), (want[0].acc + want[1].acc) / 2, name);
  }
  const table = runCli(['eval', `${STORIES}hf`, '--tasks', 'mmlu,mmlu_anatomy', '--data-dir', DATA, '--limit', '2']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(
    table.stdout,
    new RegExp(
      `\nmmlu\\s+57 subjects, weighted by size\\s+114\\s+${out.groups![0].acc.value.toFixed(4)}\\s+± ${out.groups![0].acc.stderr!.toFixed(4)}`,
    ),
  );
  assert.match(table.stdout, /\n - stem\s+19 subjects, weighted by size\s+38\s+\d\.\d{4}\s+± \d\.\d{4}/);
  assert.match(table.stdout, /inputs cut from the left to the model's maximum length: mmlu \d+/);
  assert.match(table.stdout, /\n - humanities\s+13 subjects/);
  assert.doesNotMatch(table.stdout, /mmlu_abstract_algebra/, 'subjects of a requested group only in --json');
  assert.match(table.stdout, /\nmmlu_anatomy\s+cais\/mmlu anatomy, test\s+2\s/);
  assert.match(table.stdout, /zero-shot, LM-Evaluation-Harness definitions/);
});

test('eval --tasks gsm8k (5-shot by default) --log-samples: two exact-match numbers, per-document records as the oracle', () => {
  const r = runCli(['eval', `${STORIES}hf`, '--tasks', 'gsm8k', '--data-dir', DATA, '--limit', '2', '--json', '--log-samples']);
  assert.equal(r.code, 0, r.stderr);
  const [t] = (JSON.parse(r.stdout) as Json).tasks;
  assert.equal(t.numFewshot, 5);
  assert.equal(t.truncated, 2, 'stories260K: 5-shot prompts exceed 512 − 256 tokens and are cut from the left');
  assert.deepEqual(Object.keys(t.metrics.exact_match as object), ['strict-match', 'flexible-extract']);
  t.samples!.forEach((s, i) => {
    const want = oracle.gsm8k.docs[i];
    assert.equal(s.promptHash, want.prompt_sha256);
    assert.equal(s.generated, want.text);
    assert.deepEqual(s.filtered, want.filtered);
    assert.deepEqual(s.exactMatch, want.exact_match);
    assert.match(String(s.target), /\n#### \d+$/);
  });
  const table = runCli([
    'eval',
    `${STORIES}hf`,
    '--tasks',
    'gsm8k,mmlu_machine_learning',
    '--num-fewshot',
    '5',
    '--data-dir',
    DATA,
    '--limit',
    '1',
  ]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /task\s+split\s+n\s+exact_match strict-match\s+exact_match flexible-extract/);
  assert.match(table.stdout, /\ngsm8k\s+openai\/gsm8k main, test\s+1\s+0\.0000\s+—\s+0\.0000\s+—/);
  assert.match(table.stdout, /inputs cut from the left to the model's maximum length: gsm8k 1, mmlu_machine_learning 4/);
  assert.match(table.stdout, /5-shot, LM-Evaluation-Harness definitions/);
});

test('--log-samples for multiple choice: prompt hash, choices, log-likelihoods, prediction', () => {
  const r = runCli([
    'eval',
    `${STORIES}hf`,
    '--tasks',
    'mmlu_global_facts',
    '--num-fewshot',
    '5',
    '--data-dir',
    DATA,
    '--limit',
    '3',
    '--json',
    '--log-samples',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [t] = (JSON.parse(r.stdout) as Json).tasks;
  assert.equal(t.numFewshot, 5);
  t.samples!.forEach((s, i) => {
    assert.equal(s.promptHash, oracle.mmlu['5'].tasks.mmlu_global_facts.docs[i].prompt_sha256);
    assert.deepEqual(s.choices, ['A', 'B', 'C', 'D']);
    assert.equal((s.logprobs as number[]).length, 4);
    assert.equal(s.acc, oracle.mmlu['5'].tasks.mmlu_global_facts.docs[i].acc);
  });
});

function expectUserError(args: string[], pattern: RegExp): void {
  const r = runCli(args);
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^compact: error: /);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got: ${r.stderr}`);
  assert.equal(r.stdout, '', 'no partial report');
}

test('bad input: unknown subject, --num-fewshot larger than the few-shot split or without one, bad flags', () => {
  const m = `${STORIES}hf`;
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_astrology', '--data-dir', DATA],
    /unknown MMLU subject or category "astrology"; subjects: abstract_algebra, anatomy, astronomy/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_abstract_algebra', '--num-fewshot', '6', '--data-dir', DATA],
    /task mmlu_abstract_algebra: --num-fewshot 6 but its dev split \(mmlu\/dev\/abstract_algebra_dev\.csv\) has 5 documents/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'gsm8k', '--num-fewshot', '101', '--data-dir', DATA],
    /task gsm8k: --num-fewshot 101 but its train split \(gsm8k\/train\.jsonl\) has 100 documents/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'arc_easy', '--num-fewshot', '1', '--data-dir', DATA],
    /arc\/ARC-Easy-train\.jsonl: cannot read \(ENOENT\); task arc_easy with --num-fewshot 1 \(its train split\) needs it/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'mc:test/fixtures/tasks/mc/questions.jsonl', '--num-fewshot', '2'],
    /task mc:test\/fixtures\/tasks\/mc\/questions\.jsonl has no few-shot split, so --num-fewshot must be 0/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'mmlu', '--num-fewshot', '5', '--data-dir', DATA],
    /mmlu\/dev\/anatomy_dev\.csv: cannot read \(ENOENT\); task mmlu_anatomy with --num-fewshot 5 \(its dev split\) needs it/,
  );
  expectUserError(
    ['eval', m, '--tasks', 'gsm8k', '--num-fewshot', '-1', '--data-dir', DATA],
    /--num-fewshot must be a non-negative integer, got "-1"/,
  );
  expectUserError(['eval', m, '--tasks', 'gsm8k', '--log-samples', '--data-dir', DATA], /--log-samples needs --json/);
});

test('bad input: missing and malformed MMLU and GSM8K files name the file and the row', () => {
  const data = join(work, 'data');
  cpSync(DATA, data, { recursive: true });
  const m = `${STORIES}hf`;
  const csv = join(data, 'mmlu', 'test', 'global_facts_test.csv');
  const rows = readFileSync(csv, 'utf8');
  writeFileSync(csv, rows.replace(/,([ABCD])\r?\n/, ',E\n'));
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_global_facts', '--data-dir', data],
    /mmlu\/test\/global_facts_test\.csv:1: answer must be one of A, B, C, D, got "E"/,
  );
  writeFileSync(csv, 'What?,a,b,c,D\n');
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_global_facts', '--data-dir', data],
    /mmlu\/test\/global_facts_test\.csv:1: 5 fields; an MMLU row has 6 \(question, A, B, C, D, answer\)/,
  );
  writeFileSync(csv, 'ok,a,b,c,d,A\n"unterminated,a,b,c,d,A\n');
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_global_facts', '--data-dir', data],
    /mmlu\/test\/global_facts_test\.csv:2: unterminated quoted field/,
  );
  writeFileSync(csv, rows);
  rmSync(join(data, 'mmlu', 'test', 'virology_test.csv'));
  expectUserError(
    ['eval', m, '--tasks', 'mmlu_other', '--data-dir', data],
    /mmlu\/test\/virology_test\.csv: cannot read \(ENOENT\); task mmlu_virology needs it/,
  );
  const train = join(data, 'gsm8k', 'train.jsonl');
  const lines = readFileSync(train, 'utf8').split('\n');
  lines[3] = lines[3].replace('#### ', '### ');
  writeFileSync(train, lines.join('\n'));
  expectUserError(
    ['eval', m, '--tasks', 'gsm8k', '--data-dir', data],
    /gsm8k\/train\.jsonl:4: field "answer" has no "#### <final answer>" line/,
  );
  writeFileSync(join(data, 'gsm8k', 'test.jsonl'), '{"question": "2 + 2?"}\n');
  expectUserError(['eval', m, '--tasks', 'gsm8k', '--data-dir', data], /gsm8k\/test\.jsonl:1: field "answer" is missing/);
  rmSync(join(data, 'gsm8k', 'test.jsonl'));
  expectUserError(['eval', m, '--tasks', 'gsm8k', '--data-dir', data], /gsm8k\/test\.jsonl: cannot read \(ENOENT\); task gsm8k needs it/);
});
