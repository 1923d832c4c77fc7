/**
 * The two parts of a layer's Gram that compensation uses, once its kept channels K are known,
 * from the Gram's rows (√w_t · h_t of every weighted position, as the layer graph gives them):
 *     G_KK = Σ_t w_t h_K,t h_K,tᵀ   [n, n], its upper block triangle packed (gram-layout.ts, over n)
 *     Z    = W_R G_RK = Σ_t w_t (W_R h_R,t) h_K,tᵀ   [D, n], as (W_R R_Rᵀ) R_K
 * G_RR is never formed, and W_R·G_RK costs 2·N·D·(r + n) instead of 2·N·r·n + 2·D·r·n: on
 * Qwen2.5-0.5B (I = 4864 → 3072, D = 896) ≈ 161 GFLOP per layer for 8192 tokens, against 223 for
 * the packed Gram over all I channels and W_R·G_RK from it.
 */
import ort from 'onnxruntime-node';
import { type GramRowBlock, gramLayout } from '../engine/gram-layout.js';
import { GraphBuilder } from '../engine/onnx-graph.js';
import { createSession } from '../engine/session.js';

/**
 * G_KK packed (gramLayout(keep.length)) and Z [D, n], summed over the blocks in order. `wR` is
 * W_R [D, r] (the removed columns of down_proj, in `removed` order).
 *
 * The session lives for one call and keeps an arena while it does: its intermediates (~200 MB per
 * block of 2048 rows on Qwen2.5-0.5B's shape, ~1 GB on Llama-3.1-8B's) are reused from block to
 * block instead of mapped afresh each run. Kept beyond the call, the arena stayed allocated through
 * the solve, the next layer's forward pass and the head (bench:scale's 8B shape: peak RSS 6.33 GiB,
 * 5.44 with a session per call). Releasing the session is the only way to free it here: the Node
 * binding ignores RunOptions' arena-shrinkage entry (WebAssembly only). A session per call costs
 * ~10 ms; one 8B-shaped layer took the same time either way (docs/benchmarks.md), and so did whole
 * compensated prunes of Qwen2.5-0.5B's shape, run alternately with the session kept (docs/compensation.md).
 */
export async function keptGramParts(
  blocks: readonly GramRowBlock[],
  I: number,
  keep: readonly number[],
  removed: readonly number[],
  wR: Float32Array,
  threads?: number,
): Promise<{ packed: Float32Array; z: Float32Array }> {
  const [n, r] = [keep.length, removed.length];
  const D = wR.length / r;
  const P = gramLayout(n).length;
  const session = await createSession(keptGramGraph(I, n), threads, false);
  try {
    const feeds: Record<string, ort.Tensor> = {
      keep: new ort.Tensor('int64', BigInt64Array.from(keep, BigInt), [n]),
      removed: new ort.Tensor('int64', BigInt64Array.from(removed, BigInt), [r]),
      wR: new ort.Tensor('float32', wR, [D, r]),
    };
    // The running sums go in and come out of the graph (each block's part is added there, in block
    // order), between two buffers each: fresh outputs per block would cost the garbage collector.
    let [gram, gramNext, z, zNext] = [P, P, D * n, D * n].map((length) => new Float32Array(length)); // [1, P] twice, [D, n] twice
    for (const { rows, count } of blocks) {
      if (count === 0) continue;
      await session.run(
        {
          ...feeds,
          rows: new ort.Tensor('float32', rows, [count, I]),
          gramIn: new ort.Tensor('float32', gram, [1, P]),
          zIn: new ort.Tensor('float32', z, [D, n]),
        },
        { gram: new ort.Tensor('float32', gramNext, [1, P]), z: new ort.Tensor('float32', zNext, [D, n]) },
      );
      [gram, gramNext, z, zNext] = [gramNext, gram, zNext, z];
    }
    return { packed: gram, z };
  } finally {
    await session.release();
  }
}

function keptGramGraph(I: number, n: number): Uint8Array {
  const g = new GraphBuilder();
  const layout = gramLayout(n);
  const rows = g.input('rows', ['N', I]); // √w_t · h_t
  const keep = g.input('keep', [n], 'int64');
  const removed = g.input('removed', ['R'], 'int64');
  const wR = g.input('wR', ['D', 'R']);
  const gramIn = g.input('gramIn', [1, layout.length]);
  const zIn = g.input('zIn', ['D', n]);
  const rowsT = g.op('Transpose', [rows], { perm: [1, 0] }); // [I, N]: a channel's values contiguous
  const kT = g.op('Gather', [rowsT, keep], { axis: 0 }); // R_Kᵀ [n, N]
  const rT = g.op('Gather', [rowsT, removed], { axis: 0 }); // R_Rᵀ [r, N]
  // G_KK's upper block triangle: block row i is R_K[:, block i]ᵀ · R_K[:, start_i:].
  const channels = (v: string, from: number, to: number) => g.op('Slice', [v, g.ints([from]), g.ints([to]), g.ints([0])]);
  const blockRows = layout.blocks.map(({ start, size }) => {
    const left = size === n ? kT : channels(kT, start, start + size); // [size, N]
    const right = start === 0 ? kT : channels(kT, start, n); // [n − start, N]
    return g.op('Reshape', [g.op('MatMul', [left, g.op('Transpose', [right], { perm: [1, 0] })]), g.ints([1, -1])]); // [1, size·(n − start)]
  });
  const packed = blockRows.length === 1 ? blockRows[0] : g.op('Concat', blockRows, { axis: 1 }); // [1, P]
  g.output(g.op('Add', [gramIn, packed]), 'gram', [1, layout.length]);
  const yRT = g.op('MatMul', [wR, rT]); // (R_R W_Rᵀ)ᵀ [D, N]
  const z = g.op('MatMul', [yRT, g.op('Transpose', [kT], { perm: [1, 0] })]); // [D, n]
  g.output(g.op('Add', [zIn, z]), 'z', ['D', n]);
  return g.toBytes('kept_gram');
}
