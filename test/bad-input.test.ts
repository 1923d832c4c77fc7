/** Broken checkpoints: each gives one clear line naming the file and the problem, exit 2, no stack trace. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { runCli } from './helpers/cli.js';
import { HELDOUT_TEXT, ROOT, STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-bad-'));
after(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;

/** A copy of stories260K/hf with `mutate` applied to it. */
async function brokenCopy(mutate: (dir: string) => unknown): Promise<string> {
  const dir = join(work, `case${counter++}`);
  cpSync(`${STORIES}hf`, dir, { recursive: true });
  await mutate(dir);
  return dir;
}

function rawSafetensors(file: string, header: string, data: Uint8Array = Buffer.alloc(0), declaredLength?: number): void {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength ?? Buffer.byteLength(header)));
  writeFileSync(file, Buffer.concat([length, Buffer.from(header), data]));
}

/** What the directory holds: regular files by content hash, anything else (links, FIFOs, folders) by kind; never opens a FIFO. */
function snapshot(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) hash.update(`${name} -> ${readlinkSync(path)}\n`);
    else if (stat.isDirectory()) hash.update(`${name}/ ${snapshot(path)}\n`);
    else if (stat.isFile()) hash.update(`${name} ${createHash('sha256').update(readFileSync(path)).digest('hex')}\n`);
    else hash.update(`${name} special\n`);
  }
  return hash.digest('hex');
}

/** `compact <args with DIR>` on `dir`: exit 2, one line matching `pattern`, no stack trace, the directory unchanged. */
function expectUserError(dir: string, pattern: RegExp, args = ['inspect', 'DIR']): void {
  const before = snapshot(dir);
  const r = runCli(args.map((a) => (a === 'DIR' ? dir : a)));
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(snapshot(dir), before, 'input unchanged');
}

/** config.json with `patch` applied (a key set to undefined is removed). */
function patchConfig(dir: string, patch: Record<string, unknown>): void {
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...patch }));
}

function editJson(file: string, edit: (json: any) => unknown): void {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const replaced = edit(json);
  writeFileSync(file, JSON.stringify(replaced === undefined ? json : replaced));
}

/** The bundled model's safetensors file with its header edited (offsets, metadata) and its data as given. */
function editSafetensors(file: string, edit: (header: any) => void, data?: (data: Uint8Array) => Uint8Array): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  rawSafetensors(file, JSON.stringify(header), (data ?? ((d) => d))(bytes.subarray(8 + n)));
}

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

