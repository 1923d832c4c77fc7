/**
 * How BPE builds each token: the two tokens it joins last when it encodes the token's own
 * characters. BPE is context-free inside a final token (no merge crosses its edges, and merges
 * inside it happen in the same rank order whatever surrounds it), so this one derivation is the
 * only way the tokenizer ever produces that token from merges. Keeping a token's derivation tree
 * therefore keeps it producible exactly where the original tokenizer produced it.
 */
import type { Vocabulary } from './vocabulary.js';

const UNKNOWN = -2;
const NONE = -1;

export class Derivations {
  private readonly rankOfPair = new Map<number, number>();
  private readonly left: Int32Array;
  private readonly right: Int32Array;

  constructor(private readonly vocab: Vocabulary) {
    const { merges, size } = vocab;
    for (let rank = 0; rank < merges.length / 3; rank++) {
      const [left, right, result] = [merges[3 * rank], merges[3 * rank + 1], merges[3 * rank + 2]];
      // A later duplicate overrides an earlier one, as in the Rust and JS loaders.
      if (left >= 0 && right >= 0 && result >= 0) this.rankOfPair.set(left * size + right, rank);
    }
    this.left = new Int32Array(size).fill(UNKNOWN);
    this.right = new Int32Array(size);
  }

  /**
   * [left, right] of the last merge BPE applies when encoding token `id` on its own; undefined
   * when BPE never builds it from merges: a single character, a byte piece, an added token, or a
   * token that only an `ignore_merges` whole-word lookup (Llama 3) or nothing at all produces.
   */
  parts(id: number): [number, number] | undefined {
    if (this.left[id] === UNKNOWN) this.derive(id);
    return this.left[id] === NONE ? undefined : [this.left[id], this.right[id]];
  }

  private derive(id: number): void {
    this.left[id] = NONE;
    const token = this.vocab.modelToken[id];
    if (token === undefined) return;
    const symbols: number[] = [];
    for (const char of token) {
      const symbol = this.vocab.modelId.get(char);
      if (symbol === undefined) return; // a character outside the vocab is never merged
      symbols.push(symbol);
    }
    const { merges, size } = this.vocab;
    let lastLeft = NONE;
    let lastRight = NONE;
    while (symbols.length > 1) {
      // Lowest rank first, leftmost among equals: the order of the Rust and JS BPE loops.
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.rankOfPair.get(symbols[i] * size + symbols[i + 1]);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) return;
      lastLeft = symbols[best];
      lastRight = symbols[best + 1];
      symbols.splice(best, 2, merges[3 * bestRank + 2]);
    }
    if (symbols[0] === id && lastLeft !== NONE) {
      this.left[id] = lastLeft;
      this.right[id] = lastRight;
    }
  }
}
