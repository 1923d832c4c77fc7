/**
 * Final norm → LM head → (soft-capping) → log-softmax, as an ONNX graph over flattened positions.
 * Inputs:  hidden [N, D], norm [D] (already 1+w for Gemma), targets [N, K] (K candidate tokens per
 *          position; padding slots may hold any valid id), and the head [V, D] (HF layout): one f32
 *          input `head`, or a narrow head (f16, or bf16 bits) in parts head_0, head_1, … of
 *          HEAD_PART_ROWS rows (see HeadWeights).
 * Outputs: logits [N, V] (a narrow head: only with `logits`); targetLogprobs [N, K] =
 *          log p(targets[n, k] | position n); argmax [N] = the greedy token at position n (first
 *          index on ties, like torch.argmax).
 * A narrow head is widened part by part inside the graph, and without `logits` each part's logits
 * [N, HEAD_PART_ROWS] are reduced (log-sum-exp, max, argmax, the targets that fall in it) before
 * the next part's are made, so neither the f32 head nor [N, V] logits are ever held whole, and a
 * run can take many rows (each run widens the whole head once).
 */
import type { ModelSpec } from '../model/spec.js';
import { HEAD_PART_ROWS } from './layer-weights.js';
import { GraphBuilder, type WireType } from './onnx-graph.js';

export function buildHeadGraph(spec: ModelSpec, wire: WireType = 'float32', options: { logits?: boolean } = {}): Uint8Array {
  const g = new GraphBuilder();
  const { hiddenSize: D, vocabSize: V } = spec;
  const hidden = g.input('hidden', ['N', D]);
  const norm = g.input('norm', [D]);
  const targets = g.input('targets', ['N', 'K'], 'int64');

  const meanSquare = g.op('ReduceMean', [g.op('Pow', [hidden, g.scalar(2)]), g.ints([-1])], { keepdims: 1 });
  const normed = g.op('Mul', [g.op('Div', [hidden, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(spec.normEps)])])]), norm]);
  const softcap = (logits: string): string => {
    if (spec.finalSoftcap == null) return logits;
    const cap = g.scalar(spec.finalSoftcap);
    return g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, cap])]), cap]);
  };
  const lastAxis = g.ints([1]);

  if (wire === 'float32') {
    const logits = softcap(g.op('Gemm', [normed, g.input('head', [V, D])], { transB: 1 })); // [N, V]
    g.output(logits, 'logits', ['N', V]);
    // log p(target) = logit[target] − logsumexp(logits): no second [N, V] buffer as LogSoftmax would make.
    const picked = g.op('GatherElements', [logits, targets], { axis: 1 }); // [N, K]
    const logsumexp = g.op('ReduceLogSumExp', [logits, lastAxis], { keepdims: 1 }); // [N, 1]
    g.output(g.op('Sub', [picked, logsumexp]), 'targetLogprobs', ['N', 'K']);
    g.output(g.op('ArgMax', [logits], { axis: 1, keepdims: 0, select_last_index: 0 }), 'argmax', ['N'], 'int64');
    return g.toBytes(`${spec.modelType}_head`);
  }

  const parts: string[] = []; // logits [N, rows] per part
  const sums: string[] = []; // logsumexp [N, 1] per part
  const maxima: string[] = []; // [N, 1]
  const winners: string[] = []; // global id of each part's argmax [N, 1]
  let picked = g.op('Mul', [g.op('Cast', [targets], { to: 1 }), g.scalar(0)]); // [N, K] zeros, filled part by part
  for (let c = 0, first = 0; first < V; c++, first += HEAD_PART_ROWS) {
    const rows = Math.min(HEAD_PART_ROWS, V - first);
    const logits = softcap(g.op('Gemm', [normed, g.widen(g.weightInput(`head_${c}`, [rows, D], wire), wire)], { transB: 1 })); // [N, rows]
    parts.push(logits);
    sums.push(g.op('ReduceLogSumExp', [logits, lastAxis], { keepdims: 1 }));
    maxima.push(g.op('ReduceMax', [logits, lastAxis], { keepdims: 1 }));
    winners.push(g.op('Add', [g.op('ArgMax', [logits], { axis: 1, keepdims: 1, select_last_index: 0 }), g.ints([first])]));
    // Targets in [first, first + rows): their logit from this part.
    const local = g.op('Sub', [targets, g.ints([first])]);
    const inside = g.op('And', [g.op('GreaterOrEqual', [local, g.ints([0])]), g.op('Less', [local, g.ints([rows])])]);
    const clamped = g.op('Max', [g.op('Min', [local, g.ints([rows - 1])]), g.ints([0])]);
    picked = g.op('Where', [inside, g.op('GatherElements', [logits, clamped], { axis: 1 }), picked]);
  }
  const join = (values: string[]) => (values.length === 1 ? values[0] : g.op('Concat', values, { axis: 1 }));
  if (options.logits) g.output(join(parts), 'logits', ['N', V]);
  const logsumexp = g.op('ReduceLogSumExp', [join(sums), lastAxis], { keepdims: 1 }); // [N, 1]
  g.output(g.op('Sub', [picked, logsumexp]), 'targetLogprobs', ['N', 'K']);
  // The first part holding the overall maximum, then its first index: torch.argmax's first index.
  const best = g.op('ArgMax', [join(maxima)], { axis: 1, keepdims: 1, select_last_index: 0 }); // [N, 1]
  g.output(g.op('Reshape', [g.op('GatherElements', [join(winners), best], { axis: 1 }), g.ints([-1])]), 'argmax', ['N'], 'int64');
  return g.toBytes(`${spec.modelType}_head`);
}