/** A case step: `name` in the model directory removed and put back by `make` (a FIFO, a directory, a link…). */
const replaced = (name: string, make: (path: string) => unknown) => (d: string) => {
  rmSync(join(d, name));
  make(join(d, name));
};
type Case = [string, (dir: string) => unknown, RegExp];
const cases: Case[] = [
  ['missing config.json', (d) => rmSync(join(d, 'config.json')), /config\.json: cannot read \(ENOENT\)/],
  ['malformed config.json', (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "llama",'), /config\.json: not valid JSON/],
  [
    'config.json not UTF-8',
    (d) => writeFileSync(join(d, 'config.json'), Buffer.from([...Buffer.from('{"model_type": "ll'), 0xe1, ...Buffer.from('ma"}')])),
    /config\.json: not UTF-8 text \(first invalid byte at offset 18\)/,
  ],
  [
    'unsupported model_type',
    (d) =>
      writeFileSync(
        join(d, 'config.json'),
        JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), model_type: 'gpt2' }),
      ),
    /unsupported model_type "gpt2"; supported: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text/,
  ],
  [
    'config field of the wrong type',
    (d) =>
      writeFileSync(
        join(d, 'config.json'),
        JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), hidden_size: '64' }),
      ),
    /field hidden_size must be a positive integer/,
  ],
  [
    'header length past the end',
    (d) => rawSafetensors(join(d, 'model.safetensors'), '{}', Buffer.alloc(0), 1 << 20),
    /model\.safetensors: header length 1048576 is invalid/,
  ],
  [
    'header that is not JSON',
    (d) => rawSafetensors(join(d, 'model.safetensors'), '{"a": [1,'),
    /model\.safetensors: header is not valid JSON/,
  ],
  [
    'unknown dtype',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ x: { dtype: 'F13', shape: [1], data_offsets: [0, 2] } }),
        Buffer.alloc(2),
      ),
    /tensor x: unknown dtype "F13"/,
  ],
  [
    'offsets that disagree with the shape',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }),
        Buffer.alloc(8),
      ),
    /tensor x: F32\[2\] needs 8 bytes but data_offsets span 4/,
  ],
  [
    'overlapping tensors',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }),
        Buffer.alloc(12),
      ),
    /tensors a and b overlap/,
  ],
  [
    'range past the end of the file',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }),
        Buffer.alloc(8),
      ),
    /tensor a: data_offsets end 16 is past the end of the data \(8 bytes; file truncated\?\)/,
  ],
  ['truncated file', (d) => truncateSync(join(d, 'model.safetensors'), 500_000), /past the end of the data .* file truncated/],
  [
    'tensor shape that disagrees with the config',
    (d) =>
      writeFileSync(
        join(d, 'config.json'),
        JSON.stringify({ ...JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), intermediate_size: 170 }),
      ),
    /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[172,64\] but config\.json implies \[170,64\]/,
  ],
  [
    'missing tensor',
    (d) =>
      writeSafetensors(join(d, 'model.safetensors'), [
        { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [512, 64], bytes: () => new Uint8Array(512 * 64 * 4) },
      ]),
    /tensor model\.layers\.0\.input_layernorm\.weight is missing/,
  ],
  [
    'shard index pointing outside the directory',
    (d) => {
      rmSync(join(d, 'model.safetensors'));
      writeFileSync(
        join(d, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { 'model.embed_tokens.weight': '../../etc/passwd' } }),
      );
    },
    /shard "\.\.\/\.\.\/etc\/passwd" points outside the checkpoint directory/,
  ],
  [
    'shard index naming a missing file',
    (d) => {
      rmSync(join(d, 'model.safetensors'));
      writeFileSync(
        join(d, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors' } }),
      );
    },
    /shard model-00001-of-00002\.safetensors does not exist/,
  ],
  ['no weights at all', (d) => rmSync(join(d, 'model.safetensors')), /no model\.safetensors or model\.safetensors\.index\.json/],

  // Found by fuzzing (issue 11): look-ups through Object.prototype.
  ...['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((t): Case => [
    `model_type ${t}`,
    (d) => patchConfig(d, { model_type: t }),
    new RegExp(`unsupported model_type "${t}"; supported: llama`),
  ]),
  // Files that are not regular files, or lead out of the model directory.
  ['config.json a FIFO', replaced('config.json', mkfifo), /config\.json: is a FIFO, not a regular file/],
  ['config.json a directory', replaced('config.json', (p) => mkdirSync(p)), /config\.json: is a directory, not a regular file/],
  [
    'config.json a link to /dev/zero',
    replaced('config.json', (p) => symlinkSync('/dev/zero', p)),
    /config\.json: is a symbolic link leading outside the model directory/,
  ],
  [
    'config.json a link to a system file',
    replaced('config.json', (p) => symlinkSync('/etc/passwd', p)),
    /^compact: error: \S+config\.json: is a symbolic link leading outside the model directory [^:]*$/,
  ],
  [
    'model.safetensors a directory',
    replaced('model.safetensors', (p) => mkdirSync(p)),
    /model\.safetensors: is a directory, not a regular file/,
  ],
  ['model.safetensors a FIFO', replaced('model.safetensors', mkfifo), /model\.safetensors: is a FIFO, not a regular file/],
  [
    'model.safetensors a link to /dev/zero',
    replaced('model.safetensors', (p) => symlinkSync('/dev/zero', p)),
    /model\.safetensors: is a symbolic link leading outside/,
  ],
  [
    'config.json over several lines, not JSON',
    (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "llama",\n\n"x" y}'),
    /config\.json: not valid JSON \(.*\\n\\n.*\)\n$/,
  ],
  // Sizes checked before anything is allocated; values of the wrong type or range.
  [
    'num_hidden_layers 2e6',
    (d) => patchConfig(d, { num_hidden_layers: 2e6 }),
    /field num_hidden_layers is 2000000; compact reads at most 4096 layers/,
  ],
  [
    'num_hidden_layers 1e12',
    (d) => patchConfig(d, { num_hidden_layers: 1e12 }),
    /field num_hidden_layers is 1000000000000; compact reads at most 4096 layers/,
  ],
  [
    'num_hidden_layers above the layers present',
    (d) => patchConfig(d, { num_hidden_layers: 6 }),
    /tensor model\.layers\.5\.\S+ is missing/,
  ],
  [
    'vocab_size 1e9',
    (d) => patchConfig(d, { vocab_size: 1e9 }),
    /tensor model\.embed_tokens\.weight has shape \[512,64\] but config\.json implies \[1000000000,64\]/,
  ],
  [
    'max_position_embeddings a string',
    (d) => patchConfig(d, { max_position_embeddings: 'x' }),
    /field max_position_embeddings must be a positive integer, got "x"/,
  ],
  [
    'tie_word_embeddings a list',
    (d) => patchConfig(d, { tie_word_embeddings: [] }),
    /field tie_word_embeddings must be true or false, got \[\]/,
  ],
  ['rms_norm_eps 0', (d) => patchConfig(d, { rms_norm_eps: 0 }), /field rms_norm_eps must be a number > 0, got 0/],
  ['rms_norm_eps negative', (d) => patchConfig(d, { rms_norm_eps: -1e-5 }), /field rms_norm_eps must be a number > 0, got -0\.00001/],
  ['rope_theta 1e-300', (d) => patchConfig(d, { rope_theta: 1e-300 }), /rope_theta must be a number ≥ 1, got 1e-300/],
  [
    'llama3 rope factor 0',
    (d) =>
      patchConfig(d, {
        rope_scaling: { rope_type: 'llama3', factor: 0, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 512 },
      }),
    /rope factor must be a number > 0, got 0/,
  ],
  [
    'llama3 rope factor a string',
    (d) =>
      patchConfig(d, {
        rope_scaling: { rope_type: 'llama3', factor: '8', low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 512 },
      }),
    /rope factor must be a number > 0, got "8"/,
  ],
  ['rope_scaling a string', (d) => patchConfig(d, { rope_scaling: 'llama3' }), /field rope_scaling must be an object, got a string/],
  [
    'final_logit_softcapping 1e308',
    (d) => patchConfig(d, { final_logit_softcapping: 1e308 }),
    /field final_logit_softcapping must be a number > 0 and below 3\.4e38 \(f32\), got 1e\+308/,
  ],
  // Safetensors files Hugging Face's reader refuses.
  [
    'a hole between tensors',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }),
        Buffer.alloc(20),
      ),
    /model\.safetensors: 4 bytes before tensor b belong to no tensor \(a hole in the data\)/,
  ],
  [
    'data not fully covered',
    (d) =>
      rawSafetensors(
        join(d, 'model.safetensors'),
        JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }),
        Buffer.alloc(12),
      ),
    /model\.safetensors: the last 4 bytes of the file belong to no tensor/,
  ],
  [
    'header length one short (data shifted)',
    (d) =>
      editSafetensors(
        join(d, 'model.safetensors'),
        () => {},
        (data) => Buffer.concat([Buffer.from(' '), data]),
      ),
    /model\.safetensors: the last 1 bytes of the file belong to no tensor/,
  ],
  [
    'header not starting with {',
    (d) => rawSafetensors(join(d, 'model.safetensors'), '[]'),
    /model\.safetensors: header does not start with '\{'/,
  ],
  [
    '__metadata__ a list',
    (d) => editSafetensors(join(d, 'model.safetensors'), (h) => (h.__metadata__ = ['pt'])),
    /__metadata__ must be an object of strings, got a list/,
  ],
  [
    '__metadata__ with a number',
    (d) => editSafetensors(join(d, 'model.safetensors'), (h) => (h.__metadata__ = { format: 1 })),
    /__metadata__ "format" must be a string, got a number/,
  ],
  [
    '__metadata__ nested 10,000 deep',
    (d) => {
      const bytes = readFileSync(join(d, 'model.safetensors'));
      const n = Number(bytes.readBigUInt64LE(0));
      const header = bytes
        .subarray(8, 8 + n)
        .toString('utf8')
        .trim();
      const deep = `{"__metadata__":{"format":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}},${header.slice(header.indexOf('"model.'))}`;
      rawSafetensors(join(d, 'model.safetensors'), deep, bytes.subarray(8 + n));
    },
    // refused as soon as the header is read now, like any JSON nested past 256 levels
    /model\.safetensors: header JSON nested more than 256 levels deep/,
  ],
  // Shard index hygiene.
  [
    'index file null',
    (d) => (
      renameSync(join(d, 'model.safetensors'), join(d, 'model-00001-of-00001.safetensors')),
      writeFileSync(join(d, 'model.safetensors.index.json'), 'null')
    ),
    /model\.safetensors\.index\.json: expected a JSON object, got null/,
  ],
  [
    'index naming a shard in a subdirectory',
    (d) => {
      mkdirSync(join(d, 'sub'));
      renameSync(join(d, 'model.safetensors'), join(d, 'sub/model.safetensors'));
      writeFileSync(
        join(d, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'sub/model.safetensors' } }),
      );
    },
    /shard "sub\/model\.safetensors" is not a file of the checkpoint directory itself/,
  ],
];

