/**
 * One-mutation checkpoint directories: each kind takes a fresh copy of stories260K/hf and breaks
 * (or, sometimes, legitimately changes) exactly one thing in it, driven only by the case's Rng.
 * A mutation returns a one-line description of what it did (printed on replay).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { Rng } from './rng.js';
import { readRaw, splitShards, tensorNames, writeRaw } from './safetensors-raw.js';

export interface MutationContext {
  /** The model directory (a copy of stories260K/hf) to break. */
  dir: string;
  /** A directory beside it: targets of links that lead out of the model directory. */
  outside: string;
  rng: Rng;
}

export interface Mutation {
  kind: string;
  weight: number;
  apply: (c: MutationContext) => string;
}

const FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
];
const WEIGHTS = 'model.safetensors';
/** Extra names a loader or `prune` might pick up (slow tokenizer files, weights, notes copied to the output). */
const EXTRA_NAMES = [
  'notes.txt',
  'README.md',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'model-extra.safetensors',
  'pytorch_model.bin',
  'chat_template.jinja',
  'model.safetensors.index.json',
];

// ── JSON values as raw text, including what JSON.parse cannot hold exactly or refuses ──
function hugeString(rng: Rng): string {
  const n = rng.weighted([
    [10_000, 6],
    [1_000_000, 3],
    [20_000_000, 1],
  ] as const);
  return `"${'A'.repeat(n)}"`;
}
function deep(rng: Rng): string {
  const d = rng.pick([300, 10_000, 100_000]);
  return rng.next() < 0.5 ? `${'['.repeat(d)}${']'.repeat(d)}` : `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
}
const SCALARS = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '-1',
  '1',
  '2',
  '3',
  '0.5',
  '-0.5',
  '1.5',
  '1e-300',
  '5e-324',
  '1e308',
  '-1e308',
  '1e400',
  '1e12',
  '2147483648',
  '4294967297',
  '9007199254740993',
  '10000000',
  '2000000',
  '"x"',
  '""',
  '"1"',
  '"NaN"',
  '"__proto__"',
  '"constructor"',
  '"toString"',
  '[]',
  '{}',
  '[1,2]',
  '[null]',
  '{"a":1}',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"x":1}}}',
];
/** Raw JSON text of a value (sometimes not JSON at all: NaN, a huge string, deep nesting). */
export function rawValue(rng: Rng): string {
  return rng.weighted<() => string>([
    [() => rng.pick(SCALARS), 20],
    [() => rng.pick(['NaN', 'Infinity', '-Infinity', 'undefined', "'x'"]), 1],
    [() => hugeString(rng), 1],
    [() => deep(rng), 1],
  ] as const)();
}

const HOLE = '\u0000FUZZ-HOLE\u0000';
/** JSON text of `value` with the string HOLE (wherever it was put) replaced by `raw`. */
function withRaw(value: unknown, raw: string): string {
  return JSON.stringify(value, null, 1).replace(JSON.stringify(HOLE), () => raw);
}

/** Every path into a JSON tree (at most `max`, sampled evenly), for picking a random node. */
function paths(value: unknown, max = 5000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (out.length >= max * 4) return;
    if (p.length) out.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], [...p, k]);
  };
  walk(value, []);
  return out;
}

function parentOf(root: any, path: (string | number)[]): any {
  return path.slice(0, -1).reduce((node, k) => node[k], root);
}

/** Edits a JSON file: set a random node (or a named field) to a raw value, delete it, or add a key. */
function editJsonFile(file: string, rng: Rng, fields: string[] = []): string {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const all = paths(json);
  const op = rng.weighted([
    ['set', 6],
    ['delete', 2],
    ['add', 2],
    ['field', fields.length ? 4 : 0],
    ['proto-key', 1],
  ] as const);
  const raw = rawValue(rng);
  let what: string;
  if (op === 'set' || op === 'delete') {
    const path = rng.pick(all);
    const parent = parentOf(json, path);
    const key = path[path.length - 1];
    if (op === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      writeFileSync(file, JSON.stringify(json, null, 1));
      return `delete ${path.join('.')}`;
    }
    parent[key] = HOLE;
    what = `set ${path.join('.')}`;
  } else {
    const objects = [[] as (string | number)[], ...all].filter((p) => {
      const v = p.length ? p.reduce((n: any, k) => n[k], json) : json;
      return v && typeof v === 'object' && !Array.isArray(v);
    });
    const path = op === 'add' ? rng.pick(objects) : [];
    const key =
      op === 'field'
        ? rng.pick(fields)
        : op === 'proto-key'
          ? rng.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])
          : `fuzz_${rng.int(0, 99)}`;
    const node = path.length ? path.reduce((n: any, k) => n[k], json) : json;
    if (key === '__proto__') {
      // JSON.stringify cannot write an own "__proto__" key: splice it into the text.
      const text = withRaw(json, 'null');
      const at = path.length ? null : text.indexOf('{') + 1;
      writeFileSync(file, at == null ? text : `${text.slice(0, at)}"__proto__":${raw},${text.slice(at)}`);
      return `add top-level "__proto__": ${short(raw)}`;
    }
    node[key] = HOLE;
    what = `${op} ${[...path, key].join('.')}`;
  }
  writeFileSync(file, withRaw(json, raw));
  return `${what} = ${short(raw)}`;
}

function short(raw: string): string {
  return raw.length > 40 ? `${raw.slice(0, 20)}…(${raw.length} chars)` : raw;
}

/** Replaces a whole JSON file by something that is not the object it should be. */
function replaceJsonText(file: string, rng: Rng): string {
  const text = readFileSync(file, 'utf8');
  const choice = rng.weighted<() => [string, string]>([
    [() => [rawValue(rng), 'a raw value'], 4],
    [() => [text.slice(0, rng.int(0, text.length - 1)), 'truncated'], 3],
    [() => [`\ufeff${text}`, 'with a BOM'], 1],
    [() => [`${text}\n}{garbage`, 'trailing garbage'], 1],
    [() => [text.replace(/\n\}\s*$/, ',\n}'), 'trailing comma'], 1],
    [() => [Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('latin1') + text, 'invalid UTF-8 prefix'], 1],
    [() => ['', 'empty'], 1],
  ] as const)();
  writeFileSync(file, choice[1] === 'invalid UTF-8 prefix' ? Buffer.from(choice[0], 'latin1') : choice[0]);
  return `${basename(file)} replaced: ${choice[1]} ${choice[1] === 'a raw value' ? short(choice[0]) : ''}`.trim();
}

// ── config.json ──
const CONFIG_FIELDS = [
  'model_type',
  'architectures',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'tie_word_embeddings',
  'attention_bias',
  'mlp_bias',
  'hidden_act',
  'hidden_activation',
  'torch_dtype',
  'dtype',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'sliding_window',
  'use_sliding_window',
  'max_window_layers',
  'sliding_window_pattern',
  'layer_types',
  'final_logit_softcapping',
  'attn_logit_softcapping',
  'query_pre_attn_scalar',
  'rope_local_base_freq',
  'text_config',
  'rope_parameters',
  'partial_rotary_factor',
  'transformers_version',
];
const MODEL_TYPES = [
  '"constructor"',
  '"toString"',
  '"__proto__"',
  '"hasOwnProperty"',
  '"valueOf"',
  '"llama"',
  '"mistral"',
  '"qwen2"',
  '"qwen3"',
  '"gemma"',
  '"gemma2"',
  '"gemma3_text"',
  '"gemma3"',
  '"phi3"',
  '"LLAMA"',
  '""',
];
const ROPE_SCALINGS = [
  '{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":256}',
  '{"rope_type":"llama3","factor":0,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":256}',
  '{"rope_type":"llama3","factor":"x","low_freq_factor":1,"high_freq_factor":1,"original_max_position_embeddings":256}',
  '{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":4,"original_max_position_embeddings":0}',
  '{"type":"linear","factor":2}',
  '{"type":"linear","factor":-1}',
  '{"rope_type":"linear","factor":1e-300}',
  '{"rope_type":"yarn","factor":4}',
  '{"rope_type":"dynamic","factor":2}',
  '{"rope_type":"default"}',
  '{"rope_type":"__proto__"}',
  '{"rope_type":"constructor","factor":2}',
  '{}',
  '[]',
  '"llama3"',
];
function mutateConfig(c: MutationContext): string {
  const file = join(c.dir, 'config.json');
  const op = c.rng.weighted([
    ['edit', 10],
    ['model_type', 2],
    ['rope_scaling', 2],
    ['sizes', 3],
    ['replace', 2],
  ] as const);
  if (op === 'edit') return `config.json: ${editJsonFile(file, c.rng, CONFIG_FIELDS)}`;
  if (op === 'replace') return replaceJsonText(file, c.rng);
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const [field, raw] =
    op === 'model_type'
      ? ['model_type', c.rng.pick(MODEL_TYPES)]
      : op === 'rope_scaling'
        ? ['rope_scaling', c.rng.pick(ROPE_SCALINGS)]
        : [
            c.rng.pick([
              'num_hidden_layers',
              'hidden_size',
              'intermediate_size',
              'vocab_size',
              'num_attention_heads',
              'num_key_value_heads',
              'head_dim',
              'max_position_embeddings',
            ]),
            c.rng.pick([
              '0',
              '1',
              '4',
              '6',
              '7',
              '16',
              '63',
              '65',
              '128',
              '171',
              '173',
              '511',
              '513',
              '1024',
              '2000000',
              '1e9',
              '1e12',
              '1e18',
              '-5',
              '8.5',
            ]),
          ];
  json[field] = HOLE;
  writeFileSync(file, withRaw(json, raw));
  return `config.json: ${field} = ${raw}`;
}

// ── tokenizer files ──
const TOKENIZER_MODEL_TYPES = ['"WordPiece"', '"Unigram"', '"WordLevel"', '"bpe"', '"BPE "', '"__proto__"', '"constructor"', 'null', '7'];
function mutateTokenizer(c: MutationContext): string {
  const file = join(c.dir, 'tokenizer.json');
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const op = c.rng.weighted([
    ['edit', 8],
    ['model-type', 2],
    ['vocab', 3],
    ['merges', 3],
    ['added', 3],
    ['component', 2],
    ['replace', 1],
  ] as const);
  if (op === 'edit') return `tokenizer.json: ${editJsonFile(file, c.rng)}`;
  if (op === 'replace') return replaceJsonText(file, c.rng);
  let what: string;
  let raw = 'null';
  const vocab = json.model.vocab as Record<string, number>;
  const tokens = Object.keys(vocab);
  if (op === 'model-type') {
    raw = c.rng.pick(TOKENIZER_MODEL_TYPES);
    json.model.type = HOLE;
    what = `model.type = ${raw}`;
  } else if (op === 'vocab') {
    const v = c.rng.int(0, 6);
    const token = c.rng.pick(tokens);
    if (v === 0) ((json.model.vocab = {}), (what = 'model.vocab = {}'));
    else if (v === 1) ((vocab[token] = vocab[c.rng.pick(tokens)]), (what = `vocab[${JSON.stringify(token)}] duplicates another id`));
    else if (v === 2)
      ((vocab[token] = c.rng.pick([-1, 512, 100000, 2 ** 40, 1.5])), (what = `vocab[${JSON.stringify(token)}] = ${vocab[token]}`));
    else if (v === 3) (delete vocab[token], (what = `vocab[${JSON.stringify(token)}] removed`));
    else if (v === 4) ((raw = rawValue(c.rng)), ((vocab as any)[token] = HOLE), (what = `vocab[${JSON.stringify(token)}] = ${short(raw)}`));
    else if (v === 5) ((raw = c.rng.pick(['[]', '"x"', 'null', '[["a",1]]'])), (json.model.vocab = HOLE), (what = `model.vocab = ${raw}`));
    else ((json.model.vocab[`fuzz${c.rng.int(0, 9)}`] = 511 + c.rng.int(1, 3)), (what = 'vocab: an extra token beyond vocab_size'));
  } else if (op === 'merges') {
    const merges = json.model.merges as unknown[];
    const i = c.rng.int(0, merges.length - 1);
    const v = c.rng.int(0, 5);
    if (v === 0)
      ((raw = c.rng.pick(['null', '7', '""', '"a"', '"a b c"', '["a"]', '["a","b","c"]', '[1,2]', '{}', '"zz qq"'])),
        (merges[i] = HOLE),
        (what = `merges[${i}] = ${raw}`));
    else if (v === 1) ((raw = c.rng.pick(['null', '{}', '"x"', '[[]]'])), (json.model.merges = HOLE), (what = `model.merges = ${raw}`));
    else if (v === 2)
      ((json.model.merges = merges.map((m) => (Array.isArray(m) ? m.join(' ') : m))), (what = 'merges in "a b" string form'));
    else if (v === 3) ((json.model.merges = []), (what = 'model.merges = []'));
    else if (v === 4) (merges.push(merges[i]), (what = `merges[${i}] duplicated at the end`));
    else (merges.reverse(), (what = 'merges reversed'));
  } else if (op === 'added') {
    const added = json.added_tokens as Record<string, unknown>[];
    const v = c.rng.int(0, 4);
    if (v === 0)
      ((raw = hugeString(c.rng)),
        (added.push({ id: 512, content: HOLE, special: true }), (what = `added_tokens += huge content ${short(raw)}`)));
    else if (v === 1)
      ((raw = c.rng.pick(['null', '{}', '"x"', '[null]', '[1]'])), (json.added_tokens = HOLE), (what = `added_tokens = ${raw}`));
    else if (v === 2)
      ((added[c.rng.int(0, added.length - 1)].id = c.rng.pick([-1, 512, 600, 1e9, 'x', null])),
        (what = 'added_tokens: an id out of range or of the wrong type'));
    else if (v === 3)
      (added.push({ id: c.rng.int(3, 600), content: c.rng.pick(['<new>', '', 'the', '<s>', '▁']), special: c.rng.next() < 0.5 }),
        (what = 'added_tokens += one'));
    else
      ((raw = rawValue(c.rng)), (added[c.rng.int(0, added.length - 1)].content = HOLE), (what = `added_tokens[].content = ${short(raw)}`));
  } else {
    const key = c.rng.pick(['normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'truncation', 'padding']);
    raw = c.rng.pick([
      'null',
      '{}',
      '{"type":"Unknown"}',
      '{"type":"ByteLevel","add_prefix_space":true}',
      '{"type":"Sequence"}',
      '{"type":"Sequence","normalizers":null}',
      '"x"',
      '[]',
      '{"type":"Metaspace","replacement":"▁"}',
      '{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<nope>","type_id":0}}]}',
    ]);
    json[key] = HOLE;
    what = `${key} = ${raw}`;
  }
  writeFileSync(file, withRaw(json, raw));
  return `tokenizer.json: ${what}`;
}

function mutateTokenizerConfig(c: MutationContext): string {
  const file = join(
    c.dir,
    c.rng.weighted([
      ['tokenizer_config.json', 4],
      ['special_tokens_map.json', 1],
      ['generation_config.json', 1],
    ] as const),
  );
  const name = file.split('/').pop();
  if (c.rng.next() < 0.3) return replaceJsonText(file, c.rng);
  return `${name}: ${editJsonFile(file, c.rng, ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'add_bos_token', 'add_eos_token', 'model_max_length', 'chat_template', 'added_tokens_decoder', 'tokenizer_class', 'legacy', 'max_length', 'bos_token_id', 'eos_token_id'])}`;
}

// ── safetensors ──
const DTYPES = [
  '"F16"',
  '"BF16"',
  '"F64"',
  '"I8"',
  '"U8"',
  '"I32"',
  '"I64"',
  '"BOOL"',
  '"F8_E4M3"',
  '"f32"',
  '"X"',
  '""',
  'null',
  '1',
  '"__proto__"',
];
function mutateHeader(c: MutationContext): string {
  const file = join(c.dir, WEIGHTS);
  const { header, data } = readRaw(file);
  const names = tensorNames(header);
  const name = c.rng.pick(names);
  const t = header[name];
  const [a, b] = t.data_offsets as [number, number];
  const op = c.rng.weighted([
    ['dtype', 3],
    ['shape', 4],
    ['offsets', 4],
    ['remove', 2],
    ['add', 2],
    ['rename', 1],
    ['metadata', 3],
    ['edit', 3],
    ['whole', 2],
    ['length', 3],
    ['proto', 1],
  ] as const);
  let raw = 'null';
  let what: string;
  if (op === 'dtype') ((raw = c.rng.pick(DTYPES)), (t.dtype = HOLE), (what = `${name}.dtype = ${raw}`));
  else if (op === 'shape') {
    const s = t.shape as number[];
    const v = c.rng.int(0, 9);
    const shapes: unknown[] = [
      [],
      s.slice(0, -1),
      [...s, 1],
      [...s, 2],
      s.map((d, i) => (i === 0 ? d * 2 : d)),
      s.map((d, i) => (i === 0 ? 0 : d)),
      s.map(() => -1),
      [...s].reverse(),
      [2 ** 53, 1],
      [s.reduce((x, y) => x * y, 1)],
    ];
    raw = JSON.stringify(shapes[v]);
    if (v === 6 && c.rng.next() < 0.5) raw = c.rng.pick(['[1.5]', '["8"]', 'null', '"x"', '[1e20]', '[[1]]']);
    t.shape = HOLE;
    what = `${name}.shape = ${raw}`;
  } else if (op === 'offsets') {
    const k = c.rng.pick([1, 2, 4, 8, 256]);
    const options = [
      [a, b + k],
      [a + k, b],
      [b, a],
      [a - k, b - k],
      [a, a],
      [a + k, b + k],
      [0, data.length],
      [a, data.length + k],
      [-k, b],
      [a, b, b],
    ];
    raw =
      c.rng.next() < 0.85
        ? JSON.stringify(c.rng.pick(options))
        : c.rng.pick(['null', '[]', '"0-1"', '[0.5, 1]', `["${a}", ${b}]`, '{}', '[1e400, 1]']);
    t.data_offsets = HOLE;
    what = `${name}.data_offsets = ${raw}`;
  } else if (op === 'remove') {
    delete header[name];
    if (c.rng.next() < 0.5) {
      // and its bytes, with every later tensor moved down: a valid file missing one tensor
      for (const n of names)
        if (header[n] && header[n].data_offsets[0] >= b) header[n].data_offsets = header[n].data_offsets.map((o: number) => o - (b - a));
      writeRaw(file, header, Buffer.concat([data.subarray(0, a), data.subarray(b)]));
      return `${WEIGHTS}: tensor ${name} removed with its data`;
    }
    what = `tensor ${name} removed (its bytes left as a hole)`;
  } else if (op === 'add') {
    const newName = c.rng.pick([
      'lm_head.weight',
      'model.layers.5.mlp.up_proj.weight',
      'model.layers.0.mlp.up_proj.bias',
      'model.norm.bias',
      'fuzz.tensor',
      'model.layers.-1.mlp.up_proj.weight',
      'model.layers.1e3.self_attn.q_proj.weight',
    ]);
    header[newName] =
      c.rng.next() < 0.5 ? { ...t } : { dtype: t.dtype, shape: t.shape, data_offsets: [data.length, data.length + (b - a)] };
    if (header[newName].data_offsets[0] === data.length) {
      writeRaw(file, header, Buffer.concat([data, data.subarray(a, b)]));
      return `${WEIGHTS}: extra tensor ${newName} (copy of ${name}, own bytes)`;
    }
    what = `extra tensor ${newName} sharing ${name}'s bytes`;
  } else if (op === 'rename') {
    const newName = c.rng.pick([
      name.toUpperCase(),
      `${name}.x`,
      name.replace('weight', 'bias'),
      'model.layers.0.mlp.gate_proj.weight',
      '',
    ]);
    header[newName] = t;
    if (newName !== name) delete header[name];
    what = `tensor ${name} renamed ${JSON.stringify(newName)}`;
  } else if (op === 'metadata') {
    raw = c.rng.pick(['null', '[]', '"pt"', '{"format":1}', '{"a":{"b":"c"}}', '{"format":"pt","x":null}', '{}', 'MISSING']);
    if (c.rng.next() < 0.2) raw = c.rng.next() < 0.5 ? deep(c.rng) : `{"format":${hugeString(c.rng)}}`;
    if (raw === 'MISSING') delete header.__metadata__;
    else header.__metadata__ = HOLE;
    what = `__metadata__ = ${short(raw)}`;
  } else if (op === 'edit') {
    raw = rawValue(c.rng);
    const field = c.rng.pick(['dtype', 'shape', 'data_offsets', 'extra']);
    t[field] = HOLE;
    what = `${name}.${field} = ${short(raw)}`;
  } else if (op === 'whole') {
    const text = JSON.stringify(header);
    const v = c.rng.int(0, 6);
    const texts = [
      '[]',
      'null',
      '7',
      '"x"',
      '{}',
      text.slice(0, c.rng.int(1, text.length - 1)),
      `${text}${' '.repeat(c.rng.pick([1, 7, 100]))}`,
    ];
    const chosen = texts[v];
    writeRaw(file, chosen, data);
    return `${WEIGHTS}: header text ${v === 5 ? 'truncated' : v === 6 ? 'padded with spaces' : `= ${chosen}`}`;
  } else if (op === 'length') {
    const text = Buffer.from(JSON.stringify(header));
    const n = BigInt(text.length);
    const declared = c.rng.pick([
      n + 1n,
      n - 1n,
      n + 8n,
      n - 8n,
      0n,
      1n,
      7n,
      2n ** 63n,
      2n ** 64n - 1n,
      BigInt(text.length + data.length),
      BigInt(text.length + data.length + 1),
      100_000_000n,
    ]);
    writeRaw(file, header, data, declared);
    return `${WEIGHTS}: header length field ${declared} (true ${n})`;
  } else {
    // a prototype key in the header: as text, since JSON.stringify cannot write "__proto__"
    const key = c.rng.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
    const text = JSON.stringify(header);
    writeRaw(file, `{"${key}":${JSON.stringify(t)},${text.slice(1)}`, data);
    return `${WEIGHTS}: header key "${key}" (a copy of ${name})`;
  }
  writeRaw(file, withRaw(header, raw).replace(/\n\s*/g, ''), data);
  return `${WEIGHTS}: ${what}`;
}

