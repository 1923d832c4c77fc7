/**
 * Which token ids survive vocabulary pruning.
 *
 * V′ (`size`) counts every id of the pruned tokenizer, model vocab and added tokens together: it is
 * the number of embedding rows kept and the new `vocab_size`. Rows a checkpoint pads its embedding
 * with beyond the tokenizer's ids (Qwen: 151,936 rows for 151,669 tokens) are always dropped.
 *
 * Always kept, whatever V′: every added token (specials at the top ids of Qwen / Llama 3, chat
 * template markers), `<unk>`, tokens named by tokenizer_config / special_tokens_map / config /
 * generation_config, the 256 `<0xNN>` pieces of a byte-fallback model, every single-character
 * token (for byte-level BPE, its 256-symbol byte alphabet), the keep-list, and the closure of all
 * of these. Their count is the smallest V′ accepted.
 *
 * Closure: a kept token must stay producible, so its derivation (see derivation.ts) is kept with
 * it, recursively. The rest of the budget is filled in priority order (rank: lowest id first;
 * frequency: most counted first, ties by id), each token admitted together with its missing
 * derivation only if they all fit; a token that does not fit is retried in a later pass, after
 * lower-priority tokens may have brought in its parts. Frequency orders the ids its corpus never
 * shows by `expected` when given (a text of a few thousand distinct tokens leaves most of a large
 * V′ to this order). V′ is therefore never exceeded, and it is
 * always met exactly: some missing token always costs a single id (one whose parts are all kept).
 */
import { CompactError, check, checkPositiveInteger } from '../util/errors.js';
import { Derivations } from './derivation.js';
import { specialTokenNames, tokenIdFields } from './special-ids.js';
import { isObject, requireBpeTokenizer, type TokenizerFiles } from './tokenizer-json.js';
import { indexVocabulary, tokenExists, tokenIdOf, type Vocabulary } from './vocabulary.js';

export const KEEP_MODES = ['rank', 'frequency'] as const;
export type KeepMode = (typeof KEEP_MODES)[number];

export interface KeepSetOptions {
  /** V′: ids in the pruned vocabulary. At least `alwaysKept`; at or above the original count keeps everything. */
  size: number;
  /** 'rank' (default, the paper's): lowest ids are the most common merges. 'frequency': uses `counts`. */
  mode?: KeepMode;
  /** For 'frequency': occurrences of each old id over a corpus (see countTokens); missing ids count 0. */
  counts?: ArrayLike<number>;
  /**
   * For 'frequency': the order of the ids `counts` never saw, most expected first (e.g. the dense
   * model's expected counts on calibration text, see expectedCounts); without it, by id.
   */
  expected?: ArrayLike<number>;
  /** Tokens always kept, by id or by string (a model vocab token such as "Ġthe", or an added token). */
  keepList?: ReadonlyArray<string | number>;
}

/** How many ids each reason forces into the vocabulary, counting each id once, in this order. */
export interface AlwaysKeptBreakdown {
  /** Added tokens, `<unk>`, and tokens the other files name. */
  special: number;
  /** `<0xNN>` byte-fallback pieces. */
  bytePieces: number;
  /** Single-character tokens (the byte alphabet of byte-level BPE). */
  characters: number;
  keepList: number;
  /** Derivation parts of all of the above. */
  closure: number;
}

export interface KeepSet {
  /** Old ids, ascending: the rows of the embedding to keep and, renumbered densely, the new ids. */
  keep: number[];
  /** V′ as asked. */
  requested: number;
  /** keep.length: the pruned vocabulary size (= requested unless that exceeds originalSize). */
  size: number;
  /** Ids of the original tokenizer. */
  originalSize: number;
  /** The smallest V′ possible: ids kept whatever the budget. */
  alwaysKept: number;
  breakdown: AlwaysKeptBreakdown;
  mode: KeepMode;
}

