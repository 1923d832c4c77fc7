/**
 * The library as a user imports it: the README's example, run as written in a child process that
 * imports the package by its name (`compact-llm`, resolved through package.json `exports`); the
 * exports and types naming what the build writes; the library's defaults being the CLI's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Command } from 'commander';
import { registerEval } from '../src/cli/eval.js';
import { registerPrune } from '../src/cli/prune.js';
import { EVAL_DEFAULTS, PRUNE_DEFAULTS, withPruneDefaults } from '../src/defaults.js';
import { calibrateShard, CompactError, evaluate, exportGguf, generate, inspect, prune } from '../src/index.js';
import type { Precision } from '../src/engine/precision.js';
import { runCli } from './helpers/cli.js';
import { HELDOUT_TEXT, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-library-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The first ```js block of the README's "Library" section. */
function readmeExample(): string {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'README has a ```js example under "## Library"');
  return match[1];
}

test('the README example runs as written, importing compact-llm by name', () => {
  const example = readmeExample();
  assert.match(example, /from 'compact-llm'/);
  // Outputs go to a temp dir instead of out/; the file sits inside the package so the name resolves to it.
  const script = example.replaceAll("'out/", `'${work}/`);
  mkdirSync(`${ROOT}.tmp`, { recursive: true });
  const file = `${ROOT}.tmp/library-example-${process.pid}.ts`;
  writeFileSync(file, script);
  try {
    // compact-source: the exports condition that maps the name to src/index.ts (tests run the source, not a possibly stale dist/).
    const r = spawnSync(process.execPath, ['--conditions=compact-source', '--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /vocabulary share 12\.6 %/);
    assert.match(r.stdout, /kept V′ = \d+, I′ = \d+: 29\.\d % of the parameters removed/);
    assert.match(r.stdout, /bits per byte: \d\.\d{4}/);
    assert.match(r.stdout, /continuation: .+/);
    assert.ok(existsSync(`${work}/stories260K-30.gguf`), 'the GGUF was written');
  } finally {
    rmSync(file, { force: true });
  }
});

test('package.json: exports and types name the built entry (src/index.ts → dist/index.js, dist/index.d.ts)', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
    name: string;
    main: string;
    types: string;
    exports: Record<string, Record<string, string>>;
  };
  const tsconfig = JSON.parse(readFileSync(`${ROOT}tsconfig.json`, 'utf8')) as {
    compilerOptions: { outDir: string; rootDir: string; declaration: boolean };
  };
  assert.equal(pkg.name, 'compact-llm');
  assert.deepEqual(
    [tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir, tsconfig.compilerOptions.declaration],
    ['src', 'dist', true],
  );
  assert.ok(existsSync(`${ROOT}src/index.ts`));
  assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', 'compact-source': './src/index.ts', default: './dist/index.js' });
  assert.equal(pkg.main, 'dist/index.js');
  assert.equal(pkg.types, 'dist/index.d.ts');
  // Without the condition the name resolves to the build (when there is one: npm ci builds it).
  if (existsSync(`${ROOT}dist/index.js`)) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('compact-llm'))"], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), /\/dist\/index\.js$/);
  }
});

test('evaluate: tasks as eval --tasks scores them (the transformers oracle of test/fixtures/tasks)', async () => {
  const DATA = `${ROOT}test/fixtures/tasks`;
  const oracle = JSON.parse(readFileSync(`${DATA}/oracle-stories260K.json`, 'utf8')) as {
    tasks: Record<string, { docs: { acc: number; acc_norm: number }[] }>;
  };
  const r = await evaluate(`${STORIES}hf`, { tasks: ['arc_easy', 'piqa'], dataDir: DATA, limit: 6 });
  assert.deepEqual(
    r.tasks!.map((t) => [t.task, t.n]),
    [
      ['arc_easy', 6],
      ['piqa', 6],
    ],
  );
  for (const t of r.tasks!) {
    const docs = oracle.tasks[t.task].docs.slice(0, 6);
    assert.equal(t.metrics.acc!.value, docs.reduce((a, d) => a + d.acc, 0) / 6, `${t.task} acc`);
    assert.equal(t.metrics.acc_norm!.value, docs.reduce((a, d) => a + d.acc_norm, 0) / 6, `${t.task} acc_norm`);
  }
  assert.equal(r.text, undefined);
  assert.equal(r.parameters.total, 260_032);
});

test('evaluate: precision int8 gives the bits per byte of eval --precision int8 (near fp32, not equal); a bad precision is refused', async () => {
  const text = join(work, 'heldout-20k.txt');
  writeFileSync(text, readFileSync(HELDOUT_TEXT, 'utf8').slice(0, 20_000));
  const reports = [];
  for (const precision of [undefined, 'fp32', 'int8'] as const) reports.push(await evaluate(`${STORIES}hf`, { text, precision }));
  const [byDefault, fp32, int8] = reports;
  assert.deepEqual([byDefault.precision, fp32.precision, int8.precision], ['fp32', 'fp32', 'int8']);
  assert.equal(byDefault.text!.bitsPerByte, fp32.text!.bitsPerByte);
  // Measured on stories260K (these 20,000 characters): fp32 1.28802, int8 1.29760 (+0.74 %).
  const ratio = int8.text!.bitsPerByte / fp32.text!.bitsPerByte;
  assert.ok(ratio !== 1 && Math.abs(ratio - 1) < 0.03, `int8 / fp32 bits per byte: ${ratio}`);
  const cli = runCli(['eval', `${STORIES}hf`, '--text', text, '--precision', 'int8', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).bitsPerByte, int8.text!.bitsPerByte, "int8: the CLI's number");
  // The CLI's words (option '--precision <p>' argument 'int4' is invalid. Allowed choices are fp32, int8), the library's name.
  const refused = (e: unknown) =>
    e instanceof CompactError && /^option 'precision' argument 'int4' is invalid\. Allowed choices are fp32, int8$/.test(e.message);
  await assert.rejects(evaluate(`${STORIES}hf`, { text, precision: 'int4' as Precision }), refused);
  const out = join(work, 'never-precision');
  await assert.rejects(prune(`${STORIES}hf`, out, { ffn: 100, precision: 'int4' as Precision }), refused);
  await assert.rejects(
    calibrateShard(
      `${STORIES}hf`,
      { index: 1, count: 2 },
      { ffn: 100, compensate: false, precision: 'int4' as Precision, scoresOut: `${out}.json` },
    ),
    refused,
  );
  assert.ok(!existsSync(out) && !existsSync(`${out}.json`));
});

