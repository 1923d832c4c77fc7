/**
 * The parts of a Hugging Face checkpoint's tokenizer files that vocabulary pruning reads and
 * rewrites, and the check that refuses tokenizers it cannot prune (only BPE models can be).
 */
import { CompactError, check } from '../util/errors.js';

export type JsonObject = { [key: string]: unknown };

/** One entry of `tokenizer.json` `added_tokens` (matched in the raw text before the model runs). */
export interface AddedTokenJson {
  id: number;
  content: string;
  [key: string]: unknown;
}

/** `tokenizer.json` `model` of type BPE. Merges come as "a b" strings (older files) or [a, b] pairs. */
export interface BpeModelJson {
  type?: 'BPE';
  vocab: Record<string, number>;
  merges: Array<string | [string, string]>;
  unk_token?: string | null;
  byte_fallback?: boolean;
  ignore_merges?: boolean;
  continuing_subword_prefix?: string | null;
  end_of_word_suffix?: string | null;
  [key: string]: unknown;
}

export interface TokenizerJson {
  model: BpeModelJson;
  added_tokens?: AddedTokenJson[];
  post_processor?: JsonObject | null;
  padding?: JsonObject | null;
  [key: string]: unknown;
}

/** The tokenizer-related files of a checkpoint directory, parsed; any of them may be absent. */
export interface TokenizerFiles {
  /** tokenizer.json */
  tokenizer?: unknown;
  /** tokenizer_config.json */
  tokenizerConfig?: JsonObject;
  /** config.json */
  config?: JsonObject;
  /** generation_config.json */
  generationConfig?: JsonObject;
  /** special_tokens_map.json */
  specialTokensMap?: JsonObject;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Returns `files.tokenizer` typed as a BPE tokenizer.json, or throws a CompactError that names what
 * it is instead. Merge-order pruning is only defined for BPE: Unigram scores, WordPiece prefixes and
 * WordLevel lookups have no merges whose closure would keep the remaining tokens reachable.
 */
export function requireBpeTokenizer(files: TokenizerFiles): TokenizerJson {
  const tokenizer = files.tokenizer;
  if (tokenizer === undefined) {
    const tokenizerClass = files.tokenizerConfig?.tokenizer_class;
    throw new CompactError(
      'no tokenizer.json: vocabulary pruning needs a Hugging Face fast tokenizer (a BPE tokenizer.json); ' +
        `a tiktoken-only or SentencePiece-only tokenizer${typeof tokenizerClass === 'string' ? ` (tokenizer_class ${tokenizerClass})` : ''} must be converted to tokenizer.json first`,
    );
  }
  check(isObject(tokenizer), 'tokenizer.json is not a JSON object');
  const model = tokenizer.model;
  check(isObject(model), 'tokenizer.json has no "model": nothing to prune');
  const type = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
  if (type !== 'BPE') {
    throw new CompactError(
      `tokenizer.json model type ${String(type ?? '(none)')} is not supported: vocabulary pruning needs a BPE tokenizer ` +
        '(Unigram, WordPiece and WordLevel have no merges to prune along)',
    );
  }
  check(isObject(model.vocab), 'tokenizer.json BPE model has no "vocab" object');
  check(Array.isArray(model.merges), 'tokenizer.json BPE model has no "merges" list');
  for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    const affix = model[field];
    check(
      affix === undefined || affix === null || affix === '',
      `tokenizer.json BPE model uses ${field} ${JSON.stringify(affix)}, which vocabulary pruning does not support`,
    );
  }
  const added = tokenizer.added_tokens;
  check(added === undefined || Array.isArray(added), 'tokenizer.json "added_tokens" is not a list');
  return tokenizer as TokenizerJson;
}

/** The two parts of one merge, in either spelling. A string merge holds exactly one space. */
export function mergeParts(merge: string | [string, string], rank: number): [string, string] {
  if (Array.isArray(merge)) return merge;
  const space = merge.indexOf(' ');
  check(
    space > 0 && space === merge.lastIndexOf(' ') && space < merge.length - 1,
    () => `tokenizer.json merge #${rank} ${JSON.stringify(merge)} is not two tokens separated by one space`,
  );
  return [merge.slice(0, space), merge.slice(space + 1)];
}