function f32ToBf16(data: Buffer): Buffer {
  const out = Buffer.alloc(data.length / 2);
  for (let i = 0; i < out.length / 2; i++) out.writeUInt16LE(data.readUInt32LE(4 * i) >>> 16, 2 * i);
  return out;
}

/** Data-section changes: flips, truncation, holes, trailing bytes, special float values, dtype conversions. */
function mutateData(c: MutationContext): string {
  const file = join(c.dir, WEIGHTS);
  const bytes = readFileSync(file);
  const { header, data } = readRaw(file);
  const headerEnd = bytes.length - data.length;
  const op = c.rng.weighted([
    ['flip', 4],
    ['truncate', 3],
    ['append', 1],
    ['hole', 2],
    ['values', 3],
    ['bf16', 2],
    ['reinterpret', 1],
  ] as const);
  if (op === 'flip') {
    const n = c.rng.pick([1, 2, 8, 64]);
    const inHeader = c.rng.next() < 0.5;
    for (let i = 0; i < n; i++) {
      const at = inHeader ? c.rng.int(0, headerEnd - 1) : c.rng.int(headerEnd, bytes.length - 1);
      bytes[at] ^= c.rng.int(1, 255);
    }
    writeFileSync(file, bytes);
    return `${WEIGHTS}: ${n} random byte(s) flipped in the ${inHeader ? 'length field/header' : 'data'}`;
  }
  if (op === 'truncate') {
    const at = c.rng.pick([0, c.rng.int(1, 7), c.rng.int(8, headerEnd - 1), c.rng.int(headerEnd, bytes.length - 1), bytes.length - 1]);
    truncateSync(file, at);
    return `${WEIGHTS}: truncated to ${at} of ${bytes.length} bytes`;
  }
  if (op === 'append') {
    const n = c.rng.pick([1, 4, 4096]);
    writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(n, 0x41)]));
    return `${WEIGHTS}: ${n} bytes appended after the data`;
  }
  if (op === 'hole') {
    // every offset shifted by k, k junk bytes first: the data section is not tiled exactly
    const k = c.rng.pick([4, 8, 256]);
    for (const n of tensorNames(header)) header[n].data_offsets = header[n].data_offsets.map((o: number) => o + k);
    writeRaw(file, header, Buffer.concat([Buffer.alloc(k), data]));
    return `${WEIGHTS}: a ${k}-byte hole before the first tensor`;
  }
  if (op === 'values') {
    const name = c.rng.pick(tensorNames(header));
    const [a, b] = header[name].data_offsets as [number, number];
    const value = c.rng.pick([NaN, Infinity, -Infinity, 3e38, -3e38, 1e-45, 0]);
    const count = c.rng.pick([1, 16, (b - a) / 4]);
    for (let i = 0; i < count; i++) data.writeFloatLE(value, a + 4 * c.rng.int(0, (b - a) / 4 - 1));
    writeRaw(file, header, data);
    return `${WEIGHTS}: ${count} value(s) of ${name} set to ${value}`;
  }
  if (op === 'bf16') {
    // a legitimate change: some or all tensors stored as BF16
    const all = c.rng.next() < 0.5;
    const chosen = all ? tensorNames(header) : [c.rng.pick(tensorNames(header))];
    const parts: Buffer[] = [];
    let offset = 0;
    for (const n of tensorNames(header)) {
      const [a, b] = header[n].data_offsets as [number, number];
      const part = chosen.includes(n) ? f32ToBf16(data.subarray(a, b)) : data.subarray(a, b);
      if (chosen.includes(n)) header[n].dtype = 'BF16';
      header[n].data_offsets = [offset, offset + part.length];
      parts.push(part);
      offset += part.length;
    }
    writeRaw(file, header, Buffer.concat(parts));
    return `${WEIGHTS}: ${all ? 'every tensor' : chosen[0]} converted to BF16 (valid)`;
  }
  // F32 bytes declared F16/BF16 with a doubled shape: sizes agree, values are garbage
  const name = c.rng.pick(tensorNames(header));
  const shape = header[name].shape as number[];
  header[name].dtype = c.rng.pick(['F16', 'BF16']);
  header[name].shape = [...shape.slice(0, -1), shape[shape.length - 1] * 2];
  writeRaw(file, header, data);
  return `${WEIGHTS}: ${name} reinterpreted as ${header[name].dtype} with shape ${JSON.stringify(header[name].shape)}`;
}

