/**
 * One decoder layer as an ONNX graph, for every supported family. Weights are graph inputs in
 * their Hugging Face layout ([out, in] for linear layers; one session serves every layer). Each
 * projection is MatMul(x, Transpose(W)), which ONNX Runtime fuses into one FusedMatMul with
 * transB, so no transposed copy of a weight is ever made.
 *
 * Inputs:  hidden [B, T, D], cos/sin [T, 1, hd], mask [T, S] (additive: 0 or −inf; S = P + T keys;
 *          with `rowPositions`: cos/sin [B, T, 1, hd] and mask [B, 1, 1, T, S], per sequence),
 *          statWeights [B, T, G] (G weightings of the positions, e.g. one per candidate
 *          vocabulary), pastKey/pastValue [B, K, P, hd] (with a cache), and the weights (matrices
 *          f32, or as stored: f16, or bf16 bits as uint16; see LayerGraphOptions.wires).
 * Outputs: hidden_out [B, T, D]; act2 [G, I] = Σ_t w_{t,g} · h_t² with h the input of down_proj;
 *          influence [] = Σ_t (Σ_g w_{t,g}) · (1 − cos(x_t, y_t)) between the layer's input and output;
 *          with `perSequence`: act2 [B, G, I] and influence [B], one row per sequence (not summed
 *          over the batch, so a sequence's statistics do not depend on the others batched with it);
 *          key/value [B, K, S, hd] (with a cache: the past followed by this call's positions).
 * With `gram` (C groups): inputs gramIndex [N] (flattened b·T + t positions, grouped by group),
 *          gramScale [N, 1] (each position's weight), gramSplit [C] (positions per group);
 *          output gram [C, P] = Σ_{t in group c} w_t · h_t h_tᵀ (h the input of down_proj), its upper
 *          block triangle packed as src/engine/gram-layout.ts says (P ≈ I²/2). The positions are
 *          gathered first, so C groups cost what one Gram over all positions costs.
 * With `gramRows`: the same inputs but gramSplit; output gramRows [N, I] = √w_t · h_t instead, the
 *          rows whose Σ rowᵀ·row over a group is that group's Gram.
 */
import type { ModelSpec } from '../model/spec.js';
import { layerTensorShapes, type LayerTensorRole } from '../model/tensor-names.js';
import { gramLayout } from './gram-layout.js';
import type { LayerWires } from './layer-weights.js';
import { GraphBuilder, type WireType } from './onnx-graph.js';
import { type Precision, PRECISION_TRAITS, quantizedMatMul, quantizedWeightInput } from './precision.js';

export interface LayerGraphOptions {
  /** Emit the act² and block-influence statistics. */
  stats: boolean;
  /** Statistics per sequence of the batch ([B, G, I] and [B]) instead of summed over it. */
  perSequence?: boolean;
  /** Groups of the down_proj input Gram (0 or absent: no Gram). */
  gram?: number;
  /** Emit the rows of the down_proj input Gram (gramRows) instead of the Gram. */
  gramRows?: boolean;
  /** Take the keys and values of earlier positions and return them with this call's appended (decoding). */
  cache?: boolean;
  /** RoPE rows and mask per sequence of the batch (batched decoding: each sequence at its own position, seeing its own keys). */
  rowPositions?: boolean;
  /** How each weight matrix arrives (absent: f32); narrow ones are widened in the graph just before their MatMul. */
  wires?: LayerWires;
  /** How the projections multiply (absent: fp32); a quantized one takes its matrices as precision.ts's weightsFor gives them. */
  precision?: Precision;
}

