/**
 * Where the checkpoint's JSON files name tokens outside tokenizer.json: token ids in config.json
 * and generation_config.json (`bos_token_id`, `eos_token_id` lists, `image_token_index`, …) and
 * token strings in tokenizer_config.json and special_tokens_map.json (`bos_token`, …).
 */
import { CompactError, check } from '../util/errors.js';
import { isObject, type JsonObject } from './tokenizer-json.js';

/** Keys whose value is a token id or a list of them. */
const TOKEN_ID_KEY = /_token_ids?$|_token_index$/;

/** generation_config.json keys that hold token ids in shapes compact does not remap. */
const UNSUPPORTED_ID_KEYS = ['suppress_tokens', 'begin_suppress_tokens', 'bad_words_ids', 'forced_decoder_ids', 'sequence_bias'];

/** Nested configs whose token ids count too (Gemma 3 multimodal keeps its text model in `text_config`). */
const NESTED_CONFIGS = ['text_config'];

export interface TokenIdField {
  /** e.g. "eos_token_id" or "text_config.eos_token_id". */
  path: string;
  ids: number[];
}

/** Every token-id field of a config.json or generation_config.json (null fields are skipped). */
export function tokenIdFields(config: JsonObject, file: string): TokenIdField[] {
  const fields: TokenIdField[] = [];
  visitTokenIdFields(config, file, '', (path, ids) => fields.push({ path, ids }));
  return fields;
}

/** A copy of `config` with every token id mapped through `old2new`; a dropped id is an error. */
export function remapTokenIdFields(config: JsonObject, file: string, old2new: Int32Array): JsonObject {
  const copy = structuredClone(config);
  visitTokenIdFields(copy, file, '', (path, ids, owner, key) => {
    const mapped = ids.map((id) => {
      const newId = id < old2new.length ? old2new[id] : -1;
      check(newId >= 0, () => `${file} ${path} names token id ${id}, which the pruned vocabulary drops`);
      return newId;
    });
    owner[key] = Array.isArray(owner[key]) ? mapped : mapped[0];
  });
  return copy;
}

function visitTokenIdFields(
  config: JsonObject,
  file: string,
  prefix: string,
  visit: (path: string, ids: number[], owner: JsonObject, key: string) => void,
): void {
  for (const key of UNSUPPORTED_ID_KEYS) {
    const value = config[key];
    const empty =
      value === undefined ||
      value === null ||
      (Array.isArray(value) && value.length === 0) ||
      (isObject(value) && Object.keys(value).length === 0);
    if (!empty) throw new CompactError(`${file} ${prefix}${key} lists token ids, which vocabulary pruning cannot remap; remove it first`);
  }
  for (const [key, value] of Object.entries(config)) {
    const path = prefix + key;
    if (NESTED_CONFIGS.includes(key) && isObject(value)) {
      visitTokenIdFields(value, file, `${path}.`, visit);
    } else if (TOKEN_ID_KEY.test(key) && value !== null) {
      const ids = Array.isArray(value) ? value : [value];
      check(
        ids.every((id) => Number.isInteger(id) && id >= 0),
        () => `${file} ${path} is ${JSON.stringify(value)}, not a token id or a list of them`,
      );
      visit(path, ids as number[], config, key);
    }
  }
}

/**
 * Token strings named by a tokenizer_config.json or special_tokens_map.json: every `*_token`
 * field, `additional_special_tokens` and `extra_special_tokens`, each a string or {content}.
 */
export function specialTokenNames(json: JsonObject): string[] {
  const names: string[] = [];
  const add = (value: unknown): void => {
    if (typeof value === 'string') names.push(value);
    else if (isObject(value) && typeof value.content === 'string') names.push(value.content);
  };
  for (const [key, value] of Object.entries(json)) {
    if (key.endsWith('_token')) add(value);
    else if (key === 'additional_special_tokens' && Array.isArray(value)) value.forEach(add);
    else if (key === 'extra_special_tokens') (Array.isArray(value) ? value : isObject(value) ? Object.values(value) : []).forEach(add);
  }
  return names;
}
