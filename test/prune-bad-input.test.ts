/** `compact prune` refusals: one clear line, exit code 2, nothing written, the input untouched. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { randomCheckpoint } from '../bench/real-shapes.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { prune } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-prune-bad-'));
after(() => rmSync(work, { recursive: true, force: true }));
const HELDOUT = `${ROOT}data/tinystories/heldout_10pct.txt`;
/** A calibration too small to mean anything, enough for a run that must get through. */
const QUICK_CALIB = ['--calib', HELDOUT, '--samples', '2', '--seq-len', '64'];
let counter = 0;

function expectRefusal(args: string[], pattern: RegExp): void {
  const out = join(work, `out${counter++}`);
  const r = runCli(['prune', ...args.map((a) => (a === 'OUT' ? out : a))]);
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.ok(!existsSync(out), 'no output written');
  assert.deepEqual(
    readdirSync(work).filter((f) => f.includes('compact-tmp')),
    [],
    'no temp dir left',
  );
}

const stories = `${STORIES}hf`;
const cases: [string, string[], RegExp][] = [
  ['ratio outside (0, 1)', [stories, '-o', 'OUT', '--ratio', '1.5'], /--ratio must be in \(0, 1\), got 1\.5/],
  [
    'vocabulary share the vocabulary cannot give',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--vocab-share', '0.9'],
    /can give at most 3\.7 % \(V′ ≥ 361\); lower --vocab-share to ≤ 0\.12/,
  ],
  [
    'ratio the FFN cannot reach',
    [stories, '-o', 'OUT', '--ratio', '0.9', '--vocab-share', '0'],
    /asks the FFN for 90\.0 %, but it can give at most 63\.1 %.*reachable with this split: ratio ≤ 0\.631/,
  ],
  [
    'V′ below the always-kept set',
    [stories, '-o', 'OUT', '--vocab', '100'],
    /--vocab must be an integer in \[361, 512\] \(361 tokens are always kept\), got 100/,
  ],
  ['I′ out of range', [stories, '-o', 'OUT', '--ffn', '500'], /--ffn must be an integer in \[1, 172\], got 500/],
  // Silently ignored beside --vocab/--ffn; a --round-to past I made the reachable ratio negative.
  [
    '--vocab-share with --vocab',
    [stories, '-o', 'OUT', '--vocab', '400', '--vocab-share', '0.5'],
    /--vocab-share splits the budget of --ratio r/,
  ],
  [
    '--round-to with --ffn',
    [stories, '-o', 'OUT', '--ffn', '100', '--round-to', '8'],
    /--round-to rounds the I′ that --ratio r solves for/,
  ],
  [
    '--round-to past I',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--round-to', '99999'],
    /--round-to must be at most the FFN width I = 172, got 99999/,
  ],
  [
    'the default share named as such',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--round-to', '172', '--no-auto'],
    /--ratio 0\.3 with the default vocabulary share 0\.\d{3} asks the FFN for/,
  ],
  ['no budget', [stories, '-o', 'OUT'], /give a budget: --ratio r, or --vocab V′ and\/or --ffn I′/],
  [
    'calibration text too short',
    [stories, '-o', 'OUT', '--ffn', '100', '--calib', `${STORIES}README.md`],
    /README\.md: the calibration text has \d+ tokens in \d+ blocks, giving \d+ windows of 512; 16 samples × 512 tokens = 8192 are needed/,
  ],
  // It said "calibration text has 0 tokens …" about the vocabulary corpus.
  [
    '--vocab-corpus empty',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--vocab-corpus', 'EMPTY0'],
    /empty0\.txt: the text has no tokens to count/,
  ],
  [
    '--search-text with a fixed split',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--vocab-share', '0.1', '--search-text', HELDOUT],
    /--search-text is what the split search measures, and this prune has a fixed split/,
  ],
  ['--search-text missing', [stories, '-o', 'OUT', '--ratio', '0.3', '--search-text', 'MISSING'], /missing\.txt/],
  [
    '--search-text inside the calibration text',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--calib', HELDOUT, '--search-text', HELDOUT],
    /heldout_10pct\.txt: --search-text is part of the calibration text, so the search would measure text the statistics were counted on/,
  ],
  ['--search-text empty', [stories, '-o', 'OUT', '--ratio', '0.3', '--search-text', 'EMPTY'], /empty\.txt: --search-text is empty/],
  ['output inside the input', [stories, '-o', `${stories}/pruned`, '--ffn', '100'], /output .* is inside the input/],
  // Under a file: a stack trace (ENOTDIR); an existing file with --force: replaced by a directory.
  ['output under a file', [stories, '-o', 'KEEP/pruned', '--ffn', '100'], /output \S*keep\.txt\/pruned: \S*keep\.txt is not a directory/],
  ['output an existing file', [stories, '-o', 'KEEP', '--ffn', '100', '--force'], /output \S*keep\.txt exists and is not a directory/],
  ['--scores-out under a file', [stories, '-o', 'OUT', '--ffn', '100', '--scores-out', 'KEEP/s.json'], /keep\.txt is not a directory/],
  // Not UTF-8 (a Latin-1 "é" after a literal U+FFFD): it was decoded into replacement characters and calibrated on.
  [
    'calibration text not UTF-8',
    [stories, '-o', 'OUT', '--ffn', '100', '--calib', 'LATIN1'],
    /latin1\.txt: not UTF-8 text \(first invalid byte at offset 19\)/,
  ],
  [
    '--search-text not UTF-8',
    [stories, '-o', 'OUT', '--ratio', '0.3', '--search-text', 'LATIN1'],
    /latin1\.txt: not UTF-8 text \(first invalid byte at offset 19\)/,
  ],
  [
    'keep-list naming unknown tokens',
    [stories, '-o', 'OUT', '--vocab', '400', '--keep', 'KEEP'],
    /keep-list entries not in the tokenizer: "zzzunknown"/,
  ],
];