/** A sharded checkpoint (valid, or with its index broken). */
function mutateShards(c: MutationContext): string {
  const file = join(c.dir, WEIGHTS);
  const raw = readRaw(file);
  const count = c.rng.pick([2, 3]);
  const shardName = (i: number) => `model-0000${i + 1}-of-0000${count}.safetensors`;
  const weightMap: Record<string, string> = {};
  splitShards(raw, count).forEach((s, i) => {
    writeRaw(join(c.dir, shardName(i)), s.header, s.data);
    for (const n of tensorNames(s.header)) weightMap[n] = shardName(i);
  });
  if (c.rng.next() < 0.85) rmSync(file);
  const index: any = { metadata: { total_size: raw.data.length }, weight_map: weightMap };
  const indexFile = join(c.dir, 'model.safetensors.index.json');
  const names = Object.keys(weightMap);
  const name = c.rng.pick(names);
  const op = c.rng.weighted([
    ['valid', 2],
    ['entry', 6],
    ['whole', 2],
    ['edit', 3],
    ['shard-file', 3],
  ] as const);
  let what: string;
  let rawText = 'null';
  if (op === 'valid') what = 'valid';
  else if (op === 'entry') {
    rawText = c.rng.pick([
      `"./${weightMap[name]}"`,
      '"../model.safetensors"',
      '"/etc/passwd"',
      '"missing.safetensors"',
      '""',
      '"."',
      '"config.json"',
      `"${shardName(count - 1 - Number(weightMap[name][9]) + 1)}"`,
      'null',
      '7',
      '[]',
      '"model.safetensors"',
      `"${c.dir}/${weightMap[name]}"`,
      `"sub/../${weightMap[name]}"`,
    ]);
    if (c.rng.next() < 0.2) {
      delete weightMap[name];
      what = `weight_map: ${name} removed`;
    } else {
      weightMap[name] = HOLE;
      what = `weight_map[${name}] = ${rawText}`;
    }
  } else if (op === 'whole') {
    rawText = c.rng.pick(['null', '[]', '{}', '{"weight_map":null}', '{"weight_map":[]}', '{"weight_map":"x"}', '{"metadata":{}}', '7']);
    writeFileSync(indexFile, rawText);
    return `sharded ×${count}: index = ${rawText}`;
  } else if (op === 'edit') {
    writeFileSync(indexFile, JSON.stringify(index));
    return `sharded ×${count}: index ${editJsonFile(indexFile, c.rng, ['metadata', 'weight_map'])}`;
  } else {
    const shard = join(c.dir, shardName(c.rng.int(0, count - 1)));
    const v = c.rng.int(0, 4);
    if (v === 0) (rmSync(shard), (what = `${shard.split('/').pop()} missing`));
    else if (v === 1) (rmSync(shard), mkdirSync(shard), (what = `${shard.split('/').pop()} is a directory`));
    else if (v === 2) (rmSync(shard), execFileSync('mkfifo', [shard]), (what = `${shard.split('/').pop()} is a FIFO`));
    else if (v === 3)
      (copyFileSync(join(c.dir, shardName(0)), join(c.dir, shardName(1))),
        (what = 'shard 2 is a copy of shard 1 (duplicate tensors, missing ones)'));
    else (truncateSync(shard, c.rng.int(0, 2000)), (what = `${shard.split('/').pop()} truncated`));
  }
  writeFileSync(indexFile, withRaw(index, rawText));
  return `sharded ×${count}${existsSync(file) ? ' (model.safetensors kept too)' : ''}: ${what}`;
}

