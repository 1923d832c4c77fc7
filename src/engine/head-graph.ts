/**
 * Final norm → LM head → (soft-capping) → log-softmax, as an ONNX graph over flattened positions.
 * Inputs:  hidden [N, D], norm [D] (already 1+w for Gemma), targets [N, K] (K candidate tokens per
 *          position; padding slots may hold any valid id), and the head [V, D] (HF layout): one f32
 *          input `head`, or a narrow head (f16, or bf16 bits) in parts head_0, head_1, … of
 *          HEAD_PART_ROWS rows (see HeadWeights).
 * Outputs: logits [N, V] (a narrow head: only with `logits`); targetLogprobs [N, K] =
 *          log p(targets[n, k] | position n); argmax [N] = the greedy token at position n (first
 *          index on ties, like torch.argmax); logsumexp [N, 1] (what buildExpectedGraph takes).
 * A narrow head is widened part by part inside the graph, and without `logits` each part's logits
 * [N, HEAD_PART_ROWS] are reduced (log-sum-exp, max, argmax, the targets that fall in it) before
 * the next part's are made, so neither the f32 head nor [N, V] logits are ever held whole, and a
 * run can take many rows (each run widens the whole head once).
 */
import type { ModelSpec } from '../model/spec.js';
import { HEAD_PART_ROWS } from './layer-weights.js';
import { check } from '../util/errors.js';
import { GraphBuilder, type WireType } from './onnx-graph.js';
import { type Precision, PRECISION_TRAITS, quantizedMatMul, quantizedWeightInput } from './precision.js';

const FLOAT = 1; // ONNX TensorProto data types
const INT64 = 7;

/** The graph's common part: inputs, the final norm, the logits of one part of the head (or of the whole f32 head). */
function headBase(spec: ModelSpec, wire: WireType, precision: Precision | undefined) {
  const g = new GraphBuilder();
  const { hiddenSize: D, vocabSize: V } = spec;
  const hidden = g.input('hidden', ['N', D]);
  const norm = g.input('norm', [D]);
  const meanSquare = g.op('ReduceMean', [g.op('Pow', [hidden, g.scalar(2)]), g.ints([-1])], { keepdims: 1 });
  const normed = g.op('Mul', [g.op('Div', [hidden, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(spec.normEps)])])]), norm]);
  const softcap = (logits: string): string => {
    if (spec.finalSoftcap == null) return logits;
    const cap = g.scalar(spec.finalSoftcap);
    return g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, cap])]), cap]);
  };
  // A quantized head (parts as codes and scales, see WeightQuantizer.headFor) takes the parts' path whatever its wire.
  const quantized = PRECISION_TRAITS[precision ?? 'fp32'].quantized;
  const whole = wire === 'float32' && !quantized;
  /** Logits [N, rows] of head rows first … first + rows − 1 (part c of a narrow head; the whole f32 head). */
  const logitsOf = (c: number, rows: number): string =>
    softcap(
      whole
        ? g.op('Gemm', [normed, g.input('head', [V, D])], { transB: 1 })
        : quantized
          ? quantizedMatMul(g, normed, quantizedWeightInput(g, `head_${c}`, [rows, D]), quantized)
          : g.op('Gemm', [normed, g.widen(g.weightInput(`head_${c}`, [rows, D], wire), wire)], { transB: 1 }),
    );
  /** The parts: [first, rows] of each (one part, all rows, for the whole f32 head). */
  const parts: { c: number; first: number; rows: number }[] = [];
  for (let c = 0, first = 0; first < V; c++, first += whole ? V : HEAD_PART_ROWS)
    parts.push({ c, first, rows: Math.min(whole ? V : HEAD_PART_ROWS, V - first) });
  return { g, whole, logitsOf, parts };
}