for (const [name, mutate, pattern] of cases) {
  test(`bad checkpoint: ${name}`, async () => expectUserError(await brokenCopy(mutate), pattern));
}

// Files only `eval` reads: the tokenizer, its config, the pruning timing; and the numbers it computes.
const TEXT = join(work, 'text.txt');
writeFileSync(TEXT, 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.\n'.repeat(4));
const EVAL = ['eval', 'DIR', '--text', TEXT];
const evalCases: Case[] = [
  [
    'tokenizer.json of another model type',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.model.type = 'WordPiece')),
    /tokenizer\.json model type WordPiece is not supported/,
  ],
  [
    'tokenizer.json with an empty vocab',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void ((t.model.vocab = {}), (t.model.merges = []))),
    /tokenizer\.json BPE model has an empty vocab/,
  ],
  [
    'a merge that is null',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.model.merges[3] = null)),
    /tokenizer\.json merge #3 is null, not two tokens/,
  ],
  [
    'a merge that is a number',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.model.merges[3] = 7)),
    /tokenizer\.json merge #3 is a number, not two tokens/,
  ],
  [
    'a vocab id of 1e12',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.model.vocab['▁Once'] = 1e12)),
    /tokenizer\.json vocab entry "▁Once" has id 1000000000000; ids must be integers in \[0, 16777216\)/,
  ],
  [
    'an added token of 100,000 characters',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.added_tokens[0].content = 'x'.repeat(100_000))),
    /tokenizer\.json added_tokens\[0\] \(id 0\) is 100000 characters long; at most 65536 are read/,
  ],
  [
    'tokenizer.json over 64 MiB',
    (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.added_tokens[0].content = 'x'.repeat(65 << 20))),
    /tokenizer\.json: is \d+ bytes; compact reads at most 67108864 bytes \(64 MiB\) for this file/,
  ],
  ['tokenizer.json a FIFO', replaced('tokenizer.json', mkfifo), /tokenizer\.json: is a FIFO, not a regular file/],
  [
    'tokenizer.json a link to /dev/zero',
    replaced('tokenizer.json', (p) => symlinkSync('/dev/zero', p)),
    /tokenizer\.json: is a symbolic link leading outside the model directory/,
  ],
  [
    'tokenizer_config.json a link to /dev/urandom',
    replaced('tokenizer_config.json', (p) => symlinkSync('/dev/urandom', p)),
    /tokenizer_config\.json: is a symbolic link leading outside/,
  ],
  [
    'tokenizer_config.json null',
    (d) => writeFileSync(join(d, 'tokenizer_config.json'), 'null'),
    /tokenizer_config\.json: expected a JSON object, got null/,
  ],
  ['compact-timing.json {}', (d) => writeFileSync(join(d, 'compact-timing.json'), '{}'), /compact-timing\.json: not a compact timing file/],
  [
    'compact-timing.json with string seconds',
    (d) =>
      writeFileSync(
        join(d, 'compact-timing.json'),
        JSON.stringify({ seconds: { read: '0.1', total: '1' }, threads: 2, cpu: 'x', node: 'v20' }),
      ),
    /compact-timing\.json: not a compact timing file/,
  ],
  [
    'weights that make the forward pass NaN',
    (d) =>
      editSafetensors(
        join(d, 'model.safetensors'),
        () => {},
        (data) => {
          const out = Buffer.from(data);
          out.fill(0xff); // every F32 weight a NaN
          return out;
        },
      ),
    /the model's log-likelihood of the text is NaN \(not finite\)/,
  ],
];