export function buildLayerGraph(spec: ModelSpec, options: LayerGraphOptions): Uint8Array {
  const g = new GraphBuilder();
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: K, headDim: hd } = spec;
  const G = H / K;

  const x = g.input('hidden', ['B', 'T', D]);
  const cos = g.input('cos', options.rowPositions ? ['B', 'T', 1, hd] : ['T', 1, hd]);
  const sin = g.input('sin', options.rowPositions ? ['B', 'T', 1, hd] : ['T', 1, hd]);
  const mask = g.input('mask', options.rowPositions ? ['B', 1, 1, 'T', 'S'] : ['T', 'S']);
  const w: Partial<Record<LayerTensorRole, string>> = {};
  const wire = (role: LayerTensorRole): WireType => options.wires?.[role] ?? 'float32';
  const quantized = PRECISION_TRAITS[options.precision ?? 'fp32'].quantized;
  for (const [role, shape] of Object.entries(layerTensorShapes(spec)))
    w[role as LayerTensorRole] =
      quantized && shape.length === 2
        ? quantizedWeightInput(g, role as LayerTensorRole, shape)
        : g.weightInput(role, shape, wire(role as LayerTensorRole));

  const eps = g.scalar(spec.normEps);
  const two = g.scalar(2);
  const lastAxis = g.ints([-1]);
  // RMSNorm in the exact op pattern ONNX Runtime fuses into SimplifiedLayerNormalization.
  const rmsNorm = (v: string, weight: string): string => {
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [v, two]), lastAxis], { keepdims: 1 });
    return g.op('Mul', [g.op('Div', [v, g.op('Sqrt', [g.op('Add', [meanSquare, eps])])]), weight]);
  };
  const linear = (v: string, weight: LayerTensorRole, bias?: LayerTensorRole): string => {
    const y = quantized
      ? quantizedMatMul(g, v, w[weight]!, quantized)
      : g.op('MatMul', [v, g.op('Transpose', [g.widen(w[weight]!, wire(weight))], { perm: [1, 0] })]);
    return bias && w[bias] ? g.op('Add', [y, w[bias]!]) : y;
  };
  // rotate_half(v) = [−v₂, v₁] over the last axis; RoPE: v·cos + rotate_half(v)·sin.
  const rope = (v: string): string => {
    const [first, second] = g.multi('Split', [v], 2, { axis: -1, num_outputs: 2 });
    const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 });
    return g.op('Add', [g.op('Mul', [v, cos]), g.op('Mul', [rotated, sin])]);
  };

  // ── attention ──
  const normed = rmsNorm(x, w.inputNorm!);
  let q = g.op('Reshape', [linear(normed, 'q', 'qBias'), g.ints([0, 0, H, hd])]); // [B, T, H, hd]
  let k = g.op('Reshape', [linear(normed, 'k', 'kBias'), g.ints([0, 0, K, hd])]); // [B, T, K, hd]
  const v = g.op('Reshape', [linear(normed, 'v', 'vBias'), g.ints([0, 0, K, hd])]); // [B, T, K, hd]
  if (spec.family.qkNorm) {
    q = rmsNorm(q, w.qNorm!);
    k = rmsNorm(k, w.kNorm!);
  }
  q = rope(q);
  k = rope(k);
  // Query head h uses kv head ⌊h / G⌋: group queries as [B, K, G, T, hd] and broadcast k, v over G.
  const qGrouped = g.op('Transpose', [g.op('Reshape', [q, g.ints([0, 0, K, G, hd])])], { perm: [0, 2, 3, 1, 4] }); // [B, K, G, T, hd]
  let keys = g.op('Transpose', [k], { perm: [0, 2, 1, 3] }); // [B, K, T, hd]
  let values = g.op('Transpose', [v], { perm: [0, 2, 1, 3] }); // [B, K, T, hd]
  if (options.cache) {
    keys = g.op('Concat', [g.input('pastKey', ['B', K, 'P', hd]), keys], { axis: 2 }); // [B, K, S, hd]
    values = g.op('Concat', [g.input('pastValue', ['B', K, 'P', hd]), values], { axis: 2 }); // [B, K, S, hd]
    g.output(keys, 'key', ['B', K, 'S', hd]);
    g.output(values, 'value', ['B', K, 'S', hd]);
  }
  const kT = g.op('Unsqueeze', [g.op('Transpose', [keys], { perm: [0, 1, 3, 2] }), g.ints([2])]); // [B, K, 1, hd, S]
  const vT = g.op('Unsqueeze', [values, g.ints([2])]); // [B, K, 1, S, hd]
  let scores = g.op('Mul', [g.op('MatMul', [qGrouped, kT]), g.scalar(spec.attnScale)]); // [B, K, G, T, S]
  if (spec.attnSoftcap != null) {
    const cap = g.scalar(spec.attnSoftcap);
    scores = g.op('Mul', [g.op('Tanh', [g.op('Div', [scores, cap])]), cap]);
  }
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 });
  const context = g.op('MatMul', [probs, vT]); // [B, K, G, T, hd]
  const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 3, 1, 2, 4] }), g.ints([0, 0, H * hd])]); // [B, T, H·hd]
  let attnOut = linear(merged, 'o', 'oBias'); // [B, T, D]
  if (spec.family.sandwichNorms) attnOut = rmsNorm(attnOut, w.postAttnNorm!);
  const afterAttn = g.op('Add', [x, attnOut]);

  // ── feed-forward ──
  const ffnIn = rmsNorm(afterAttn, spec.family.sandwichNorms ? w.preFfnNorm! : w.postAttnNorm!);
  const gate = linear(ffnIn, 'gate', 'gateBias'); // [B, T, I]
  const up = linear(ffnIn, 'up', 'upBias'); // [B, T, I]
  const h = g.op('Mul', [activation(g, gate, spec.activation), up]); // [B, T, I]: input of down_proj
  let ffnOut = linear(h, 'down', 'downBias'); // [B, T, D]
  if (spec.family.sandwichNorms) ffnOut = rmsNorm(ffnOut, w.postFfnNorm!);
  const out = g.op('Add', [afterAttn, ffnOut]);
  g.output(out, 'hidden_out', ['B', 'T', D]);

  if (options.stats) {
    const weights = g.input('statWeights', ['B', 'T', 'G']);
    const byGroup = g.op('Transpose', [weights], { perm: [0, 2, 1] }); // [B, G, T]
    const perSequence = g.op('MatMul', [byGroup, g.op('Mul', [h, h])]); // [B, G, I]
    if (options.perSequence) g.output(perSequence, 'act2', ['B', 'G', I]);
    else g.output(g.op('ReduceSum', [perSequence, g.ints([0])], { keepdims: 0 }), 'act2', ['G', I]); // [G, I]
    const dot = g.op('ReduceSum', [g.op('Mul', [x, out]), g.ints([-1])], { keepdims: 0 }); // [B, T]
    const norm = (t: string) => g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [t, t]), g.ints([-1])], { keepdims: 0 })]);
    const cosine = g.op('Div', [dot, g.op('Max', [g.op('Mul', [norm(x), norm(out)]), g.scalar(1e-12)])]);
    const total = g.op('ReduceSum', [weights, g.ints([-1])], { keepdims: 0 }); // [B, T]
    const axes = options.perSequence ? [1] : [0, 1];
    const influence = g.op('ReduceSum', [g.op('Mul', [g.op('Sub', [g.scalar(1), cosine]), total]), g.ints(axes)], { keepdims: 0 }); // [] or [B]
    g.output(influence, 'influence', options.perSequence ? ['B'] : []);
  }
  if (options.gram) gramOutput(g, h, I, options.gram);
  if (options.gramRows) g.output(gramRows(g, h, I), 'gramRows', ['N', I]);
  return g.toBytes(`${spec.modelType}_layer`);
}

