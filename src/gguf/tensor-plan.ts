/**
 * The GGUF tensors of a checkpoint: HF names → llama.cpp names, the storage type of each, and the
 * transforms llama.cpp's converter applies (interleaved-RoPE row permutation of q/k, Gemma's norm
 * shift, Llama 3's `rope_freqs`). Each tensor is read and encoded in row chunks, so memory stays
 * near one chunk whatever the tensor's size.
 */
import type { Checkpoint } from '../model/checkpoint.js';
import { readTensorF32 } from '../model/safetensors.js';
import type { RopeSpec } from '../model/spec.js';
import { EMBED, FINAL_NORM, LAYER_TENSORS, layerPrefix, LM_HEAD, type LayerTensorRole } from '../model/tensor-names.js';
import type { LlamaCppArchitecture } from './architectures.js';
import type { GgufTensor } from './gguf-file.js';
import { encode, type GgmlType, Q8_0_BLOCK } from './quantize.js';

export type OutputType = 'f32' | 'f16' | 'bf16' | 'q8_0';
export const OUTPUT_TYPES: OutputType[] = ['f32', 'f16', 'bf16', 'q8_0'];

/** Values per encoded chunk (64 MiB of f32). */
const CHUNK_VALUES = 16 << 20;

/** GGUF name of each per-layer HF tensor role; HF's post-attention norm depends on the architecture. */
const LAYER_NAMES: Record<Exclude<LayerTensorRole, 'postAttnNorm'>, string> = {
  inputNorm: 'attn_norm.weight',
  q: 'attn_q.weight',
  k: 'attn_k.weight',
  v: 'attn_v.weight',
  o: 'attn_output.weight',
  qBias: 'attn_q.bias',
  kBias: 'attn_k.bias',
  vBias: 'attn_v.bias',
  oBias: 'attn_output.bias',
  qNorm: 'attn_q_norm.weight',
  kNorm: 'attn_k_norm.weight',
  preFfnNorm: 'ffn_norm.weight',
  postFfnNorm: 'post_ffw_norm.weight',
  gate: 'ffn_gate.weight',
  up: 'ffn_up.weight',
  down: 'ffn_down.weight',
  gateBias: 'ffn_gate.bias',
  upBias: 'ffn_up.bias',
  downBias: 'ffn_down.bias',
};

const NORM_ROLES = new Set<LayerTensorRole>(['inputNorm', 'qNorm', 'kNorm', 'postAttnNorm', 'preFfnNorm', 'postFfnNorm']);

export function planTensors(ckpt: Checkpoint, arch: LlamaCppArchitecture, type: OutputType, rope: RopeSpec): GgufTensor[] {
  const { spec } = ckpt;
  const tensors: GgufTensor[] = [];
  const add = (hfName: string, name: string, transform: Transform = {}) => {
    const info = ckpt.tensors.get(hfName);
    if (!info) throw new Error(`GGUF export: tensor ${hfName} vanished from the checkpoint`);
    const dims = [...info.shape].reverse();
    const stored = storageType(type, dims);
    tensors.push({ name, dims, type: stored, produce: (write) => produceRows(info, stored, transform, write) });
  };

  add(EMBED, 'token_embd.weight');
  if (rope.type === 'llama3') tensors.push(ropeFreqs(rope, spec.headDim));
  for (let l = 0; l < spec.numLayers; l++) {
    for (const role of Object.keys(LAYER_TENSORS) as LayerTensorRole[]) {
      const hfName = layerPrefix(l) + LAYER_TENSORS[role];
      if (!ckpt.tensors.has(hfName)) continue;
      const name = role === 'postAttnNorm' ? `${arch.postAttentionNorm}.weight` : LAYER_NAMES[role];
      const transform: Transform = {};
      if (NORM_ROLES.has(role)) transform.shift = arch.normShift;
      if (arch.interleavedRope && (role === 'q' || role === 'qBias')) transform.heads = spec.numHeads;
      if (arch.interleavedRope && (role === 'k' || role === 'kBias')) transform.heads = spec.numKvHeads;
      add(hfName, `blk.${l}.${name}`, transform);
    }
  }
  add(FINAL_NORM, 'output_norm.weight', { shift: arch.normShift });
  if (!spec.tiedEmbeddings) add(LM_HEAD, 'output.weight');
  return tensors;
}

interface Transform {
  /** Added to every value (Gemma norms). */
  shift?: number;
  /** Permute rows within each of this many heads from rotate-half to interleaved pairs. */
  heads?: number;
}

/** As llama.cpp's converter: vectors stay F32; a matrix whose rows are not whole Q8_0 blocks stays F16. */
function storageType(type: OutputType, dims: number[]): GgmlType {
  if (dims.length === 1 || type === 'f32') return 'F32';
  if (type === 'q8_0') return dims[0] % Q8_0_BLOCK === 0 ? 'Q8_0' : 'F16';
  return type === 'f16' ? 'F16' : 'BF16';
}

function produceRows(info: Parameters<typeof readTensorF32>[0], type: GgmlType, t: Transform, write: (chunk: Uint8Array) => void): void {
  const rows = info.shape.length === 1 ? 1 : info.shape[0];
  const cols = info.shape.length === 1 ? info.shape[0] : info.shape.slice(1).reduce((a, b) => a * b, 1);
  // Permuted tensors (q/k) are small; everything else streams in chunks of whole rows.
  const step = t.heads || info.shape.length === 1 ? rows : Math.max(1, Math.floor(CHUNK_VALUES / cols));
  for (let r = 0; r < rows; r += step) {
    let values = info.shape.length === 1 ? readTensorF32(info) : readTensorF32(info, r, Math.min(rows, r + step));
    if (t.heads) values = interleaveRopeRows(values, t.heads, cols);
    if (t.shift) for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i] + t.shift);
    write(encode(values, type));
  }
}

/**
 * HF's q/k rows per head are [x_0 … x_{h/2−1}, y_0 … y_{h/2−1}] (rotate-half); llama.cpp's NORM
 * RoPE wants pairs (x_j, y_j) adjacent. values: [heads · hd, cols] → same shape, rows reordered.
 */
export function interleaveRopeRows(values: Float32Array, heads: number, cols: number): Float32Array {
  const rows = values.length / cols;
  const hd = rows / heads;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (let s = 0; s < 2; s++) {
        const from = h * hd + s * (hd / 2) + j;
        const to = h * hd + 2 * j + s;
        out.set(values.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** Llama 3 `rope_scaling`: llama.cpp divides each frequency by the factor in `rope_freqs` ([hd/2]). */
function ropeFreqs(rope: RopeSpec, headDim: number): GgufTensor {
  const factors = new Float32Array(headDim / 2);
  const lowWavelength = rope.originalMaxPositions / rope.lowFreqFactor;
  const highWavelength = rope.originalMaxPositions / rope.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / rope.theta ** ((2 * i) / headDim);
    const wavelength = (2 * Math.PI) / freq;
    if (wavelength < highWavelength) factors[i] = 1;
    else if (wavelength > lowWavelength) factors[i] = rope.factor;
    else {
      const smooth = (rope.originalMaxPositions / wavelength - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
      factors[i] = 1 / ((1 - smooth) / rope.factor + smooth);
    }
  }
  return { name: 'rope_freqs.weight', dims: [headDim / 2], type: 'F32', produce: (write) => write(new Uint8Array(factors.buffer)) };
}
