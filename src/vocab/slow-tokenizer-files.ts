/**
 * The tokenizer files a checkpoint may ship beside tokenizer.json, which other tools read instead
 * of it: `tokenizer.model` (SentencePiece: llama.cpp's converter, slow Llama/Gemma tokenizers),
 * `vocab.json` + `merges.txt` (GPT-2 style slow tokenizers, e.g. Qwen2Tokenizer) and
 * `added_tokens.json` (token → id of the added tokens). When the vocabulary is pruned, each is
 * rewritten for the kept ids, after checking that it describes the same vocabulary as tokenizer.json
 * (otherwise it could not be made consistent, and is refused). Other files with old token ids are
 * left out (`staleTokenizerFile`). Pure data in, pure data out: bytes in, bytes out.
 */
import { CompactError, check } from '../util/errors.js';
import { checkPiecesMatch, pruneSentencePieceModel, readSentencePieceModel, type SentencePieceModel } from './sentencepiece-model.js';
import type { SurgeryResult } from './surgery.js';
import { mergeParts, requireBpeTokenizer, type TokenizerFiles } from './tokenizer-json.js';
import { indexVocabulary, tokenIdOf } from './vocabulary.js';

export const SLOW_TOKENIZER_FILES = ['tokenizer.model', 'vocab.json', 'merges.txt', 'added_tokens.json'] as const;
export type SlowTokenizerFile = (typeof SLOW_TOKENIZER_FILES)[number];

/** The slow-tokenizer files present, parsed and checked against tokenizer.json. */
export interface SlowTokenizerFiles {
  sentencePiece?: { name: string; model: SentencePieceModel };
  vocabJson?: { name: string; json: FlatJsonObject };
  merges?: { name: string; merges: MergesTxt };
  addedTokens?: { name: string; json: FlatJsonObject };
}

/**
 * Parses and checks the given files (`raw`: file contents by name; `dir` only names them in errors).
 * A file that is malformed, or that disagrees with tokenizer.json, is a CompactError.
 */
export function readSlowTokenizerFiles(
  raw: Partial<Record<SlowTokenizerFile, Uint8Array>>,
  files: TokenizerFiles,
  dir: string,
): SlowTokenizerFiles {
  const tokenizer = requireBpeTokenizer(files);
  const vocab = indexVocabulary(tokenizer);
  const path = (file: string) => `${dir.replace(/\/+$/, '')}/${file}`;
  const slow: SlowTokenizerFiles = {};
  const text = (file: SlowTokenizerFile): string | undefined => {
    const bytes = raw[file];
    if (!bytes) return undefined;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new CompactError(`${path(file)}: not UTF-8 text`);
    }
  };
  if (raw['tokenizer.model']) {
    const name = path('tokenizer.model');
    const model = readSentencePieceModel(raw['tokenizer.model'], name);
    checkPiecesMatch(model, vocab, name);
    slow.sentencePiece = { name, model };
  }
  for (const [file, key] of [
    ['vocab.json', 'vocabJson'],
    ['added_tokens.json', 'addedTokens'],
  ] as const) {
    const content = text(file);
    if (content === undefined) continue;
    const name = path(file);
    const json = readFlatJsonObject(content, name);
    for (const { token, id } of json.entries) {
      const actual = tokenIdOf(vocab, token);
      check(
        actual === id,
        () =>
          `${name} gives ${JSON.stringify(token)} id ${id} but tokenizer.json ${actual === undefined ? 'does not have it' : `gives it id ${actual}`}; the two files describe different vocabularies, so ${file} cannot be rewritten for the pruned ids`,
      );
    }
    slow[key] = { name, json };
  }
  const mergesText = text('merges.txt');
  if (mergesText !== undefined) {
    const name = path('merges.txt');
    const merges = readMergesTxt(mergesText, name);
    const expected = tokenizer.model.merges;
    check(
      merges.lines.length === expected.length,
      () =>
        `${name} has ${merges.lines.length} merges but tokenizer.json ${expected.length}; the two files describe different vocabularies, so merges.txt cannot be rewritten for the pruned ids`,
    );
    merges.parts.forEach(([a, b], rank) => {
      const [x, y] = mergeParts(expected[rank], rank);
      check(
        a === x && b === y,
        () =>
          `${name} merge #${rank} is ${JSON.stringify(`${a} ${b}`)} but tokenizer.json's is ${JSON.stringify(`${x} ${y}`)}; the two files describe different vocabularies, so merges.txt cannot be rewritten for the pruned ids`,
      );
    });
    slow.merges = { name, merges };
  }
  return slow;
}

/** The rewritten files, by file name, for the pruned vocabulary that `surgery` describes. */
export function pruneSlowTokenizerFiles(slow: SlowTokenizerFiles, surgery: SurgeryResult): Map<SlowTokenizerFile, Uint8Array> {
  const out = new Map<SlowTokenizerFile, Uint8Array>();
  const utf8 = (s: string) => new TextEncoder().encode(s);
  if (slow.sentencePiece)
    out.set('tokenizer.model', pruneSentencePieceModel(slow.sentencePiece.model, surgery.old2new, slow.sentencePiece.name));
  if (slow.vocabJson) out.set('vocab.json', utf8(pruneFlatJsonObject(slow.vocabJson.json, surgery.old2new)));
  if (slow.merges) out.set('merges.txt', utf8(pruneMergesTxt(slow.merges.merges, surgery.keptMerges)));
  if (slow.addedTokens) out.set('added_tokens.json', utf8(pruneFlatJsonObject(slow.addedTokens.json, surgery.old2new)));
  return out;
}

