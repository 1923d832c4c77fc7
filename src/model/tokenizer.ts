/** The checkpoint's tokenizer, through the Hugging Face tokenizers port (transformers.js). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { CompactError, check } from '../util/errors.js';
import { oneLine, readUserJsonObject } from '../util/files.js';
import { type JsonObject, requireBpeTokenizer } from '../vocab/tokenizer-json.js';

/** tokenizer.json (a BPE model: the only kind compact understands) and tokenizer_config.json, checked. */
export function loadTokenizer(dir: string): Tokenizer {
  return buildTokenizer(dir, readTokenizerJson(dir));
}

/** The parsed tokenizer.json and tokenizer_config.json ({} when absent), for callers that also read them. */
export function readTokenizerJson(dir: string): { tokenizer: JsonObject; config: JsonObject } {
  const file = join(dir, 'tokenizer.json');
  check(existsSync(file), `${dir}: no tokenizer.json (compact needs the Hugging Face fast-tokenizer file)`);
  const configFile = join(dir, 'tokenizer_config.json');
  const config = existsSync(configFile) ? readUserJsonObject(configFile, { within: dir }) : {};
  return { tokenizer: readUserJsonObject(file, { within: dir }), config };
}

/** The tokenizer from already-parsed files (see readTokenizerJson). */
export function buildTokenizer(dir: string, { tokenizer, config }: { tokenizer: JsonObject; config: JsonObject }): Tokenizer {
  try {
    requireBpeTokenizer({ tokenizer });
  } catch (e) {
    if (e instanceof CompactError) throw new CompactError(`${dir}/${e.message}`);
    throw e;
  }
  try {
    return new Tokenizer(tokenizer, config);
  } catch (e) {
    throw new CompactError(`${join(dir, 'tokenizer.json')}: cannot build the tokenizer (${(e as Error).message})`);
  }
}

/** Token ids of `text` as the tokenizer's post-processor defines (e.g. one BOS for Llama 2). */
export function encode(tokenizer: Tokenizer, text: string): number[] {
  try {
    return tokenizer.encode(text).ids;
  } catch (e) {
    // The library trusts tokenizer.json's structure: a malformed part (a post_processor template
    // item that is a number) throws a TypeError deep inside it. That is the file's fault, not ours.
    if (e instanceof CompactError || !(e instanceof TypeError)) throw e;
    throw new CompactError(
      `tokenizer.json: the tokenizer failed on the text (${oneLine(e.message, 120)}): its normalizer, pre_tokenizer or post_processor is malformed`,
    );
  }
}