const nanWeights = (d: string) =>
  editSafetensors(
    join(d, 'model.safetensors'),
    () => {},
    (data) => Buffer.from(data).fill(0xff),
  ); // every F32 weight a NaN
evalCases.push([
  // zero-shot scores of a NaN model were printed (accuracy from NaN log-likelihoods) with exit 0
  'a task scored on weights that make the forward pass NaN',
  nanWeights,
  /mc:.*: the model's log-likelihood is NaN \(not finite\)/,
]);
evalCases.push([
  // perplexity Infinity was printed with exit 0 (bits per byte 1.3e29): a flipped exponent bit in the fuzzer
  'a final norm of 1e28 (finite but absurd logits)',
  (d) =>
    editSafetensors(
      join(d, 'model.safetensors'),
      () => {},
      (data) => {
        const out = Buffer.from(data);
        const header = JSON.parse(
          readFileSync(join(`${STORIES}hf`, 'model.safetensors'))
            .subarray(8, 8 + Number(readFileSync(join(`${STORIES}hf`, 'model.safetensors')).readBigUInt64LE(0)))
            .toString(),
        );
        const [a, b] = header['model.norm.weight'].data_offsets as [number, number];
        for (let o = a; o < b; o += 4) out.writeFloatLE(1e28, o);
        return out;
      },
    ),
  /mean log-likelihood is −[\d.e+]+ nats per token, so its perplexity overflows/,
]);
evalCases.push([
  // @huggingface/tokenizers threw a TypeError from post_process (a stack trace; found by the fuzzer, case 20261203:12431)
  'a post_processor template item that is a number',
  (d) => editJson(join(d, 'tokenizer.json'), (t) => void (t.post_processor.single[1] = 1e-300)),
  /tokenizer\.json: the tokenizer failed on the text \(.*\): its normalizer, pre_tokenizer or post_processor is malformed/,
]);
const TASK_EVAL = ['eval', 'DIR', '--tasks', `mc:${ROOT}test/fixtures/tasks/mc/questions.jsonl`, '--limit', '2'];

