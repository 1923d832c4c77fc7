/**
 * Position-dependent inputs of the layer graph: RoPE tables and the additive attention mask,
 * computed in f32 the way transformers computes them.
 */
import type { LayerSpec, RopeSpec } from '../model/spec.js';

/** inv_freq[i] for i < hd/2, after the layer's RoPE scaling. */
export function inverseFrequencies(rope: RopeSpec, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const base = Math.fround(1 / Math.fround(rope.theta ** Math.fround((2 * i) / headDim)));
    inv[i] = rope.type === 'linear' ? base / rope.factor : rope.type === 'llama3' ? llama3Scaled(base, rope) : base;
  }
  return inv;
}

/** Llama 3.1 scaling: low frequencies divided by `factor`, high kept, a smooth ramp between. */
function llama3Scaled(freq: number, r: RopeSpec): number {
  const wavelength = (2 * Math.PI) / freq;
  const lowFreqWavelength = r.originalMaxPositions / r.lowFreqFactor;
  const highFreqWavelength = r.originalMaxPositions / r.highFreqFactor;
  if (wavelength < highFreqWavelength) return freq;
  if (wavelength > lowFreqWavelength) return freq / r.factor;
  const smooth = (r.originalMaxPositions / wavelength - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
  return (1 - smooth) * (freq / r.factor) + smooth * freq;
}

/** cos and sin tables [T, 1, hd] for positions start..start+T−1 (both halves repeat the frequencies). */
export function ropeTables(rope: RopeSpec, headDim: number, length: number, start = 0): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(rope, headDim);
  const half = headDim / 2;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((start + t) * inv[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * headDim + i] = c;
      cos[t * headDim + half + i] = c;
      sin[t * headDim + i] = s;
      sin[t * headDim + half + i] = s;
    }
  }
  return { cos, sin };
}

/**
 * Additive mask [T, P + T] for T queries at positions P..P+T−1 over keys at positions 0..P+T−1:
 * query q sees key k iff k ≤ q and (no window or q − k < window).
 */
export function attentionMask(layer: LayerSpec, length: number, past = 0): Float32Array {
  const keys = past + length;
  const mask = new Float32Array(length * keys);
  for (let t = 0; t < length; t++) {
    const q = past + t;
    for (let k = 0; k < keys; k++) {
      const visible = k <= q && (layer.window == null || q - k < layer.window);
      mask[t * keys + k] = visible ? 0 : -Infinity;
    }
  }
  return mask;
}