/**
 * Files that hold the old token ids in a form compact does not rewrite (tiktoken ranks, Mistral's
 * tekken.json and versioned SentencePiece models, WordPiece vocab.txt, SentencePiece .vocab
 * listings): after vocabulary pruning they would silently give wrong ids, so they are left out.
 */
export function staleTokenizerFile(name: string): boolean {
  return /\.(tiktoken|vocab)$/.test(name) || /\.model(\.v\d+)?$/.test(name) || name === 'tekken.json' || name === 'vocab.txt';
}

// ── vocab.json / added_tokens.json: a flat {token: id} object ──

/**
 * A `{"token": id, …}` object as written: entries in file order (JSON.parse would reorder keys
 * that look like integers, such as "0" and "10"), each key's literal as it was escaped, and the
 * whitespace around them, so a rewrite keeps the input's formatting (Qwen's one-line vocab.json,
 * transformers' indented one) and only the ids change.
 */
export interface FlatJsonObject {
  entries: Array<{ token: string; id: number; literal: string }>;
  /** Whitespace after "{", between key and value (":" included), between entries ("," included), before "}", after "}". */
  layout: { open: string; colon: string; comma: string; close: string; end: string };
}

export function readFlatJsonObject(text: string, file: string): FlatJsonObject {
  const fail = (why: string): never => {
    throw new CompactError(`${file}: not a {"token": id} JSON object (${why})`);
  };
  let at = 0;
  const space = (): string => {
    const start = at;
    while (at < text.length && ' \t\r\n'.includes(text[at])) at++;
    return text.slice(start, at);
  };
  const expect = (c: string): void => {
    if (text[at] !== c) fail(`expected ${JSON.stringify(c)} at character ${at}`);
    at++;
  };
  space();
  expect('{');
  const layout = { open: space(), colon: ': ', comma: ', ', close: '', end: '' };
  const entries: FlatJsonObject['entries'] = [];
  if (text[at] === '}') at++;
  else {
    for (;;) {
      const start = at;
      expect('"');
      while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
      expect('"');
      const literal = text.slice(start, at);
      let token: string;
      try {
        token = JSON.parse(literal) as string;
      } catch {
        return fail(`bad string ${literal.slice(0, 40)} at character ${start}`);
      }
      const colonStart = at;
      space();
      expect(':');
      space();
      if (entries.length === 0) layout.colon = text.slice(colonStart, at);
      const digits = /^(0|[1-9]\d*)(?![\d.eE])/.exec(text.slice(at, at + 20));
      if (!digits) return fail(`the value of ${literal.slice(0, 40)} is not a non-negative integer`);
      at += digits[0].length;
      entries.push({ token, id: Number(digits[0]), literal });
      const separator = at;
      space();
      if (text[at] !== ',') {
        layout.close = text.slice(separator, at);
        expect('}');
        break;
      }
      at++;
      space();
      if (entries.length === 1) layout.comma = text.slice(separator, at);
    }
  }
  layout.end = text.slice(at);
  if (layout.end.trim() !== '') fail(`text after the closing brace at character ${at}`);
  return { entries, layout };
}

/** The object with only the kept entries, each with its new id; order, key literals and layout kept. */
export function pruneFlatJsonObject(json: FlatJsonObject, old2new: Int32Array): string {
  const { open, colon, comma, close, end } = json.layout;
  const kept = json.entries.filter((e) => e.id < old2new.length && old2new[e.id] >= 0).map((e) => `${e.literal}${colon}${old2new[e.id]}`);
  return kept.length === 0 ? `{}${end}` : `{${open}${kept.join(comma)}${close}}${end}`;
}

// ── merges.txt ──

/** merges.txt: an optional `#version: …` header, then one merge "a b" per line. */
export interface MergesTxt {
  header: string | null;
  /** Merge lines as written (a trailing "\r" included), and their two parts. */
  lines: string[];
  parts: Array<[string, string]>;
  /** Whether the file ended with a newline (GPT-2's reader drops the last line, so it matters). */
  finalNewline: boolean;
}

export function readMergesTxt(text: string, file: string): MergesTxt {
  const all = text.split('\n');
  const finalNewline = all[all.length - 1] === '';
  if (finalNewline) all.pop();
  const header = all.length > 0 && all[0].startsWith('#version') ? all.shift()! : null;
  const lines: string[] = [];
  const parts: Array<[string, string]> = [];
  all.forEach((line, k) => {
    const trimmed = line.trim();
    if (trimmed === '') return; // slow tokenizers skip blank lines; so do we
    const pair = trimmed.split(/\s+/);
    check(
      pair.length === 2,
      () => `${file} line ${k + (header === null ? 1 : 2)} ${JSON.stringify(line.slice(0, 60))} is not two tokens separated by a space`,
    );
    lines.push(line);
    parts.push([pair[0], pair[1]]);
  });
  return { header, lines, parts, finalNewline };
}

/** The header and the kept merges' lines, in their order. */
export function pruneMergesTxt(merges: MergesTxt, keptMerges: readonly number[]): string {
  const lines = [...(merges.header === null ? [] : [merges.header]), ...keptMerges.map((rank) => merges.lines[rank])];
  return lines.join('\n') + (merges.finalNewline ? '\n' : '');
}
