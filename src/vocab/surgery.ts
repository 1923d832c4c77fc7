/**
 * Tokenizer surgery: rewrites a checkpoint's tokenizer and config files for a kept subset of token
 * ids. Kept ids are renumbered densely in their old order, a merge survives only if both its parts
 * and its result are kept (by membership, never by position), and every id stored anywhere in the
 * files is remapped. Pure data in, pure data out; the inputs are not modified.
 */
import { CompactError, check } from '../util/errors.js';
import { remapTokenIdFields, specialTokenNames } from './special-ids.js';
import {
  isObject,
  requireBpeTokenizer,
  type AddedTokenJson,
  type JsonObject,
  type TokenizerFiles,
  type TokenizerJson,
} from './tokenizer-json.js';
import { indexVocabulary, tokenExists, tokenIdOf, type Vocabulary } from './vocabulary.js';

export interface SurgeryResult {
  /** The given files, rewritten; absent inputs stay absent. */
  files: TokenizerFiles;
  /**
   * old id → new id, −1 where dropped. Covers the tokenizer's ids and every embedding row that
   * config.json's `vocab_size` declares (rows past the tokenizer, e.g. Qwen's padding, are −1).
   */
  old2new: Int32Array;
  /** Ids in the pruned vocabulary: keep.length, written to config.json `vocab_size`. */
  vocabSize: number;
  /** Ranks (old positions in tokenizer.json's merges) of the merges kept, ascending. */
  keptMerges: number[];
}

/** Rewrites `files` so that only `keep` (old ids, ascending) remain, numbered 0..keep.length-1. */
export function pruneTokenizerFiles(files: TokenizerFiles, keep: readonly number[]): SurgeryResult {
  const tokenizer = requireBpeTokenizer(files);
  const vocab = indexVocabulary(tokenizer);
  const old2new = renumbering(vocab, keep, files.config);
  const remapId = (id: unknown, where: string): number => {
    const newId = typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < old2new.length ? old2new[id] : -1;
    check(newId >= 0, () => `tokenizer.json ${where} names token id ${String(id)}, which the pruned vocabulary drops`);
    return newId;
  };

  const keptMerges = keptMergeRanks(vocab, old2new);
  const pruned: TokenizerFiles = { tokenizer: pruneTokenizerJson(tokenizer, vocab, old2new, keptMerges, remapId) };
  if (files.tokenizerConfig) pruned.tokenizerConfig = pruneTokenizerConfig(files.tokenizerConfig, old2new);
  if (files.config) pruned.config = withVocabSize(remapTokenIdFields(files.config, 'config.json', old2new), keep.length);
  if (files.generationConfig) pruned.generationConfig = remapTokenIdFields(files.generationConfig, 'generation_config.json', old2new);
  if (files.specialTokensMap) pruned.specialTokensMap = structuredClone(files.specialTokensMap);
  checkNamedTokensSurvive(files, vocab, old2new);
  return { files: pruned, old2new, vocabSize: keep.length, keptMerges };
}

/** A merge survives only if both its parts and its result are kept. */
function keptMergeRanks(vocab: Vocabulary, old2new: Int32Array): number[] {
  const isKept = (id: number): boolean => id >= 0 && old2new[id] >= 0;
  const ranks: number[] = [];
  for (let rank = 0; rank < vocab.merges.length / 3; rank++) {
    if (isKept(vocab.merges[3 * rank]) && isKept(vocab.merges[3 * rank + 1]) && isKept(vocab.merges[3 * rank + 2])) ranks.push(rank);
  }
  return ranks;
}

function renumbering(vocab: Vocabulary, keep: readonly number[], config: JsonObject | undefined): Int32Array {
  const rows = config ? declaredVocabSizes(config) : [];
  const old2new = new Int32Array(Math.max(vocab.size, ...rows)).fill(-1);
  keep.forEach((id, newId) => {
    check(tokenExists(vocab, id), () => `keep set names id ${id}, which tokenizer.json does not have`);
    check(
      rows.every((n) => id < n),
      () => `token id ${id} has no embedding row: config.json vocab_size is ${Math.min(...rows)}`,
    );
    check(newId === 0 || id > keep[newId - 1], 'keep set must list old ids in ascending order, each once');
    old2new[id] = newId;
  });
  return old2new;
}

