/**
 * Every token of a checkpoint's tokenizer with its string and the number of UTF-8 bytes of text
 * it stands for, read from tokenizer.json. The byte counts let two tokenizations of one text be
 * aligned (a shared boundary is a shared cumulative byte count); the strings map ids of one
 * vocabulary to ids of another (a pruned vocabulary is a subset of its dense one).
 */
import { join } from 'node:path';
import { requireBpeTokenizer, isObject, type JsonObject } from '../vocab/tokenizer-json.js';
import { readUserJson } from '../util/files.js';

export interface TokenTable {
  /** id → token string (vocab entry or added-token content); undefined for unused ids. */
  strings: (string | undefined)[];
  /** id → UTF-8 bytes of text the token decodes to (0 for special tokens such as BOS). */
  bytes: Int32Array;
  /** token string → id */
  idOf: Map<string, number>;
}

export function readTokenTable(dir: string): TokenTable {
  const file = join(dir, 'tokenizer.json');
  const json = requireBpeTokenizer({ tokenizer: readUserJson(file) });
  const decoders = flatten(json.decoder);
  const byteLevel = decoders.some((d) => d.type === 'ByteLevel');
  const byteFallback = decoders.some((d) => d.type === 'ByteFallback');
  // SentencePiece-style decoders replace the word marker (▁) with a space.
  const replaces = decoders.filter(
    (d) => d.type === 'Replace' && isObject(d.pattern) && typeof d.pattern.String === 'string' && typeof d.content === 'string',
  );
  const textOf = (token: string): string =>
    replaces.reduce((s, d) => s.split((d.pattern as JsonObject).String as string).join(d.content as string), token);
  const byteCount = (token: string): number => {
    if (byteLevel) return [...token].length; // one character per byte
    if (byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(token)) return 1;
    return Buffer.byteLength(textOf(token), 'utf8');
  };

  const strings: (string | undefined)[] = [];
  const idOf = new Map<string, number>();
  const lengths: number[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) {
    strings[id] = token;
    idOf.set(token, id);
    lengths[id] = byteCount(token);
  }
  for (const added of json.added_tokens ?? []) {
    strings[added.id] = added.content;
    idOf.set(added.content, added.id);
    lengths[added.id] = added.special === true ? 0 : Buffer.byteLength(added.content, 'utf8');
  }
  return { strings, bytes: Int32Array.from({ length: strings.length }, (_, id) => lengths[id] ?? 0), idOf };
}

function flatten(decoder: unknown): JsonObject[] {
  if (!isObject(decoder)) return [];
  if (decoder.type === 'Sequence' && Array.isArray(decoder.decoders)) return decoder.decoders.flatMap(flatten);
  return [decoder];
}

/** For each id of `from`, the id of the same token string in `to` (−1: `to` has no such token). */
export function mapIds(from: TokenTable, to: TokenTable, size: number): Int32Array {
  return Int32Array.from({ length: size }, (_, id) => {
    const s = from.strings[id];
    return s === undefined ? -1 : (to.idOf.get(s) ?? -1);
  });
}

/** c[i] = UTF-8 bytes of text covered by ids[0..i) (length n + 1). */
export function cumulativeBytes(table: TokenTable, ids: readonly number[]): Int32Array {
  const c = new Int32Array(ids.length + 1);
  ids.forEach((id, i) => (c[i + 1] = c[i] + (table.bytes[id] ?? 0)));
  return c;
}
