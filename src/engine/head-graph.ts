/**
 * Final norm → LM head → (soft-capping) → log-softmax, as an ONNX graph over flattened positions.
 * Inputs:  hidden [N, D], norm [D] (already 1+w for Gemma), head [V, D] (HF layout), targets [N, K]
 *          (K candidate tokens per position; padding slots may hold any valid id).
 * Outputs: logits [N, V]; targetLogprobs [N, K] = log p(targets[n, k] | position n);
 *          argmax [N] = the greedy token at position n (first index on ties, like torch.argmax).
 */
import type { ModelSpec } from '../model/spec.js';
import { GraphBuilder } from './onnx-graph.js';

export function buildHeadGraph(spec: ModelSpec): Uint8Array {
  const g = new GraphBuilder();
  const { hiddenSize: D, vocabSize: V } = spec;
  const hidden = g.input('hidden', ['N', D]);
  const norm = g.input('norm', [D]);
  const head = g.input('head', [V, D]);
  const targets = g.input('targets', ['N', 'K'], 'int64');

  const meanSquare = g.op('ReduceMean', [g.op('Pow', [hidden, g.scalar(2)]), g.ints([-1])], { keepdims: 1 });
  const normed = g.op('Mul', [g.op('Div', [hidden, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(spec.normEps)])])]), norm]);
  let logits = g.op('Gemm', [normed, head], { transB: 1 }); // [N, V]
  if (spec.finalSoftcap != null) {
    const cap = g.scalar(spec.finalSoftcap);
    logits = g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, cap])]), cap]);
  }
  g.output(logits, 'logits', ['N', V]);
  // log p(target) = logit[target] − logsumexp(logits): no second [N, V] buffer as LogSoftmax would make.
  const picked = g.op('GatherElements', [logits, targets], { axis: 1 }); // [N, K]
  const logsumexp = g.op('ReduceLogSumExp', [logits, g.ints([1])], { keepdims: 1 }); // [N, 1]
  g.output(g.op('Sub', [picked, logsumexp]), 'targetLogprobs', ['N', 'K']);
  g.output(g.op('ArgMax', [logits], { axis: 1, keepdims: 0, select_last_index: 0 }), 'argmax', ['N'], 'int64');
  return g.toBytes(`${spec.modelType}_head`);
}