for (const [name, mutate, pattern] of evalCases) {
  const args = name.startsWith('a task scored') ? TASK_EVAL : EVAL;
  test(`bad checkpoint (eval): ${name}`, async () => expectUserError(await brokenCopy(mutate), pattern, args));
}

test('links inside the model directory, and a Hugging Face cache snapshot (every file a link into blobs/), are read', async () => {
  const inside = await brokenCopy((d) => {
    renameSync(join(d, 'config.json'), join(d, 'real-config.json'));
    symlinkSync('real-config.json', join(d, 'config.json'));
  });
  let r = runCli(['inspect', inside]);
  assert.equal(r.code, 0, r.stderr);
  // <repo>/snapshots/<rev>/<file> -> ../../blobs/<sha256>
  const repo = join(work, 'models--x--stories');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'snapshots', 'abc123'), { recursive: true });
  for (const name of readdirSync(`${STORIES}hf`)) {
    const bytes = readFileSync(join(`${STORIES}hf`, name));
    const blob = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(repo, 'blobs', blob), bytes);
    symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', 'abc123', name));
  }
  r = runCli(['eval', join(repo, 'snapshots', 'abc123'), '--text', TEXT, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Number.isFinite(JSON.parse(r.stdout).bitsPerByte));
});

test('a shard index naming "./model-….safetensors" is read as the plain file name', async () => {
  const dir = await brokenCopy((d) => {
    renameSync(join(d, 'model.safetensors'), join(d, 'model-00001-of-00001.safetensors'));
    const header = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '-e',
          `const b=require('fs').readFileSync(${JSON.stringify(join(d, 'model-00001-of-00001.safetensors'))});process.stdout.write(b.subarray(8,8+Number(b.readBigUInt64LE(0))).toString())`,
        ],
        { encoding: 'utf8' },
      ),
    );
    const weightMap = Object.fromEntries(
      Object.keys(header)
        .filter((k) => k !== '__metadata__')
        .map((k) => [k, './model-00001-of-00001.safetensors']),
    );
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  });
  const r = runCli(['inspect', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
});