for (const [name, args, pattern] of cases) {
  test(`prune refuses: ${name}`, () => {
    writeFileSync(join(work, 'keep.txt'), 'zzzunknown\n▁Once\n');
    writeFileSync(join(work, 'empty.txt'), '\n \n');
    writeFileSync(join(work, 'empty0.txt'), '');
    writeFileSync(
      join(work, 'latin1.txt'),
      Buffer.concat([Buffer.from('hello \uFFFD world caf'), Buffer.from([0xe9]), Buffer.from(' ok\n')]),
    );
    const files: Record<string, string> = {
      KEEP: 'keep.txt',
      EMPTY: 'empty.txt',
      EMPTY0: 'empty0.txt',
      MISSING: 'missing.txt',
      LATIN1: 'latin1.txt',
    };
    // NAME or NAME/rest: the file, or a path under it.
    expectRefusal(
      args.map((a) => a.replace(/^[A-Z0-9]+(?=\/|$)/, (name) => (name in files ? join(work, files[name]) : name))),
      pattern,
    );
    assert.equal(readFileSync(join(work, 'keep.txt'), 'utf8'), 'zzzunknown\n▁Once\n', 'a file named as the output is kept');
  });
}

test('prune refuses, before calibrating: an existing output directory without --force (it calibrated, wrote --scores-out, then refused)', () => {
  const out = join(work, 'exists');
  cpSync(`${STORIES}hf-qwen2`, out, { recursive: true });
  const before = readFileSync(join(out, 'model.safetensors'));
  const scores = join(work, 'exists-scores.json');
  // --calib names a missing file: the refusal must come before any calibration text is read.
  const r = runCli(['prune', stories, '-o', out, '--ffn', '100', '--calib', join(work, 'missing.txt'), '--scores-out', scores]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^compact: error: output \S*exists already exists; pass --force to replace it\n$/);
  assert.deepEqual(readFileSync(join(out, 'model.safetensors')), before);
  assert.ok(!existsSync(scores), 'no scores file written');
});

