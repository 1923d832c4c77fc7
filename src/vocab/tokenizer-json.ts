/**
 * The parts of a Hugging Face checkpoint's tokenizer files that vocabulary pruning reads and
 * rewrites, and the check that refuses tokenizers it cannot prune (only BPE models can be).
 */
import { CompactError, check } from '../util/errors.js';
import { oneLine } from '../util/files.js';

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
        '(Unigram, WordPiece and WordLevel have no merges to prune along), and compact reads only BPE tokenizers',
    );
  }
  check(isObject(model.vocab), 'tokenizer.json BPE model has no "vocab" object');
  check(Array.isArray(model.merges), 'tokenizer.json BPE model has no "merges" list');
  checkTokens(model.vocab, model.merges, tokenizer.added_tokens);
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

/** Ids a tokenizer may use (real vocabularies stop near 2^18); larger ones would size arrays by a typo. */
export const MAX_TOKEN_ID = 1 << 24;
/** Characters a token may have (a real one has at most a few hundred). */
export const MAX_TOKEN_CHARS = 1 << 16;

/**
 * What every reader of the vocabulary relies on: a non-empty vocab of ids in [0, MAX_TOKEN_ID),
 * merges of two token strings, added tokens with an id and a string content, no token longer
 * than MAX_TOKEN_CHARS.
 */
function checkTokens(vocab: JsonObject, merges: unknown[], added: unknown): void {
  const entries = Object.entries(vocab);
  check(entries.length > 0, 'tokenizer.json BPE model has an empty vocab');
  for (const [token, id] of entries) {
    check(
      Number.isInteger(id) && (id as number) >= 0 && (id as number) < MAX_TOKEN_ID,
      () =>
        `tokenizer.json vocab entry ${oneLine(JSON.stringify(token), 80)} has id ${oneLine(JSON.stringify(id) ?? String(id), 40)}; ids must be integers in [0, ${MAX_TOKEN_ID})`,
    );
    check(
      token.length <= MAX_TOKEN_CHARS,
      () => `tokenizer.json vocab entry ${id} is ${token.length} characters long; at most ${MAX_TOKEN_CHARS} are read`,
    );
  }
  merges.forEach((merge, rank) => mergeParts(merge, rank));
  if (!Array.isArray(added)) return;
  added.forEach((token: unknown, i) => {
    const t = token as AddedTokenJson;
    check(
      isObject(t) && Number.isInteger(t.id) && t.id >= 0 && t.id < MAX_TOKEN_ID && typeof t.content === 'string',
      () => `tokenizer.json added_tokens[${i}] has no valid id (an integer in [0, ${MAX_TOKEN_ID})) and string content`,
    );
    check(
      t.content.length <= MAX_TOKEN_CHARS,
      () => `tokenizer.json added_tokens[${i}] (id ${t.id}) is ${t.content.length} characters long; at most ${MAX_TOKEN_CHARS} are read`,
    );
  });
}

/** The two parts of one merge, in either spelling. A string merge holds exactly one space. */
export function mergeParts(merge: unknown, rank: number): [string, string] {
  if (Array.isArray(merge)) {
    check(
      merge.length === 2 && merge.every((p) => typeof p === 'string' && p.length > 0),
      () => `tokenizer.json merge #${rank} ${oneLine(JSON.stringify(merge), 80)} is not a pair of tokens`,
    );
    return merge as [string, string];
  }
  check(
    typeof merge === 'string',
    () => `tokenizer.json merge #${rank} is ${merge === null ? 'null' : `a ${typeof merge}`}, not two tokens separated by one space`,
  );
  const space = merge.indexOf(' ');
  check(
    space > 0 && space === merge.lastIndexOf(' ') && space < merge.length - 1,
    () => `tokenizer.json merge #${rank} ${oneLine(JSON.stringify(merge), 80)} is not two tokens separated by one space`,
  );
  return [merge.slice(0, space), merge.slice(space + 1)];
}