export function buildHeadGraph(
  spec: ModelSpec,
  wire: WireType = 'float32',
  options: { logits?: boolean; precision?: Precision } = {},
): Uint8Array {
  const { g, whole, logitsOf, parts: spans } = headBase(spec, wire, options.precision);
  const V = spec.vocabSize;
  const targets = g.input('targets', ['N', 'K'], 'int64');
  const lastAxis = g.ints([1]);

  if (whole) {
    const logits = logitsOf(0, V); // [N, V]
    g.output(logits, 'logits', ['N', V]);
    // log p(target) = logit[target] − logsumexp(logits): no second [N, V] buffer as LogSoftmax would make.
    const picked = g.op('GatherElements', [logits, targets], { axis: 1 }); // [N, K]
    const logsumexp = g.op('ReduceLogSumExp', [logits, lastAxis], { keepdims: 1 }); // [N, 1]
    g.output(logsumexp, 'logsumexp', ['N', 1]);
    g.output(g.op('Sub', [picked, logsumexp]), 'targetLogprobs', ['N', 'K']);
    g.output(g.op('ArgMax', [logits], { axis: 1, keepdims: 0, select_last_index: 0 }), 'argmax', ['N'], 'int64');
    return g.toBytes(`${spec.modelType}_head`);
  }

  // Each part's logits [N, rows] feed one Concat of their reductions (log-sum-exp, max, argmax as
  // a float, the logit of each target in the part, else 0), so ONNX Runtime finishes and frees a
  // part before the next: reductions reached through separate outputs kept all parts alive at once.
  check(V <= 2 ** 24, `vocabulary of ${V} ids: argmax ids are carried in f32, exact up to 2^24`);
  const parts: string[] = []; // logits [N, rows] per part
  const reduced: string[] = []; // [N, 3 + K] per part
  for (const { c, first, rows } of spans) {
    const logits = logitsOf(c, rows);
    parts.push(logits);
    const local = g.op('Sub', [targets, g.ints([first])]); // [N, K]
    const inside = g.op('And', [g.op('GreaterOrEqual', [local, g.ints([0])]), g.op('Less', [local, g.ints([rows])])]);
    const clamped = g.op('Max', [g.op('Min', [local, g.ints([rows - 1])]), g.ints([0])]);
    const picked = g.op('Where', [inside, g.op('GatherElements', [logits, clamped], { axis: 1 }), g.scalar(0)]); // [N, K]
    const localWinner = g.op('ArgMax', [logits], { axis: 1, keepdims: 1, select_last_index: 0 }); // [N, 1]
    const winner = g.op('Add', [localWinner, g.ints([first])]);
    const max = g.op('GatherElements', [logits, localWinner], { axis: 1 }); // [N, 1]: the maximum, without another pass
    const lse = g.op('ReduceLogSumExp', [logits, lastAxis], { keepdims: 1 }); // [N, 1]
    reduced.push(g.op('Concat', [lse, max, g.op('Cast', [winner], { to: FLOAT }), picked], { axis: 1 }));
  }
  if (options.logits) g.output(parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 1 }), 'logits', ['N', V]);
  const C = reduced.length;
  const all = g.op('Reshape', [C === 1 ? reduced[0] : g.op('Concat', reduced, { axis: 1 }), g.ints([0, C, -1])]); // [N, C, 3 + K]
  const column = (from: number, to: number) => g.op('Slice', [all, g.ints([from]), g.ints([to]), g.ints([2])]); // [N, C, to − from]
  const logsumexp = g.op('ReduceLogSumExp', [column(0, 1), g.ints([1])], { keepdims: 0 }); // [N, 1]
  g.output(logsumexp, 'logsumexp', ['N', 1]);
  const picked = g.op('ReduceSum', [column(3, 2 ** 62), g.ints([1])], { keepdims: 0 }); // [N, K]: one part holds each target
  g.output(g.op('Sub', [picked, logsumexp]), 'targetLogprobs', ['N', 'K']);
  // The first part holding the overall maximum, then its first index: torch.argmax's first index.
  const best = g.op('ArgMax', [column(1, 2)], { axis: 1, keepdims: 1, select_last_index: 0 }); // [N, 1, 1]
  const argmax = g.op('Cast', [g.op('GatherElements', [column(2, 3), best], { axis: 1 })], { to: INT64 }); // [N, 1, 1]
  g.output(g.op('Reshape', [argmax, g.ints([-1])]), 'argmax', ['N'], 'int64');
  return g.toBytes(`${spec.modelType}_head`);
}

/**
 * Σ over the N positions of the next-token probabilities, expected [1, V] = Σ_n exp(logits[n] −
 * logsumexp[n]), given each position's log-sum-exp (the head graph's `logsumexp` output) as input
 * `logsumexp` [N, 1]: a narrow head's part's logits are summed and freed before the next part's are
 * made, so even a 150k-token head needs neither [N, V] logits nor a wide copy of itself.
 */
export function buildExpectedGraph(spec: ModelSpec, wire: WireType = 'float32', options: { precision?: Precision } = {}): Uint8Array {
  const { g, logitsOf, parts } = headBase(spec, wire, options.precision);
  const logsumexp = g.input('logsumexp', ['N', 1]);
  const sums = parts.map(
    ({ c, rows }) => g.op('ReduceSum', [g.op('Exp', [g.op('Sub', [logitsOf(c, rows), logsumexp])]), g.ints([0])], { keepdims: 1 }), // [1, rows]
  );
  g.output(sums.length === 1 ? sums[0] : g.op('Concat', sums, { axis: 1 }), 'expected', [1, spec.vocabSize]);
  return g.toBytes(`${spec.modelType}_expected`);
}
