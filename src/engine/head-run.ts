/**
 * The LM head over the final hidden states of the Engine's micro-batches: log-probabilities of
 * requested target tokens, the greedy token, and (on request) full logits.
 */
import ort from 'onnxruntime-node';
import type { ModelSpec } from '../model/spec.js';
import { check, checkPositiveInteger } from '../util/errors.js';
import type { ForwardRequest, ForwardResult } from './engine.js';
import { HEAD_PART_ROWS, type HeadWeights } from './layer-weights.js';

/** What the head needs of a micro-batch: its sequences and their right-padded final hidden states. */
export interface HeadBatch {
  /** Indices of its sequences in the request. */
  members: number[];
  length: number;
  hidden: ort.Tensor; // [B, T, D]
}

/**
 * Runs the head in chunks of bounded logits memory: over every row of each micro-batch when
 * logits are requested, else only over the rows (positions) that have a target, and for expected
 * counts over every row that is not padding (then the expected graph runs on the same rows with
 * the head's log-sum-exp).
 */
export async function runHead(
  sessions: { head: ort.InferenceSession; expected?: ort.InferenceSession },
  head: HeadWeights,
  spec: ModelSpec,
  sequences: number[][],
  batches: HeadBatch[],
  request: ForwardRequest,
): Promise<Pick<ForwardResult, 'logprobs' | 'argmax' | 'logits'>> {
  const { hiddenSize: D, vocabSize: V } = spec;
  const K = request.targetGroups ?? 1;
  checkPositiveInteger(K, 'targetGroups');
  const logprobs: Float32Array[] = [];
  const argmax: Int32Array[] = [];
  const logits: Float32Array[] = [];
  // ≤ 64 MB of logits per run: 4× larger chunks were 12 % faster on the head but held 0.8 GB more (Qwen2.5-0.5B).
  // A narrow head without logits holds one part's logits at a time and widens the whole head
  // every run, so it takes as many rows as keep those at 64 MB.
  const parted = head.wire !== 'float32' || (head.precision ?? 'fp32') !== 'fp32';
  const rowsPerRun = parted && !request.logits ? (1 << 24) / HEAD_PART_ROWS : Math.max(1, Math.floor((1 << 24) / V));
  for (const batch of batches) {
    const T = batch.length;
    const rows = batch.members.length * T;
    const hidden = batch.hidden.data as Float32Array; // [B·T, D]
    const targets = new Int32Array(rows * K).fill(-1); // [B·T, K]
    for (const [b, s] of batch.members.entries()) {
      const seqTargets = request.targets?.[s];
      if (!seqTargets) continue;
      check(
        seqTargets.length === sequences[s].length * K,
        `targets of sequence ${s} has ${seqTargets.length} entries for ${sequences[s].length} tokens × ${K} groups`,
      );
      targets.set(seqTargets, b * T * K);
    }
    const padding = (r: number) => r % T >= sequences[batch.members[Math.floor(r / T)]].length;
    // Rows the head runs on: all of them for logits, else those with a target or, for expected counts, not padding.
    let selected: Int32Array;
    if (request.logits) selected = Int32Array.from({ length: rows }, (_, r) => r);
    else {
      const picked: number[] = [];
      for (let r = 0; r < rows; r++) {
        if ((request.expected && !padding(r)) || targets.subarray(r * K, (r + 1) * K).some((t) => t >= 0)) picked.push(r);
      }
      selected = Int32Array.from(picked);
    }
    const batchLogprobs = new Float32Array(rows * K).fill(NaN);
    const batchArgmax = new Int32Array(rows).fill(-1);
    const batchLogits = request.logits ? new Float32Array(rows * V) : undefined;
    for (let i0 = 0; i0 < selected.length; i0 += rowsPerRun) {
      const n = Math.min(rowsPerRun, selected.length - i0);
      const first = selected[i0];
      const contiguous = selected[i0 + n - 1] - first === n - 1;
      let x: Float32Array;
      if (contiguous) x = hidden.subarray(first * D, (first + n) * D);
      else {
        x = new Float32Array(n * D); // [n, D] gathered rows
        for (let i = 0; i < n; i++) x.set(hidden.subarray(selected[i0 + i] * D, (selected[i0 + i] + 1) * D), i * D);
      }
      const ids = new BigInt64Array(n * K); // [n, K]
      for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) ids[i * K + k] = BigInt(Math.max(0, targets[selected[i0 + i] * K + k]));
      const hiddenRows = new ort.Tensor('float32', x, [n, D]);
      const out = await sessions.head.run(
        { hidden: hiddenRows, norm: head.norm, ...head.feeds, targets: new ort.Tensor('int64', ids, [n, K]) },
        [...(request.logits ? ['logits'] : []), 'targetLogprobs', 'argmax', ...(request.expected ? ['logsumexp'] : [])],
      );
      if (request.expected) {
        // A padding row's log-sum-exp set to +∞ makes its probabilities exactly 0.
        const lse = Float32Array.from(out.logsumexp.data as Float32Array, (x, i) => (padding(selected[i0 + i]) ? Infinity : x)); // [n]
        const sums = await sessions.expected!.run({
          hidden: hiddenRows,
          norm: head.norm,
          ...head.feeds,
          logsumexp: new ort.Tensor('float32', lse, [n, 1]),
        });
        const expected = sums.expected.data as Float32Array; // [V]
        for (let v = 0; v < V; v++) request.expected[v] += expected[v];
      }
      const lp = out.targetLogprobs.data as Float32Array;
      const am = out.argmax.data as BigInt64Array;
      for (let i = 0; i < n; i++) {
        const r = selected[i0 + i];
        let any = false;
        for (let k = 0; k < K; k++) {
          if (targets[r * K + k] < 0) continue;
          batchLogprobs[r * K + k] = lp[i * K + k];
          any = true;
        }
        if (any) batchArgmax[r] = Number(am[i]);
      }
      if (batchLogits) batchLogits.set(out.logits.data as Float32Array, first * V); // all rows, in order
    }
    for (const [b, s] of batch.members.entries()) {
      const n = sequences[s].length;
      logprobs[s] = batchLogprobs.slice(b * T * K, (b * T + n) * K);
      argmax[s] = batchArgmax.slice(b * T, b * T + n);
      if (batchLogits) logits[s] = batchLogits.slice(b * T * V, (b * T + n) * V);
    }
  }
  return { ...(request.targets ? { logprobs, argmax } : {}), ...(request.logits ? { logits } : {}) };
}