test('prune refuses, before calibrating: an existing --scores-out file without --force (a shard run or not); --force replaces it', async () => {
  const scores = join(work, 'existing-scores.json');
  writeFileSync(scores, 'keep me');
  // --calib names a missing file: the refusal must come before any calibration text is read.
  const missing = ['--calib', join(work, 'missing.txt')];
  const refused = /^compact: error: output \S*existing-scores\.json already exists; pass --force to replace it\n$/;
  expectRefusal([stories, '-o', 'OUT', '--ffn', '100', ...missing, '--scores-out', scores], refused);
  expectRefusal([stories, '--ffn', '100', '--no-compensate', ...missing, '--calib-shard', '1/2', '--scores-out', scores], refused);
  // The library, as the CLI.
  await assert.rejects(
    prune(stories, join(work, 'never'), { ffn: 100, calib: [missing[1]], scoresOut: scores }),
    /existing-scores\.json already exists; pass --force/,
  );
  assert.equal(readFileSync(scores, 'utf8'), 'keep me');
  const out = join(work, 'scores-forced');
  const r = runCli(['prune', stories, '-o', out, '--ffn', '100', ...QUICK_CALIB, '--scores-out', scores, '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(scores, 'utf8')).format, 'compact-scores/2');
});

test('the library refuses the numbers the CLI parses, before reading anything (NaN damping failed after the calibration pass; threads 1.5 was a RangeError)', async () => {
  const out = join(work, 'never-numbers');
  // --calib names a missing file: the refusal must come first.
  const base = { ratio: 0.3, calib: [join(work, 'missing.txt')] };
  for (const [options, pattern] of [
    [{ damp: NaN }, /--damp must be > 0, got NaN/],
    [{ samples: 0 }, /--samples must be a positive integer, got 0/],
    [{ seqLen: -1 }, /--seq-len must be a positive integer, got -1/],
    [{ seed: 0.5 }, /--seed must be an integer in \[-2\^31, 2\^32\), got 0\.5/],
    [{ threads: 1.5 }, /--threads must be an integer in \[1, \d+\] \(this machine's logical CPUs\), got 1\.5/],
  ] as const) {
    await assert.rejects(prune(stories, out, { ...base, ...options }), pattern);
    assert.ok(!existsSync(out), 'nothing written');
  }
});

test('prune refuses: a scores file of another model', () => {
  const scores = join(work, 'qwen2-scores.json');
  const out = join(work, 'scored');
  const ok = runCli(['prune', `${STORIES}hf-qwen2`, '-o', out, '--ffn', '100', ...QUICK_CALIB, '--scores-out', scores]);
  assert.equal(ok.code, 0, ok.stderr);
  expectRefusal(
    [stories, '-o', 'OUT', '--ffn', '90', '--scores-in', scores],
    /scores were computed on another checkpoint \(fingerprint mismatch\)/,
  );
  expectRefusal(
    [`${ROOT}test/fixtures/families/llama3-untied`, '-o', 'OUT', '--ffn', '16', '--scores-in', scores],
    /scores are for 5 layers × 172 channels, the model has 2 × 48/,
  );
});

test("prune refuses, before calibrating: a tokenizer.model that is not SentencePiece, or not tokenizer.json's vocabulary", () => {
  const model = join(work, 'spm-model');
  cpSync(stories, model, { recursive: true });
  // --calib names a missing file: the refusal must come before any calibration text is read.
  const args = [model, '-o', 'OUT', '--vocab', '400', '--ffn', '100', '--calib', join(work, 'missing.txt')];
  writeFileSync(join(model, 'tokenizer.model'), 'IQ== 0\nIg== 1\nIw== 2\n'); // a tiktoken file under that name
  expectRefusal(args, /^compact: error: \S*spm-model\/tokenizer\.model: not a SentencePiece model \(/);
  writeFileSync(join(model, 'tokenizer.model'), '');
  expectRefusal(args, /spm-model\/tokenizer\.model: not a SentencePiece model \(no pieces\)/);
  // tok512.model with piece 260 "he" spelled "hx": valid SentencePiece, another vocabulary.
  const spm = readFileSync(`${ROOT}test/fixtures/vocab/stories260K/tokenizer.model`);
  const at = spm.indexOf(Buffer.from([0x0a, 0x02, 0x68, 0x65]));
  assert.ok(at > 0 && spm.indexOf(Buffer.from([0x0a, 0x02, 0x68, 0x65]), at + 1) === -1);
  spm[at + 3] = 0x78;
  writeFileSync(join(model, 'tokenizer.model'), spm);
  expectRefusal(
    args,
    /spm-model\/tokenizer\.model piece 260 is "hx" but tokenizer\.json id 260 is "he"; the two files describe different vocabularies, so \S+ cannot be rewritten for the pruned ids/,
  );
  rmSync(join(model, 'tokenizer.model'));
  writeFileSync(join(model, 'merges.txt'), '#version: 0.2\n▁ t\nh e\n');
  expectRefusal(args, /spm-model\/merges\.txt has 2 merges but tokenizer\.json 165/);
});

test('an interrupted prune leaves no output directory and the input untouched', async () => {
  const model = await randomCheckpoint(work, 'mid-size', 3, {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: 32000,
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    tie_word_embeddings: false,
  });
  const hashBefore = createHash('sha256')
    .update(readFileSync(join(model, 'model.safetensors')))
    .digest('hex');
  const out = join(work, 'interrupted');
  const temps = () => readdirSync(work).filter((f) => f.startsWith('.interrupted.compact-tmp'));
  // The signal is handled between tensors; on a loaded machine the writer may reach its end first.
  // That race is retried (its output must then be complete), up to 5 times.
  for (let attempt = 0; attempt < 5; attempt++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', `${ROOT}test/helpers/cli-entry.ts`, 'prune', model, '-o', out, '--ffn', '512', '--criterion', 'magnitude'],
      { cwd: ROOT },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait until the writer has started (its temp dir exists), then interrupt it.
    let sawTemp = false;
    while (child.exitCode == null && child.signalCode == null) {
      if (temps().length > 0) {
        sawTemp = true;
        child.kill('SIGTERM');
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const code = await exited;
    if (code === 143) {
      assert.ok(sawTemp);
      assert.ok(!existsSync(out), 'no output directory');
      assert.deepEqual(
        readdirSync(work).filter((f) => f.includes('compact-tmp')),
        [],
        'temp dir removed',
      );
      assert.equal(
        createHash('sha256')
          .update(readFileSync(join(model, 'model.safetensors')))
          .digest('hex'),
        hashBefore,
        'input untouched',
      );
      return;
    }
    // Lost the race: the prune finished (or was killed just after its rename); the output is whole.
    assert.ok(
      existsSync(join(out, 'compact.json')),
      `exit ${code}: a prune that was not interrupted while writing leaves a complete output`,
    );
    assert.deepEqual(temps(), []);
    rmSync(out, { recursive: true, force: true });
  }
  assert.fail('the prune was never interrupted while writing in 5 attempts');
});

/** A copy of the bundled model with `mutate` applied. */
function modelCopy(name: string, mutate: (dir: string) => void, base = stories): string {
  const dir = join(work, name);
  cpSync(base, dir, { recursive: true });
  mutate(dir);
  return dir;
}

const editJson = (file: string, edit: (json: any) => void): void => {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  edit(json);
  writeFileSync(file, JSON.stringify(json));
};

test('prune refuses, before calibrating: tokenizer files that are null, merges that are not two tokens, a WordPiece model, an empty vocab', () => {
  // --calib names a missing file: each refusal must come before any calibration text is read.
  const args = (dir: string) => [dir, '-o', 'OUT', '--vocab', '400', '--ffn', '100', '--calib', join(work, 'missing.txt')];
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['tc-null', (d) => writeFileSync(join(d, 'tokenizer_config.json'), 'null'), /tokenizer_config\.json: expected a JSON object, got null/],
    [
      'merge-null',
      (d) => editJson(join(d, 'tokenizer.json'), (t) => (t.model.merges[3] = null)),
      /tokenizer\.json merge #3 is null, not two tokens separated by one space/,
    ],
    ['merge-number', (d) => editJson(join(d, 'tokenizer.json'), (t) => (t.model.merges[3] = 7)), /tokenizer\.json merge #3 is a number/],
    [
      'wordpiece',
      (d) => editJson(join(d, 'tokenizer.json'), (t) => (t.model.type = 'WordPiece')),
      /tokenizer\.json model type WordPiece is not supported/,
    ],
    [
      'empty-vocab',
      (d) => editJson(join(d, 'tokenizer.json'), (t) => ((t.model.vocab = {}), (t.model.merges = []))),
      /tokenizer\.json BPE model has an empty vocab/,
    ],
  ];
  for (const [name, mutate, pattern] of cases) {
    const dir = modelCopy(name, mutate);
    const before = createHash('sha256')
      .update(readFileSync(join(dir, 'tokenizer.json')))
      .update(readFileSync(join(dir, 'tokenizer_config.json')))
      .digest('hex');
    expectRefusal(args(dir), pattern);
    assert.equal(
      createHash('sha256')
        .update(readFileSync(join(dir, 'tokenizer.json')))
        .update(readFileSync(join(dir, 'tokenizer_config.json')))
        .digest('hex'),
      before,
      'input unchanged',
    );
  }
});

test('prune of a shard index naming "./model-….safetensors" writes the pruned shards (it copied the unpruned shard over them and refused its own output)', () => {
  const source = `${ROOT}test/fixtures/families/llama-sharded`;
  const dotted = join(work, 'dotted-index');
  cpSync(source, dotted, { recursive: true });
  editJson(join(dotted, 'model.safetensors.index.json'), (index) => {
    index.weight_map = Object.fromEntries(Object.entries(index.weight_map as Record<string, string>).map(([k, v]) => [k, `./${v}`]));
  });
  const outs = [join(work, 'dotted-out'), join(work, 'plain-out')];
  for (const [input, out] of [
    [dotted, outs[0]],
    [source, outs[1]],
  ]) {
    const r = runCli(['prune', input, '-o', out, '--ffn', '16', '--criterion', 'magnitude']);
    assert.equal(r.code, 0, r.stderr);
  }
  const shards = readdirSync(outs[1]).filter((f) => f.endsWith('.safetensors'));
  assert.equal(shards.length, 3);
  for (const shard of shards) assert.deepEqual(readFileSync(join(outs[0], shard)), readFileSync(join(outs[1], shard)), shard);
  assert.deepEqual(
    readdirSync(outs[0]).filter((f) => f.endsWith('.safetensors')),
    shards,
  );
  assert.equal(runCli(['inspect', outs[0]]).code, 0);
});

test('prune of a single indexed shard (model-00001-of-00001 + index) writes its index too (the output had the shard and no index, so nothing could open it)', () => {
  const dir = join(work, 'one-indexed-shard');
  cpSync(stories, dir, { recursive: true });
  renameSync(join(dir, 'model.safetensors'), join(dir, 'model-00001-of-00001.safetensors'));
  const names = [...openCheckpoint(stories).tensors.keys()];
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map((n) => [n, 'model-00001-of-00001.safetensors'])) }),
  );
  const out = join(work, 'one-indexed-shard-out');
  const r = runCli(['prune', dir, '-o', out, '--ffn', '100', '--criterion', 'magnitude']);
  assert.equal(r.code, 0, r.stderr);
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
  assert.deepEqual(new Set(Object.values(index.weight_map)), new Set(['model-00001-of-00001.safetensors']));
  assert.equal(runCli(['eval', out, '--text', `${STORIES}README.md`]).code, 0);
});

test('prune never copies a link leading out of the model directory, and reads none', () => {
  const dir = modelCopy('outside-links', (d) => symlinkSync('/etc/hostname', join(d, 'notes.txt')));
  const out = join(work, 'outside-links-out');
  const r = runCli(['prune', dir, '-o', out, '--ffn', '100', '--criterion', 'magnitude', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(join(out, 'notes.txt')));
  assert.deepEqual(JSON.parse(r.stdout).leftOut, [{ file: 'notes.txt', reason: 'symbolic link' }]);
  const linked = modelCopy('outside-tokenizer', (d) => {
    rmSync(join(d, 'tokenizer_config.json'));
    symlinkSync('/dev/urandom', join(d, 'tokenizer_config.json'));
  });
  expectRefusal(
    [linked, '-o', 'OUT', '--ffn', '100', '--criterion', 'magnitude'],
    /tokenizer_config\.json: is a symbolic link leading outside the model directory/,
  );
});

test('what killed runs left beside the output is swept by the next run; an output a killed --force moved aside is put back', () => {
  const parent = join(work, 'sweep');
  const out = join(parent, 'out');
  const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid names no live process
  const stale = [`.out.compact-tmp-${dead}`, `.out.compact-auto-${dead}-2`, `..out.compact-auto-${dead}-0.compact-tmp-${dead}`];
  const live = `.out.compact-tmp-${process.pid}`; // a run still going: never touched
  for (const d of [...stale, live, `.out.compact-old-${dead}`]) cpSync(`${STORIES}hf`, join(parent, d), { recursive: true });
  writeFileSync(join(parent, `.out.compact-old-${dead}`, 'marker'), 'the previous output');
  const r = runCli(['prune', stories, '-o', out, '--ffn', '100', '--criterion', 'magnitude']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /already exists; pass --force to replace it/);
  assert.equal(readFileSync(join(out, 'marker'), 'utf8'), 'the previous output', 'the old output is back');
  assert.deepEqual(readdirSync(parent).sort(), [live, 'out']);
  const forced = runCli(['prune', stories, '-o', out, '--ffn', '100', '--criterion', 'magnitude', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(existsSync(join(out, 'compact.json')) && !existsSync(join(out, 'marker')));
  assert.deepEqual(readdirSync(parent).sort(), [live, 'out']);
});

test('Ctrl-C during the --auto search leaves no candidate checkpoint and says so on one line', async () => {
  const parent = join(work, 'auto-interrupt');
  mkdirSync(parent);
  const out = join(parent, 'out');
  for (let attempt = 0; attempt < 5; attempt++) {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        `${ROOT}test/helpers/cli-entry.ts`,
        'prune',
        stories,
        '-o',
        out,
        '--ratio',
        '0.3',
        '--auto',
        '--samples',
        '4',
        '--seq-len',
        '128',
      ],
      { cwd: ROOT },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let sent = false;
    while (child.exitCode == null && child.signalCode == null) {
      if (readdirSync(parent).some((f) => f.includes('.compact-auto-'))) {
        child.kill('SIGINT');
        sent = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const code = await exited;
    if (sent && code === 130) {
      assert.deepEqual(readdirSync(parent), [], 'no candidate, temp dir or output left');
      assert.match(stderr, /^compact: interrupted \(SIGINT\); nothing was written\n$/m);
      return;
    }
    rmSync(out, { recursive: true, force: true });
  }
  assert.fail('the --auto search was never interrupted in 5 attempts');
});

test('prune refuses a model whose calibration forward pass is NaN or infinite (it scored channels from NaN and wrote a checkpoint; found by the fuzzer)', () => {
  const dir = modelCopy('nan-gate', (d) => {
    // 16 values of layer 1's gate_proj set to NaN: the raw safetensors file, edited in place
    const file = join(d, 'model.safetensors');
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    const [start] = header['model.layers.1.mlp.gate_proj.weight'].data_offsets as [number, number];
    for (let i = 0; i < 16; i++) bytes.writeFloatLE(NaN, 8 + n + start + 4 * 37 * i);
    writeFileSync(file, bytes);
  });
  const calib = join(work, 'nan-calib.txt');
  writeFileSync(calib, readFileSync(HELDOUT, 'utf8').slice(0, 6000));
  expectRefusal(
    [dir, '-o', 'OUT', '--ratio', '0.3', '--vocab-share', '0.1', '--samples', '2', '--seq-len', '64', '--calib', calib],
    /calibration: the model's forward pass produces NaN or infinity \(layer 1\)/,
  );
});

test('prune refuses a model whose final norm is broken (the layer statistics stay finite, so it wrote an equally broken checkpoint; found by the fuzzer)', () => {
  const dir = modelCopy('huge-norm', (d) => {
    // one weight of the final norm set to -3e38: every logit is then ±1e38-scale, the loss absurd
    const file = join(d, 'model.safetensors');
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    const [start] = header['model.norm.weight'].data_offsets as [number, number];
    bytes.writeFloatLE(-3e38, 8 + n + start + 4 * 7);
    writeFileSync(file, bytes);
  });
  const calib = join(work, 'norm-calib.txt');
  writeFileSync(calib, readFileSync(HELDOUT, 'utf8').slice(0, 6000));
  expectRefusal(
    [dir, '-o', 'OUT', '--ffn', '128', '--samples', '2', '--seq-len', '64', '--calib', calib],
    /calibration: the model's next-token loss on the calibration text is (NaN|Infinity|[0-9.]+e\+\d+ nats per token): its final norm, LM head or config\.json is broken/,
  );
});

test('prune refuses a checkpoint holding an infinite weight where calibration never looks (an embedding row of an untied model): it copied it into the output (found by the fuzzer)', () => {
  // untied: with a tied head every embedding row takes part in the calibration loss, which refuses it earlier
  const dir = modelCopy(
    'inf-embedding',
    (d) => {
      const file = join(d, 'model.safetensors');
      const bytes = readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
      const [start] = header['model.embed_tokens.weight'].data_offsets as [number, number];
      bytes.writeFloatLE(-Infinity, 8 + n + start + 4 * (64 * 300 + 5)); // row 300: a token the calibration text hardly uses
      writeFileSync(file, bytes);
    },
    `${STORIES}hf-untied`,
  );
  const calib = join(work, 'inf-calib.txt');
  writeFileSync(calib, readFileSync(HELDOUT, 'utf8').slice(0, 6000));
  expectRefusal(
    [dir, '-o', 'OUT', '--ffn', '128', '--samples', '2', '--seq-len', '64', '--calib', calib, '--no-compensate'],
    /model\.safetensors: tensor model\.embed_tokens\.weight holds NaN or infinite values; the checkpoint is corrupt/,
  );
});
