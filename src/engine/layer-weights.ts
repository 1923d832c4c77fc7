/** One decoder layer's weights as ONNX Runtime tensors in the layout the layer graph takes. */
import ort from 'onnxruntime-node';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { layerPrefix, LAYER_TENSORS, type LayerTensorRole } from '../model/tensor-names.js';
import { graphWeightShapes } from './layer-graph.js';

const NORM_ROLES: ReadonlySet<LayerTensorRole> = new Set(['inputNorm', 'qNorm', 'kNorm', 'postAttnNorm', 'preFfnNorm', 'postFfnNorm']);

export function loadLayerWeights(ckpt: Checkpoint, layer: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const plusOne = ckpt.spec.family.normPlusOne;
  for (const [role, shape] of Object.entries(graphWeightShapes(ckpt.spec))) {
    const data = loadF32(ckpt, layerPrefix(layer) + LAYER_TENSORS[role as LayerTensorRole]);
    if (plusOne && NORM_ROLES.has(role as LayerTensorRole)) addOne(data);
    feeds[role] = new ort.Tensor('float32', shape.length === 2 ? transpose(data, shape[1], shape[0]) : data, shape);
  }
  return feeds;
}

/** Gemma's RMSNorm multiplies by (1 + w), computed in f32 like transformers does. */
export function addOne(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = 1 + data[i];
  return data;
}

/** [rows, cols] → [cols, rows]. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  const block = 64;
  for (let r0 = 0; r0 < rows; r0 += block) {
    for (let c0 = 0; c0 < cols; c0 += block) {
      const rEnd = Math.min(r0 + block, rows);
      const cEnd = Math.min(c0 + block, cols);
      for (let r = r0; r < rEnd; r++) for (let c = c0; c < cEnd; c++) out[c * rows + r] = data[r * cols + c];
    }
  }
  return out;
}
