/** An id-indexed view of a BPE tokenizer.json: which ids exist, their strings, and the merges as ids. */
import { check } from '../util/errors.js';
import { mergeParts, type TokenizerJson } from './tokenizer-json.js';

export interface Vocabulary {
  /** Largest id named by the model vocab or the added tokens, plus one. */
  readonly size: number;
  /** Number of ids that name a token (≤ size; equal unless the ids have gaps). */
  readonly tokenCount: number;
  /** id → string in the BPE model's vocab; undefined for ids that are only added tokens, or unused. */
  readonly modelToken: ReadonlyArray<string | undefined>;
  /** id → content of the added token with that id. */
  readonly addedToken: ReadonlyMap<number, string>;
  /** string → id in the BPE model's vocab. */
  readonly modelId: ReadonlyMap<string, number>;
  /** added token content → id. */
  readonly addedId: ReadonlyMap<string, number>;
  /** Merges in rank order, three ids each: left, right, result (−1 where a string is not in the vocab). */
  readonly merges: Int32Array;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  readonly unkId: number | undefined;
}

export function indexVocabulary(tokenizer: TokenizerJson): Vocabulary {
  const model = tokenizer.model;
  const modelId = new Map<string, number>();
  const modelToken: Array<string | undefined> = [];
  for (const [token, id] of Object.entries(model.vocab)) {
    check(Number.isInteger(id) && id >= 0, () => `tokenizer.json vocab entry ${JSON.stringify(token)} has id ${String(id)}`);
    check(
      modelToken[id] === undefined,
      () => `tokenizer.json vocab gives id ${id} to both ${JSON.stringify(modelToken[id])} and ${JSON.stringify(token)}`,
    );
    modelToken[id] = token;
    modelId.set(token, id);
  }
  const addedToken = new Map<number, string>();
  const addedId = new Map<string, number>();
  for (const added of tokenizer.added_tokens ?? []) {
    check(
      Number.isInteger(added.id) && added.id >= 0 && typeof added.content === 'string',
      () => `tokenizer.json added token ${JSON.stringify(added)} has no valid id and content`,
    );
    addedToken.set(added.id, added.content);
    addedId.set(added.content, added.id);
  }
  let size = modelToken.length;
  let tokenCount = modelId.size;
  for (const id of addedToken.keys()) {
    size = Math.max(size, id + 1);
    if (modelToken[id] === undefined) tokenCount++;
  }
  modelToken.length = size;

  const merges = new Int32Array(model.merges.length * 3);
  model.merges.forEach((merge, rank) => {
    const [left, right] = mergeParts(merge, rank);
    merges[3 * rank] = modelId.get(left) ?? -1;
    merges[3 * rank + 1] = modelId.get(right) ?? -1;
    merges[3 * rank + 2] = modelId.get(left + right) ?? -1;
  });

  const unk = model.unk_token;
  return {
    size,
    tokenCount,
    modelToken,
    addedToken,
    modelId,
    addedId,
    merges,
    byteFallback: model.byte_fallback === true,
    ignoreMerges: model.ignore_merges === true,
    unkId: typeof unk === 'string' ? (modelId.get(unk) ?? addedId.get(unk)) : undefined,
  };
}

/** The id of a token named by its string: the model vocab first, then the added tokens. */
export function tokenIdOf(vocab: Vocabulary, token: string): number | undefined {
  return vocab.modelId.get(token) ?? vocab.addedId.get(token);
}

export function tokenExists(vocab: Vocabulary, id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < vocab.size && (vocab.modelToken[id] !== undefined || vocab.addedToken.has(id));
}