export function selectKeepSet(files: TokenizerFiles, options: KeepSetOptions): KeepSet {
  const vocab = indexVocabulary(requireBpeTokenizer(files));
  const mode = options.mode ?? 'rank';
  checkPositiveInteger(options.size, 'vocabulary size');
  const counts = mode === 'frequency' ? requireCounts(options.counts, 'token count') : undefined;
  const expected = mode === 'frequency' && options.expected ? requireCounts(options.expected, 'expected count') : undefined;

  const selection = new Selection(vocab);
  // An id past the embedding (Gemma 3 1B: 262,144 rows, <image_soft_token> is id 262,144) has no row to keep.
  const rows = Math.min(
    vocab.size,
    ...[files.config, files.config?.text_config].map((c) =>
      isObject(c) && Number.isInteger(c.vocab_size) ? (c.vocab_size as number) : Infinity,
    ),
  );
  const withRow = function* (ids: Iterable<number>) {
    for (const id of ids) if (id < rows) yield id;
  };
  const breakdown: AlwaysKeptBreakdown = {
    special: selection.force(withRow(specialIds(vocab, files))),
    bytePieces: selection.force(bytePieceIds(vocab)),
    characters: selection.force(characterIds(vocab)),
    keepList: selection.force(resolveKeepList(vocab, options.keepList ?? [])),
    closure: 0,
  };
  breakdown.closure = selection.closeForced();
  const alwaysKept = selection.count;
  if (options.size < alwaysKept) {
    throw new CompactError(
      `vocabulary size ${options.size} is below the minimum ${alwaysKept} for this tokenizer ` +
        `(${breakdown.special} special/added, ${breakdown.bytePieces} byte pieces, ${breakdown.characters} single characters, ` +
        `${breakdown.keepList} from the keep-list, ${breakdown.closure} their merge parts)`,
    );
  }
  const available = priorityOrder(vocab, counts, expected).filter((id) => id < rows);
  selection.fill(Math.min(options.size, available.length), available);
  return {
    keep: selection.keptIds(),
    requested: options.size,
    size: selection.count,
    originalSize: vocab.tokenCount,
    alwaysKept,
    breakdown,
    mode,
  };
}

/** The keep mask, grown only through whole derivation closures. */
class Selection {
  private readonly kept: Uint8Array;
  private readonly derivations: Derivations;
  private readonly visited: Uint32Array;
  private stamp = 0;
  private keptCount = 0;

  constructor(private readonly vocab: Vocabulary) {
    this.kept = new Uint8Array(vocab.size);
    this.visited = new Uint32Array(vocab.size);
    this.derivations = new Derivations(vocab);
  }

  get count(): number {
    return this.keptCount;
  }

  /** Keeps `ids` without their closure; returns how many were new. */
  force(ids: Iterable<number>): number {
    const before = this.count;
    for (const id of ids) this.add(id);
    return this.count - before;
  }

  /** Adds the derivation closure of everything kept so far; returns how many ids that added. */
  closeForced(): number {
    const before = this.count;
    for (let id = 0; id < this.vocab.size; id++) {
      const parts = this.kept[id] ? this.derivations.parts(id) : undefined;
      if (parts) for (const part of parts) for (const missing of this.missingClosure(part)) this.add(missing);
    }
    return this.count - before;
  }

  /** Admits candidates, best first, each with its missing closure, until `target` ids are kept. */
  fill(target: number, candidates: Int32Array): void {
    let pending = candidates;
    while (this.count < target && pending.length > 0) {
      const skipped: number[] = [];
      for (const id of pending) {
        if (this.count === target) break;
        if (this.kept[id]) continue;
        const missing = this.missingClosure(id);
        if (this.count + missing.length <= target) for (const part of missing) this.add(part);
        else skipped.push(id);
      }
      if (skipped.length === pending.length) break;
      pending = Int32Array.from(skipped);
    }
  }

  keptIds(): number[] {
    const ids: number[] = [];
    for (let id = 0; id < this.kept.length; id++) if (this.kept[id]) ids.push(id);
    return ids;
  }

  private add(id: number): void {
    if (!this.kept[id]) {
      this.kept[id] = 1;
      this.keptCount++;
    }
  }