function pruneTokenizerJson(
  tokenizer: TokenizerJson,
  vocab: Vocabulary,
  old2new: Int32Array,
  keptMerges: number[],
  remapId: (id: unknown, where: string) => number,
): TokenizerJson {
  const model = tokenizer.model;
  const unk = model.unk_token;
  check(
    typeof unk !== 'string' || vocab.unkId === undefined || old2new[vocab.unkId] >= 0,
    () => `the keep set drops the unknown token ${JSON.stringify(unk)}`,
  );
  const newVocab: Record<string, number> = {};
  for (let id = 0; id < vocab.size; id++) {
    const token = vocab.modelToken[id];
    if (token !== undefined && old2new[id] >= 0) newVocab[token] = old2new[id];
  }
  const merges = keptMerges.map((rank) => model.merges[rank]);

  const pruned: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(tokenizer)) {
    switch (key) {
      case 'model':
        pruned.model = {
          ...structuredClone({ ...model, vocab: undefined, merges: undefined }),
          vocab: newVocab,
          merges: merges.map(copyMerge),
        };
        break;
      case 'added_tokens':
        pruned.added_tokens = (value as AddedTokenJson[])
          .filter((t) => old2new[t.id] >= 0)
          .map((t) => ({ ...structuredClone(t), id: old2new[t.id] }));
        break;
      case 'post_processor':
        pruned.post_processor = isObject(value) ? remapPostProcessor(structuredClone(value), remapId) : value;
        break;
      case 'padding':
        pruned.padding = isObject(value) ? { ...structuredClone(value), pad_id: remapId(value.pad_id, 'padding pad_id') } : value;
        break;
      default:
        // normalizer, pre_tokenizer, decoder, truncation, version: they hold no token ids.
        pruned[key] = structuredClone(value);
    }
  }
  return pruned as TokenizerJson;
}

function copyMerge(merge: string | [string, string]): string | [string, string] {
  return Array.isArray(merge) ? [merge[0], merge[1]] : merge;
}

/** Remaps, in place, the ids a post-processor inserts (BOS/EOS templates, CLS/SEP). */
function remapPostProcessor(processor: JsonObject, remapId: (id: unknown, where: string) => number): JsonObject {
  const type = processor.type;
  switch (type) {
    case 'TemplateProcessing':
      for (const [name, special] of Object.entries(isObject(processor.special_tokens) ? processor.special_tokens : {})) {
        check(isObject(special) && Array.isArray(special.ids), () => `tokenizer.json post_processor special token ${name} has no ids`);
        special.ids = special.ids.map((id) => remapId(id, `post_processor special token ${name}`));
      }
      break;
    case 'RobertaProcessing':
    case 'BertProcessing':
      for (const field of ['sep', 'cls']) {
        const pair = processor[field];
        check(Array.isArray(pair) && pair.length === 2, () => `tokenizer.json ${type} has no [token, id] ${field}`);
        processor[field] = [pair[0], remapId(pair[1], `${type} ${field}`)];
      }
      break;
    case 'Sequence':
      check(Array.isArray(processor.processors), 'tokenizer.json post_processor Sequence has no processors');
      processor.processors = processor.processors.map((inner) => {
        check(isObject(inner), 'tokenizer.json post_processor Sequence holds a non-object');
        return remapPostProcessor(inner, remapId);
      });
      break;
    case 'ByteLevel':
      break;
    default:
      throw new CompactError(`tokenizer.json post_processor type ${String(type)} is not supported by vocabulary pruning`);
  }
  return processor;
}

/** tokenizer_config.json: `added_tokens_decoder` is keyed by id; dropped ids lose their entry. */
function pruneTokenizerConfig(config: JsonObject, old2new: Int32Array): JsonObject {
  const pruned = structuredClone(config);
  if (isObject(config.added_tokens_decoder)) {
    const decoder: JsonObject = {};
    for (const [key, entry] of Object.entries(config.added_tokens_decoder)) {
      const id = Number(key);
      const newId = Number.isInteger(id) && id >= 0 && id < old2new.length ? old2new[id] : -1;
      if (newId >= 0) decoder[String(newId)] = structuredClone(entry);
    }
    pruned.added_tokens_decoder = decoder;
  }
  return pruned;
}

/** Token strings the configs name must still be tokens, if they were before (and had an embedding row). */
function checkNamedTokensSurvive(files: TokenizerFiles, vocab: Vocabulary, old2new: Int32Array): void {
  const rows = Math.min(...(files.config ? declaredVocabSizes(files.config) : []));
  for (const [json, file] of [
    [files.tokenizerConfig, 'tokenizer_config.json'],
    [files.specialTokensMap, 'special_tokens_map.json'],
  ] as const) {
    for (const name of json ? specialTokenNames(json) : []) {
      const id = tokenIdOf(vocab, name);
      check(
        id === undefined || id >= rows || old2new[id] >= 0,
        () => `${file} names token ${JSON.stringify(name)}, which the pruned vocabulary drops`,
      );
    }
  }
}

/** `vocab_size` of config.json and of its nested text model, where present. */
function declaredVocabSizes(config: JsonObject): number[] {
  return [config, config.text_config]
    .map((c) => (isObject(c) ? c.vocab_size : undefined))
    .filter((size): size is number => typeof size === 'number' && Number.isInteger(size) && size > 0);
}

function withVocabSize(config: JsonObject, vocabSize: number): JsonObject {
  for (const c of [config, config.text_config]) if (isObject(c) && 'vocab_size' in c) c.vocab_size = vocabSize;
  return config;
}
