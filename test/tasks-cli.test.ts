/**
 * `compact eval --tasks` as a user meets it: JSON and table reports, --text beside --tasks, and
 * bad input (unknown task, --limit ≤ 0, missing or malformed data files): one line
 * `compact: error: …`, exit 2, nothing on stdout.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const DATA = `${ROOT}test/fixtures/tasks`;
const MC = 'mc:test/fixtures/tasks/mc/questions.jsonl';
const work = mkdtempSync(join(tmpdir(), 'compact-tasks-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface OracleTask {
  docs: { requests: { greedy: boolean }[]; acc?: number; acc_norm?: number }[];
}
const oracle = JSON.parse(readFileSync(`${DATA}/oracle-stories260K.json`, 'utf8')) as { tasks: Record<string, OracleTask> };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('eval --tasks --limit --json: per-task n, acc, acc_norm, stderr as the oracle has them', () => {
  const r = runCli([
    'eval',
    `${STORIES}hf`,
    '--tasks',
    `arc_easy,winogrande,lambada_openai,${MC}`,
    '--data-dir',
    DATA,
    '--limit',
    '10',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    tasks: { task: string; n: number; metrics: Record<string, { value: number; stderr: number } | number> }[];
  };
  assert.deepEqual(
    out.tasks.map((t) => [t.task, t.n]),
    [
      ['arc_easy', 10],
      ['winogrande', 10],
      ['lambada_openai', 10],
      [MC, 10],
    ],
  );
  for (const t of out.tasks) {
    const docs = oracle.tasks[t.task].docs.slice(0, 10);
    const acc = t.task === 'lambada_openai' ? mean(docs.map((d) => +d.requests[0].greedy)) : mean(docs.map((d) => d.acc!));
    const m = t.metrics.acc as { value: number; stderr: number };
    assert.equal(m.value, acc, `${t.task} acc`);
    assert.ok(Math.abs(m.stderr - Math.sqrt((acc * (1 - acc) * 10) / 9 / 10)) < 1e-12, `${t.task} stderr`);
    if (t.task === 'arc_easy') assert.equal((t.metrics.acc_norm as { value: number }).value, mean(docs.map((d) => d.acc_norm!)));
    if (t.task === 'winogrande') assert.equal(t.metrics.acc_norm, undefined, 'WinoGrande reports acc only');
    if (t.task === 'lambada_openai') assert.ok((t.metrics.perplexity as number) > 1);
  }
});

test('eval --text and --tasks together: the text report, then the task table', () => {
  const r = runCli([
    'eval',
    `${STORIES}hf`,
    '--text',
    `${ROOT}data/tinystories/heldout_10pct.txt`,
    '--tasks',
    'boolq,piqa',
    '--data-dir',
    DATA,
    '--limit',
    '3',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /bits per byte\s+\d\.\d{5}/);
  assert.match(r.stdout, /task\s+split\s+n\s+acc\s+acc_norm\s+perplexity/);
  assert.match(r.stdout, /\nboolq\s+super_glue\/boolq validation\s+3\s+\d\.\d{4}\s+± \d\.\d{4}\s+—/);
  assert.match(r.stdout, /\npiqa\s+PIQA validation\s+3\s+\d\.\d{4}\s+± \d\.\d{4}\s+\d\.\d{4}\s+± \d\.\d{4}/);
  assert.match(r.stdout, /inputs cut from the left to the model's maximum length: boolq \d/);
});

const toCliResult = (r: { status: number | null; stdout: string; stderr: string }) => ({
  code: r.status ?? -1,
  stdout: r.stdout,
  stderr: r.stderr,
});

function expectUserError(args: string[], pattern: RegExp, cwd = ROOT): void {
  // Elsewhere than the repository root, tsx is found by its resolved URL.
  const r =
    cwd === ROOT
      ? runCli(args)
      : toCliResult(
          spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), `${ROOT}test/helpers/cli-entry.ts`, ...args], {
            encoding: 'utf8',
            cwd,
          }),
        );
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^compact: error: /);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got: ${r.stderr}`);
  assert.equal(r.stdout, '', 'no partial report');
}

test('bad input: unknown task, --limit ≤ 0, nothing to evaluate', () => {
  expectUserError(
    ['eval', `${STORIES}hf`, '--tasks', 'arc_easy,squad', '--data-dir', DATA],
    /unknown task "squad"; known: arc_easy, arc_challenge, piqa, hellaswag, winogrande, boolq, openbookqa, lambada_openai, gsm8k, mmlu \(or mmlu_<subject>, mmlu_<category>\), or mc:FILE\.jsonl/,
  );
  expectUserError(
    ['eval', `${STORIES}hf`, '--tasks', 'arc_easy', '--data-dir', DATA, '--limit', '0'],
    /--limit must be a positive integer, got "0"/,
  );
  expectUserError(['eval', `${STORIES}hf`], /nothing to evaluate: give --text FILE, --tasks LIST and\/or --speed/);
});

test('bad input: missing and malformed data files name the file, the line and the field', () => {
  const data = join(work, 'data');
  cpSync(DATA, data, { recursive: true });
  rmSync(join(data, 'piqa', 'valid-labels.lst'));
  expectUserError(
    ['eval', `${STORIES}hf`, '--tasks', 'arc_easy,piqa', '--data-dir', data],
    /piqa\/valid-labels\.lst: cannot read \(ENOENT\); task piqa needs it/,
  );
  const arc = join(data, 'arc', 'ARC-Easy-test.jsonl');
  const lines = readFileSync(arc, 'utf8').split('\n');
  lines[6] = lines[6].replace('"answerKey":', '"answerKeyX":');
  writeFileSync(arc, lines.join('\n'));
  expectUserError(
    ['eval', `${STORIES}hf`, '--tasks', 'arc_easy', '--data-dir', data],
    /arc\/ARC-Easy-test\.jsonl:7: field "answerKey" is missing/,
  );
  expectUserError(
    ['eval', `${STORIES}hf`, '--tasks', 'hellaswag', '--data-dir', join(work, 'nowhere')],
    /--data-dir .*nowhere does not exist/,
  );
  // No --data-dir and no ../shared/data beside the current directory (a fresh clone): the bundled slices, with a note.
  const fresh = spawnSync(
    process.execPath,
    [
      '--import',
      import.meta.resolve('tsx'),
      `${ROOT}test/helpers/cli-entry.ts`,
      'eval',
      `${STORIES}hf`,
      '--tasks',
      'arc_easy',
      '--limit',
      '2',
      '--json',
    ],
    { encoding: 'utf8', cwd: work },
  );
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.match(fresh.stderr, /^compact: note: .*shared\/data does not exist; using the bundled slices in test\/fixtures\/tasks/);
  assert.equal((JSON.parse(fresh.stdout) as { tasks: { n: number }[] }).tasks[0].n, 2);
});
