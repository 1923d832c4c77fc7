/** One decoder layer's weights as f32 ONNX Runtime tensors, in their Hugging Face layout. */
import ort from 'onnxruntime-node';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { layerPrefix, LAYER_TENSORS, layerTensorShapes, type LayerTensorRole } from '../model/tensor-names.js';

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