test("user mistakes throw a CompactError (the CLI's one-line message) and write nothing", async () => {
  const out = join(work, 'never');
  assert.throws(() => inspect(join(work, 'missing')), CompactError);
  await assert.rejects(prune(`${STORIES}hf`, out, {}), CompactError); // no budget
  await assert.rejects(prune(`${STORIES}hf`, out, { ratio: 0.3, calib: [join(work, 'missing.txt')] }), /missing\.txt/);
  await assert.rejects(
    evaluate(`${STORIES}hf`, { text: `${ROOT}data/tinystories/heldout_10pct.txt`, window: 4096 }),
    /longer than the model's context/,
  );
  await assert.rejects(evaluate(`${STORIES}hf`, {}), /nothing to evaluate/);
  // limit 0 gave tasks of no documents (NaN accuracy), -1 ran all but the last; NaN tokens decoded forever.
  for (const limit of [0, -1, 1.5])
    await assert.rejects(
      evaluate(`${STORIES}hf`, { tasks: ['arc_easy'], limit }),
      new RegExp(`--limit must be a positive integer, got ${limit}`),
    );
  // A JavaScript caller's bad choice or a string for a list: refused in the CLI's words (method 'wanda' was a
  // TypeError, criterion 'x' scored channels at random, calib 'FILE' was read as one-letter file names).
  for (const [options, pattern] of [
    [
      { ratio: 0.3, method: 'wanda' },
      /option 'method' argument 'wanda' is invalid\. Allowed choices are compact, vocab-only, ffn-only, shortgpt/,
    ],
    [{ ffn: 100, criterion: 'x' }, /option 'criterion' argument 'x' is invalid/],
    [{ vocab: 400, vocabMode: 'zipf' }, /option 'vocabMode' argument 'zipf' is invalid/],
    [{ ffn: 100, calib: HELDOUT_TEXT }, /calib must be a list/],
  ] as const)
    await assert.rejects(prune(`${STORIES}hf`, out, options as never), pattern);
  await assert.rejects(
    exportGguf(`${STORIES}hf`, join(work, 'never.gguf'), { type: 'q9' as never }),
    /option 'type' argument 'q9' is invalid/,
  );
  await assert.rejects(evaluate(`${STORIES}hf`, { tasks: 'arc_easy' as never }), /tasks must be a list of task names/);
  for (const maxNewTokens of [NaN, 0, -3])
    await assert.rejects(generate(`${STORIES}hf`, 'Once upon', { maxNewTokens }), /maxNewTokens must be a positive integer/);
  assert.ok(!existsSync(out));
});

test("the library's defaults are the CLI's", () => {
  const program = new Command();
  registerPrune(program, '0', []);
  registerEval(program);
  const defaultOf = (command: string, flag: string) =>
    program.commands.find((c) => c.name() === command)!.options.find((o) => o.long === flag)!.defaultValue as unknown;
  assert.deepEqual(defaultOf('prune', '--calib'), [...PRUNE_DEFAULTS.calib]);
  assert.equal(defaultOf('prune', '--samples'), String(PRUNE_DEFAULTS.samples));
  assert.equal(defaultOf('prune', '--seq-len'), String(PRUNE_DEFAULTS.seqLen));
  assert.equal(defaultOf('prune', '--method'), PRUNE_DEFAULTS.method);
  assert.equal(defaultOf('prune', '--weighting'), PRUNE_DEFAULTS.weighting);
  assert.equal(defaultOf('prune', '--criterion'), PRUNE_DEFAULTS.criterion);
  assert.equal(defaultOf('eval', '--window'), String(EVAL_DEFAULTS.window));
  assert.equal(defaultOf('eval', '--batch-size'), String(EVAL_DEFAULTS.batchSize));
  // The budget-dependent defaults: --ratio alone searches the split in both vocabulary modes, with compensation.
  const ratio = withPruneDefaults({ ratio: 0.3 });
  assert.deepEqual([ratio.auto, ratio.autoModes, ratio.compensate, ratio.vocabMode], [true, ['rank', 'frequency'], 'auto', 'rank']);
  assert.equal(withPruneDefaults({ ratio: 0.3, vocabShare: 0.5 }).auto, false);
  assert.equal(withPruneDefaults({ ratio: 0.3, method: 'shortgpt' }).auto, false);
  assert.deepEqual(withPruneDefaults({ ratio: 0.3, vocabMode: 'frequency' }).autoModes, ['frequency']);
});
