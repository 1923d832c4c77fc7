/** The model's weights as f32 ONNX Runtime tensors, in their Hugging Face layout: per layer, and the embedding and head. */
import ort from 'onnxruntime-node';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { EMBED, FINAL_NORM, layerPrefix, LAYER_TENSORS, layerTensorShapes, LM_HEAD, type LayerTensorRole } from '../model/tensor-names.js';

const NORM_ROLES: ReadonlySet<LayerTensorRole> = new Set(['inputNorm', 'qNorm', 'kNorm', 'postAttnNorm', 'preFfnNorm', 'postFfnNorm']);

export function loadLayerWeights(ckpt: Checkpoint, layer: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const plusOne = ckpt.spec.family.normPlusOne;
  for (const [role, shape] of Object.entries(layerTensorShapes(ckpt.spec))) {
    const data = loadF32(ckpt, layerPrefix(layer) + LAYER_TENSORS[role as LayerTensorRole]);
    if (plusOne && NORM_ROLES.has(role as LayerTensorRole)) addOne(data);
    feeds[role] = new ort.Tensor('float32', data, shape);
  }
  return feeds;
}

/** Gemma's RMSNorm multiplies by (1 + w), computed in f32 like transformers does. */
export function addOne(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = 1 + data[i];
  return data;
}

export function loadEmbedding(ckpt: Checkpoint): Float32Array {
  return loadF32(ckpt, EMBED); // [V, D]
}

/** The final norm [D] and the LM head [V, D]; a tied head is the embedding matrix itself (no copy). */
export function loadHeadWeights(ckpt: Checkpoint, embedding: Float32Array): { norm: ort.Tensor; weight: ort.Tensor } {
  const { hiddenSize: D, vocabSize: V } = ckpt.spec;
  const norm = loadF32(ckpt, FINAL_NORM);
  if (ckpt.spec.family.normPlusOne) addOne(norm);
  const weight = ckpt.spec.tiedEmbeddings ? embedding : loadF32(ckpt, LM_HEAD);
  return { norm: new ort.Tensor('float32', norm, [D]), weight: new ort.Tensor('float32', weight, [V, D]) };
}

/** Writes the input embeddings of `ids` (rows of [V, D], times the family's scale) into `out` from row `row` on. */
export function embedInto(out: Float32Array, row: number, ids: readonly number[], embedding: Float32Array, D: number, scale: number): void {
  ids.forEach((id, t) => {
    const src = embedding.subarray(id * D, (id + 1) * D);
    const dst = (row + t) * D;
    if (scale === 1) out.set(src, dst);
    else for (let d = 0; d < D; d++) out[dst + d] = src[d] * scale;
  });
}