// ── the file system: links, FIFOs, directories, missing and extra files ──
function target(c: MutationContext): { name: string; path: string } {
  const name = c.rng.next() < 0.8 ? c.rng.pick(FILES) : c.rng.pick(EXTRA_NAMES);
  return { name, path: join(c.dir, name) };
}

function mutateLinkInside(c: MutationContext): string {
  const { name, path } = target(c);
  rmSync(path, { force: true });
  const v = c.rng.int(0, 5);
  const dest = [
    c.rng.pick(FILES.filter((f) => f !== name)),
    name,
    'missing-file',
    '.',
    '..' + '/' + c.dir.split('/').pop() + '/' + c.rng.pick(FILES),
    'sub',
  ][v];
  if (v === 5) mkdirSync(join(c.dir, 'sub'));
  if (v === 4 && dest.endsWith(name)) return `${name} removed (a link to itself through ..)`;
  symlinkSync(v === 0 && c.rng.next() < 0.5 ? join(c.dir, dest) : dest, path);
  return `${name} → link to ${dest} (inside)`;
}

function mutateLinkOutside(c: MutationContext): string {
  const { name, path } = target(c);
  const v = c.rng.int(0, 7);
  let dest: string;
  if (v <= 1) {
    // a copy of the real file, outside: the content is fine, the place is not
    dest = join(c.outside, name);
    if (existsSync(path)) copyFileSync(path, dest);
    else writeFileSync(dest, 'outside\n');
  } else if (v === 2) {
    dest = c.outside;
  } else dest = ['/etc/passwd', '/dev/zero', '/dev/urandom', '/dev/null', '/proc/self/environ'][v - 3];
  rmSync(path, { force: true });
  symlinkSync(dest, path);
  return `${name} → link to ${dest.startsWith(c.outside) ? `outside/${relative(c.outside, dest)}` : dest}`;
}

