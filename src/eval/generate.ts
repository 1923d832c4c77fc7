/** Greedy decoding with the layer-wise engine (recomputes the prefix each step: for checks, not serving). */
import type { Engine } from '../engine/engine.js';

export async function greedyContinuation(engine: Engine, prompt: number[], newTokens: number): Promise<number[]> {
  const V = engine.spec.vocabSize;
  const ids = [...prompt];
  for (let step = 0; step < newTokens; step++) {
    const { logits } = await engine.forward([ids], { logits: true });
    ids.push(argmax(logits![0].subarray((ids.length - 1) * V, ids.length * V)));
  }
  return ids.slice(prompt.length);
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