  /** `id` and the tokens of its derivation tree that are not kept yet (none if `id` is kept). */
  private missingClosure(id: number): number[] {
    const stamp = ++this.stamp;
    const missing: number[] = [];
    const stack = [id];
    while (stack.length > 0) {
      const token = stack.pop()!;
      if (this.kept[token] || this.visited[token] === stamp) continue;
      this.visited[token] = stamp;
      missing.push(token);
      const parts = this.derivations.parts(token);
      if (parts) stack.push(parts[1], parts[0]);
    }
    return missing;
  }
}

function requireCounts(counts: ArrayLike<number> | undefined, what: string): ArrayLike<number> {
  check(counts !== undefined, "mode 'frequency' needs token counts (see countTokens)");
  for (let id = 0; id < counts.length; id++) {
    const count = counts[id];
    check(Number.isFinite(count) && count >= 0, () => `${what} for id ${id} is ${count}, not a non-negative number`);
  }
  return counts;
}

/** Every existing id, best first: by id (rank), or by count, then (uncounted ids) expected count, then id (frequency). */
function priorityOrder(vocab: Vocabulary, counts: ArrayLike<number> | undefined, expected: ArrayLike<number> | undefined): Int32Array {
  const ids: number[] = [];
  for (let id = 0; id < vocab.size; id++) if (tokenExists(vocab, id)) ids.push(id);
  if (counts) {
    const countOf = (id: number): number => (id < counts.length ? counts[id] : 0);
    const expectedOf = (id: number): number => (expected && id < expected.length && countOf(id) === 0 ? expected[id] : 0);
    ids.sort((a, b) => countOf(b) - countOf(a) || expectedOf(b) - expectedOf(a) || a - b);
  }
  return Int32Array.from(ids);
}

function* specialIds(vocab: Vocabulary, files: TokenizerFiles): Iterable<number> {
  yield* vocab.addedToken.keys();
  if (vocab.unkId !== undefined) yield vocab.unkId;
  for (const [json, file] of [
    [files.tokenizerConfig, 'tokenizer_config.json'],
    [files.specialTokensMap, 'special_tokens_map.json'],
  ] as const) {
    if (json === undefined) continue;
    // Names the tokenizer does not have stay unresolved, as they were before pruning.
    for (const name of specialTokenNames(json)) {
      const id = tokenIdOf(vocab, name);
      if (id !== undefined) yield id;
    }
    if (file === 'tokenizer_config.json' && isObject(json.added_tokens_decoder)) {
      for (const key of Object.keys(json.added_tokens_decoder)) if (tokenExists(vocab, Number(key))) yield Number(key);
    }
  }
  for (const [json, file] of [
    [files.config, 'config.json'],
    [files.generationConfig, 'generation_config.json'],
  ] as const) {
    if (json === undefined) continue;
    for (const { path, ids } of tokenIdFields(json, file)) {
      for (const id of ids) {
        check(tokenExists(vocab, id), () => `${file} ${path} names token id ${id}, which tokenizer.json does not have`);
        yield id;
      }
    }
  }
}

function* bytePieceIds(vocab: Vocabulary): Iterable<number> {
  if (!vocab.byteFallback) return;
  for (let byte = 0; byte < 256; byte++) {
    const id = vocab.modelId.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    if (id !== undefined) yield id;
  }
}

/** Single-character tokens: the symbols BPE starts from, which no merge produces. */
function* characterIds(vocab: Vocabulary): Iterable<number> {
  for (const [token, id] of vocab.modelId) {
    const first = token.codePointAt(0);
    if (first !== undefined && token.length === (first > 0xffff ? 2 : 1)) yield id;
  }
}

function resolveKeepList(vocab: Vocabulary, keepList: ReadonlyArray<string | number>): number[] {
  const ids: number[] = [];
  const unknown: string[] = [];
  for (const entry of keepList) {
    const id = typeof entry === 'number' ? (tokenExists(vocab, entry) ? entry : undefined) : tokenIdOf(vocab, entry);
    if (id === undefined) unknown.push(JSON.stringify(entry));
    else ids.push(id);
  }
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 20).join(', ') + (unknown.length > 20 ? `, … (${unknown.length} in all)` : '');
    throw new CompactError(`keep-list entries not in the tokenizer: ${shown}`);
  }
  return ids;
}