function mutateSpecialFile(c: MutationContext): string {
  const { name, path } = target(c);
  rmSync(path, { force: true });
  const v = c.rng.int(0, 3);
  if (v === 0) execFileSync('mkfifo', [path]);
  else if (v === 1) mkdirSync(path);
  else if (v === 2) (mkdirSync(path), writeFileSync(join(path, 'x'), 'x'));
  else return `${name} missing`;
  return `${name} is ${['a FIFO', 'an empty directory', 'a directory with a file'][v]}`;
}

function mutateExtraFile(c: MutationContext): string {
  const name = c.rng.pick(EXTRA_NAMES);
  const path = join(c.dir, name);
  const v = c.rng.int(0, 4);
  if (v === 0) writeFileSync(path, Buffer.from(Array.from({ length: c.rng.int(0, 4096) }, () => c.rng.int(0, 255))));
  else if (v === 1) writeFileSync(path, rawValue(c.rng));
  else if (v === 2) writeFileSync(path, '{"a": 1}\n#version: 0.2\na b\n');
  else if (v === 3)
    (writeFileSync(path, ''), truncateSync(path, c.rng.pick([70, 300]) * 1024 * 1024)); // sparse: big on paper only
  else copyFileSync(join(c.dir, c.rng.pick(FILES)), path);
  return `extra ${name}: ${['random bytes', 'a raw JSON value', 'text', 'a large sparse file', 'a copy of another file'][v]}`;
}

/** The table of mutation kinds and how often each is drawn. */
export const MUTATIONS: Mutation[] = [
  { kind: 'config', weight: 14, apply: mutateConfig },
  { kind: 'tokenizer', weight: 10, apply: mutateTokenizer },
  { kind: 'tokenizer-config', weight: 5, apply: mutateTokenizerConfig },
  { kind: 'st-header', weight: 14, apply: mutateHeader },
  { kind: 'st-data', weight: 10, apply: mutateData },
  { kind: 'shards', weight: 8, apply: mutateShards },
  { kind: 'link-inside', weight: 4, apply: mutateLinkInside },
  { kind: 'link-outside', weight: 5, apply: mutateLinkOutside },
  { kind: 'special-file', weight: 5, apply: mutateSpecialFile },
  { kind: 'extra-file', weight: 4, apply: mutateExtraFile },
];

/** A fresh copy of the model in `dir` (regular files only, as the bundle has). */
export function copyModel(from: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(from)) copyFileSync(join(from, name), join(dir, name));
}