test('eval: bad flags and files are user errors', () => {
  let r = runCli(['eval', `${STORIES}hf`, '--text', join(work, 'nope.txt')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope\.txt: cannot read \(ENOENT\)/);
  // A binary or Latin-1 file was decoded into replacement characters and measured (exit 0).
  writeFileSync(join(work, 'latin1.txt'), Buffer.from([...Buffer.from('Once upon a time, caf'), 0xe9, 0x0a]));
  r = runCli(['eval', `${STORIES}hf`, '--text', join(work, 'latin1.txt')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /latin1\.txt: not UTF-8 text \(first invalid byte at offset 21\); give a plain UTF-8 text file\n$/);
  // More threads than cores: --threads 99999 ran for minutes before doing anything.
  r = runCli(['eval', `${STORIES}hf`, '--speed', '--threads', String(cpus().length + 1)]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    new RegExp(`--threads must be an integer in \\[1, ${cpus().length}\\] \\(this machine's logical CPUs\\), got ${cpus().length + 1}\n$`),
  );
  // A text without an agreement prompt: refused before any model is opened (it failed after bits per
  // byte, as a NaN agreement). The model directories do not exist, so a later check would say so instead.
  writeFileSync(join(work, 'no-prompt.txt'), 'Once\n\nupon\n');
  const nowhere = join(work, 'no-model');
  for (const args of [
    ['eval', nowhere, '--text', join(work, 'no-prompt.txt'), '--reference', nowhere],
    ['compare', nowhere, '--eval-text', join(work, 'no-prompt.txt'), '-o', join(work, 'never-compared')],
  ]) {
    r = runCli(args);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no-prompt\.txt: no paragraph to measure agreement on \(paragraphs are separated by blank lines/);
  }
  r = runCli(['eval', `${STORIES}hf`, '--text', `${STORIES}README.md`, '--window', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--window must be a positive integer, got "0"/);
  // A window past the model's context ran silently (perplexity 38.5 instead of 5.83 on stories260K).
  r = runCli(['eval', `${STORIES}hf`, '--text', `${STORIES}README.md`, '--window', '4096']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--window 4096 is longer than the model's context \(max_position_embeddings 512\)/);
  // Option-parser mistakes: one line too (they printed the whole help after the error).
  for (const args of [
    ['eval', `${STORIES}hf`, '--bogus'],
    ['export', `${STORIES}hf`, '-o', join(work, 'x.gguf'), '--type', 'q9'],
    ['bogus'],
  ]) {
    r = runCli(args);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^compact: error: .*; see --help\n$/);
  }
});

test('a short-context model is evaluated in windows of its own context, not 512 (eval default, agreement)', async () => {
  // eval's default window of 512 (and prune --eval-text / --auto, compare) ran a 128-position model past its context
  const dir = await brokenCopy((d) => patchConfig(d, { max_position_embeddings: 128 }));
  const text = join(work, 'short-context.txt');
  writeFileSync(text, readFileSync(HELDOUT_TEXT, 'utf8').slice(0, 3000));
  const r = runCli(['eval', dir, '--text', text, '--reference', `${STORIES}hf`, '--paragraphs', '2', '--continuation', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.window, 128);
  assert.ok(Number.isFinite(report.bitsPerByte) && Number.isFinite(report.agreement.kl.meanKl));
});

test('agreement metrics that are not numbers are an error, never printed', async () => {
  const { checkFiniteAgreement } = await import('../src/eval/agreement.js');
  const metrics = (meanKl: number, compared: number) => ({
    paragraphs: 1,
    greedy: { prompts: 1, continuationChars: 8, meanAgreement: 0.5, exact: 0, pairs: [] },
    kl: { referencePositions: 10, comparedPositions: compared, meanKl, top1Agreement: compared ? 0.5 : NaN, meanReferenceMassOutside: 0 },
  });
  assert.doesNotThrow(() => checkFiniteAgreement(metrics(0.1, 5)));
  assert.throws(() => checkFiniteAgreement(metrics(NaN, 5)), /agreement: mean KL is NaN \(not a number\): a model's logits are not finite/);
  assert.throws(() => checkFiniteAgreement(metrics(NaN, 0)), /no position where both tokenizations coincide/);
});

/** The pid of a process that has ended (nothing of it runs any more). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test("compare's scratch dirs: a random name with an owner file; a killed run's is swept by the next, a live run's is not", async () => {
  // they were left behind by SIGKILL for good (issue 11); naming them by pid would let a new process take one over
  const { createScratchDir } = await import('../src/util/scratch-dir.js');
  const parent = join(work, 'scratch-sweep');
  const stale = createScratchDir(parent, '.compact-study-');
  writeFileSync(join(stale, 'compact-owner.json'), JSON.stringify({ pid: deadPid(), start: null }));
  const live = createScratchDir(parent, '.compact-study-'); // owned by this process
  assert.doesNotMatch(live, new RegExp(`${process.pid}`));
  const next = createScratchDir(parent, '.compact-study-');
  assert.deepEqual(readdirSync(parent).sort(), [live, next].map((d) => d.split('/').pop()).sort());
});

test('an empty model path is named as such (it meant the current directory: "output … is inside the input ;")', () => {
  for (const args of [
    ['inspect', ''],
    ['eval', '', '--text', HELDOUT_TEXT],
    ['prune', '', '--ratio', '0.3', '-o', join(work, 'never-empty')],
    ['prune-vocab', '', '--vocab', '400', '-o', join(work, 'never-empty')],
    ['export', '', '-o', join(work, 'never-empty.gguf')],
    ['compare', '', '--eval-text', HELDOUT_TEXT, '-o', join(work, 'never-empty')],
  ]) {
    const r = runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'compact: error: the model directory path is empty\n', args[0]);
  }
});

test('export refuses an output under a file (a stack trace: EEXIST from mkdir) and an empty one (it said "output  exists")', () => {
  const file = join(work, 'a-file');
  writeFileSync(file, 'mine');
  for (const [out, pattern] of [
    [join(file, 'x.gguf'), /^compact: error: output \S*a-file\/x\.gguf: \S*a-file is not a directory\n$/],
    ['', /^compact: error: the output path is empty\n$/],
  ] as const) {
    const r = runCli(['export', `${STORIES}hf`, '-o', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(readFileSync(file, 'utf8'), 'mine');
});

test('export: a temp file left by a killed export is swept by the next one writing that file', () => {
  const out = join(work, 'sweep.gguf');
  const stale = join(work, `.sweep.gguf.compact-tmp-${deadPid()}`);
  writeFileSync(stale, 'half a GGUF');
  const r = runCli(['export', `${STORIES}hf`, '-o', out, '--vocab-only']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!readdirSync(work).some((e) => e.startsWith('.sweep.gguf.compact-')), 'stale temp file removed');
});

test('an error quoting a huge value prints a short line (a 1 MB config string was printed whole; found by the fuzzer)', async () => {
  const dir = await brokenCopy((d) => patchConfig(d, { rope_theta: 'A'.repeat(1_000_000) }));
  expectUserError(dir, /rope_theta must be a number ≥ 1, got "A{40}…" \(1000000 characters\)$/m);
  assert.ok(runCli(['inspect', dir]).stderr.length < 1000);
});

test('a safetensors header nested 100,000 levels deep is one line (quoting its dtype overflowed the stack; found by the fuzzer)', async () => {
  const dir = await brokenCopy((d) => {
    const file = join(d, 'model.safetensors');
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    rawSafetensors(
      file,
      bytes
        .subarray(8, 8 + n)
        .toString()
        .replace('"dtype":"F32"', `"dtype":${deep}`),
      bytes.subarray(8 + n),
    );
  });
  expectUserError(dir, /model\.safetensors: header JSON nested more than 256 levels deep/);
});

test('a float literal of 1e308 in a JSON file prune rewrites stays valid JSON (it was written "1e+308.0"; found by the fuzzer)', async () => {
  const { floatLiteralPaths, jsonText } = await import('../src/util/json-text.js');
  const text = '{"decoder": {"x": 1e308, "y": 3.0, "w": 2.5e-3}}';
  const out = jsonText(JSON.parse(text), floatLiteralPaths(text));
  assert.deepEqual(JSON.parse(out), JSON.parse(text));
  assert.match(out, /"x": 1e\+308,\n\s+"y": 3\.0,\n\s+"w": 0\.0025\n/);
});
