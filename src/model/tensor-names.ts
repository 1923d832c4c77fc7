/** Hugging Face tensor names and their expected shapes, derived from a ModelSpec. */
import type { ModelSpec } from './spec.js';

export const EMBED = 'model.embed_tokens.weight';
export const LM_HEAD = 'lm_head.weight';
export const FINAL_NORM = 'model.norm.weight';

export const layerPrefix = (layer: number): string => `model.layers.${layer}.`;

/** Role of each per-layer tensor (name suffix after `model.layers.{i}.`). */
export const LAYER_TENSORS = {
  inputNorm: 'input_layernorm.weight',
  q: 'self_attn.q_proj.weight',
  k: 'self_attn.k_proj.weight',
  v: 'self_attn.v_proj.weight',
  o: 'self_attn.o_proj.weight',
  qBias: 'self_attn.q_proj.bias',
  kBias: 'self_attn.k_proj.bias',
  vBias: 'self_attn.v_proj.bias',
  oBias: 'self_attn.o_proj.bias',
  qNorm: 'self_attn.q_norm.weight',
  kNorm: 'self_attn.k_norm.weight',
  postAttnNorm: 'post_attention_layernorm.weight',
  preFfnNorm: 'pre_feedforward_layernorm.weight',
  postFfnNorm: 'post_feedforward_layernorm.weight',
  gate: 'mlp.gate_proj.weight',
  up: 'mlp.up_proj.weight',
  down: 'mlp.down_proj.weight',
  gateBias: 'mlp.gate_proj.bias',
  upBias: 'mlp.up_proj.bias',
  downBias: 'mlp.down_proj.bias',
} as const;

export type LayerTensorRole = keyof typeof LAYER_TENSORS;

/** The tensors one decoder layer of `spec` has, with HF shapes ([out, in] for linear weights). */
export function layerTensorShapes(spec: ModelSpec): Partial<Record<LayerTensorRole, number[]>> {
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: K, headDim: hd } = spec;
  const shapes: Partial<Record<LayerTensorRole, number[]>> = {
    inputNorm: [D],
    q: [H * hd, D],
    k: [K * hd, D],
    v: [K * hd, D],
    o: [D, H * hd],
    postAttnNorm: [D],
    gate: [I, D],
    up: [I, D],
    down: [D, I],
  };
  if (spec.qkvBias) Object.assign(shapes, { qBias: [H * hd], kBias: [K * hd], vBias: [K * hd] });
  if (spec.oBias) shapes.oBias = [D];
  if (spec.family.qkNorm) Object.assign(shapes, { qNorm: [hd], kNorm: [hd] });
  if (spec.family.sandwichNorms) Object.assign(shapes, { preFfnNorm: [D], postFfnNorm: [D] });
  if (spec.mlpBias) Object.assign(shapes, { gateBias: [I], upBias: [I], downBias: [D] });
  return shapes;
}

/** Every tensor the checkpoint must hold, name → shape. */
export function expectedTensorShapes(spec: ModelSpec): Map<string, number[]> {
  const out = new Map<string, number[]>([[EMBED, [spec.vocabSize, spec.hiddenSize]]]);
  for (let l = 0; l < spec.numLayers; l++) {
    for (const [role, shape] of Object.entries(layerTensorShapes(spec))) {
      out.set(layerPrefix(l) + LAYER_TENSORS[role as LayerTensorRole], shape);
    }
  }
  out.set(FINAL_NORM, [spec.hiddenSize]);
  if (!spec.tiedEmbeddings) out.set(LM_HEAD, [spec.vocabSize, spec.hiddenSize]);
  return out;
}
