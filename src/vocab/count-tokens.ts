/** Token-id counts over a corpus, the input of keep-set mode 'frequency'. */
import type { Tokenizer } from '@huggingface/tokenizers';

/**
 * How often each id of the original `tokenizer` occurs when it encodes `texts`, indexed by id.
 * Special tokens the post-processor would add (BOS) are not counted: they are always kept anyway.
 */
export function countTokens(tokenizer: Tokenizer, texts: Iterable<string>): Float64Array {
  let size = 0;
  for (const id of tokenizer.get_vocab(true).values()) size = Math.max(size, id + 1);
  const counts = new Float64Array(size);
  for (const text of texts) {
    const ids: number[] = tokenizer.encode(text, { add_special_tokens: false }).ids;
    for (const id of ids) counts[id]++;
  }
  return counts;
}
