/**
 * A layer's Gram G = Σ_t w_t h_t h_tᵀ of down_proj's inputs, as the engine hands it on (its rows
 * √w_t · h_t, GramRowGroups), and the packed layout of a symmetric Gram [I, I] (compensation
 * packs G_KK so, src/prune/kept-gram.ts): only the upper block triangle is computed. The channels are split into nb blocks [start, start + size); block
 * row i holds G[start_i : start_i + size_i, start_i : I] ([size_i, I − start_i], row-major), and
 * the block rows follow each other. Its length is ≈ I²/2 + I·size/2, so the Gram costs
 * ≈ (1/2 + 1/(2·nb)) of a full hᵀh MatMul (Qwen2.5-0.5B, I = 4864 in 10 blocks: 0.55×).
 */

/** Channels per block (tests lower it so their small layers have several blocks). */
export const GRAM_BLOCK = { size: 512 };

export interface GramLayout {
  I: number;
  blocks: { start: number; size: number; offset: number }[];
  /** Entries of one packed Gram. */
  length: number;
}

export function gramLayout(I: number): GramLayout {
  const nb = Math.max(1, Math.ceil(I / GRAM_BLOCK.size));
  const size = Math.ceil(I / nb); // balanced blocks: the last one is at most nb − 1 channels smaller
  const blocks = [];
  let offset = 0;
  for (let start = 0; start < I; start += size) {
    const b = Math.min(size, I - start);
    blocks.push({ start, size: b, offset });
    offset += b * (I - start);
  }
  return { I, blocks, length: offset };
}

/** Block index of every channel. */
function blockOf(layout: GramLayout): Int32Array {
  const out = new Int32Array(layout.I);
  layout.blocks.forEach((b, i) => out.fill(i, b.start, b.start + b.size));
  return out;
}

/**
 * Reads entries of a packed Gram (one group: `packed` has layout.length entries) by (row, column)
 * of the full symmetric matrix.
 */
export class PackedGram {
  private readonly block: Int32Array;
  constructor(
    readonly layout: GramLayout,
    readonly packed: Float32Array | Float64Array,
  ) {
    this.block = blockOf(layout);
  }

  get I(): number {
    return this.layout.I;
  }

  /** Index of G[a, b] in the packed array (diagonal blocks are stored whole, the rest above them). */
  index(a: number, b: number): number {
    if (this.block[b] < this.block[a]) [a, b] = [b, a];
    const { start, offset } = this.layout.blocks[this.block[a]];
    return offset + (a - start) * (this.layout.I - start) + (b - start);
  }

  at(a: number, b: number): number {
    return this.packed[this.index(a, b)];
  }

  /**
   * G [I, I] whole, in f32: each packed row is a contiguous run of its row of G; the strict lower
   * triangle is then mirrored from the upper in tiles (G is symmetric). Into `G` when given.
   */
  full(G: Float32Array = new Float32Array(this.layout.I ** 2)): Float32Array {
    const { I, blocks } = this.layout; // G [I, I]
    for (const { start, size, offset } of blocks)
      for (let row = 0; row < size; row++) {
        const from = offset + row * (I - start);
        G.set(this.packed.subarray(from, from + I - start), (start + row) * I + start);
      }
    const T = 64;
    for (let i0 = 0; i0 < I; i0 += T)
      for (let j0 = 0; j0 <= i0; j0 += T)
        for (let i = i0; i < Math.min(i0 + T, I); i++) for (let j = j0; j < Math.min(j0 + T, i); j++) G[i * I + j] = G[j * I + i];
    return G;
  }

  /** Full row a of G into out [I]. */
  row(a: number, out: Float32Array | Float64Array): void {
    const { I, blocks } = this.layout;
    const bi = this.block[a];
    const own = blocks[bi];
    // Columns ≥ start of a's block: a's own packed row.
    const base = own.offset + (a - own.start) * (I - own.start);
    for (let b = own.start; b < I; b++) out[b] = this.packed[base + b - own.start];
    // Columns in earlier blocks: column a of their block rows (G is symmetric).
    for (let i = 0; i < bi; i++) {
      const { start, size, offset } = blocks[i];
      const width = I - start;
      for (let r = 0; r < size; r++) out[start + r] = this.packed[offset + r * width + (a - start)];
    }
  }
}

/** The packed form of a full row-major [I, I] matrix (tests, and callers that hold a full Gram). */
export function packGram(full: ArrayLike<number>, I: number): PackedGram {
  const layout = gramLayout(I);
  const packed = new Float64Array(layout.length);
  for (const { start, size, offset } of layout.blocks)
    for (let r = 0; r < size; r++)
      for (let b = start; b < I; b++) packed[offset + r * (I - start) + (b - start)] = full[(start + r) * I + b];
  return new PackedGram(layout, packed);
}

/** Rows [count, I] row-major (a view) whose Σ rowᵀ·row is (part of) a Gram. */
export interface GramRowBlock {
  rows: Float32Array;
  count: number;
}

/**
 * A layer's Gram rows √w_t · h_t as the layer graph gives them: per micro-batch [N_b, I], the
 * rows of group 0 first, then group 1, … (`split`: rows per group).
 */
export class GramRowGroups {
  constructor(
    readonly I: number,
    private readonly batches: readonly { rows: Float32Array; split: readonly number[] }[],
  ) {}

  /** The row blocks of the given groups (micro-batch by micro-batch, groups in the order given): their Gram is the groups' sum. */
  blocks(groups: readonly number[]): GramRowBlock[] {
    return this.batches.flatMap(({ rows, split }) => {
      const starts = split.map((_, c) => split.slice(0, c).reduce((a, b) => a + b, 0));
      return groups.map((c) => ({ rows: rows.subarray(starts[c] * this.I, (starts[c] + split[c]) * this.I), count: split[c] }));
    });
  }
}