/**
 * gram [C, P]: per group, hᵀ·diag(w)·h over the gathered positions of that group, upper block
 * triangle only, packed as gram-layout.ts describes (block row i is one MatMul of the group's
 * weighted rows in block i against its rows from start_i on).
 */
export function gramOutput(g: GraphBuilder, h: string, I: number, groups: number): void {
  const layout = gramLayout(I);
  const rows = gramRows(g, h, I); // [N, I]
  const parts = groups === 1 ? [rows] : g.multi('Split', [rows, g.input('gramSplit', [groups], 'int64')], groups, { axis: 0 });
  const channels = (v: string, from: number, to: number) => g.op('Slice', [v, g.ints([from]), g.ints([to]), g.ints([0])]);
  const packed = parts.map((r) => {
    // Transposed once, so every block's channels are contiguous rows (16 % faster than slicing columns of [N, I]).
    const rT = g.op('Transpose', [r], { perm: [1, 0] }); // [I, N]
    const blockRows = layout.blocks.map(({ start, size }) => {
      const left = size === I ? rT : channels(rT, start, start + size); // [size, N]
      const right = start === 0 ? rT : channels(rT, start, I); // [I − start, N]
      return g.op('Reshape', [g.op('MatMul', [left, g.op('Transpose', [right], { perm: [1, 0] })]), g.ints([1, -1])]); // [1, size·(I − start)]
    });
    return blockRows.length === 1 ? blockRows[0] : g.op('Concat', blockRows, { axis: 1 }); // [1, P]
  });
  g.output(packed.length === 1 ? packed[0] : g.op('Concat', packed, { axis: 0 }), 'gram', [groups, layout.length]);
}

/** √w_t · h_t of the gathered positions (weights are ≥ 0; √w on both sides of hᵀ·diag(w)·h): [N, I]. */
function gramRows(g: GraphBuilder, h: string, I: number): string {
  const index = g.input('gramIndex', ['N'], 'int64');
  const scale = g.input('gramScale', ['N', 1]);
  return g.op('Mul', [g.op('Gather', [g.op('Reshape', [h, g.ints([-1, I])]), index], { axis: 0 }), g.op('Sqrt', [scale])]);
}

function activation(g: GraphBuilder, v: string, kind: ModelSpec['activation']): string {
  if (kind === 'silu') return g.op('Mul', [v, g.op('Sigmoid', [v])]);
  if (kind === 'gelu') {
    // 0.5·v·(1 + erf(v/√2))
    const erf = g.op('Erf', [g.op('Div', [v, g.scalar(Math.SQRT2)])]);
    return g.op('Mul', [g.op('Mul', [v, g.scalar(0.5)]), g.op('Add', [erf, g.scalar(1)])]);
  }
  // tanh approximation: 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³)))
  const cube = g.op('Mul', [g.op('Mul', [v, v]), v]);
  const inner = g.op('Mul', [g.op('Add', [v, g.op('Mul', [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [g.op('Mul', [v, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
}
