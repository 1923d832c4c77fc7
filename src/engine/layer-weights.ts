/**
 * The model's weights as ONNX Runtime tensors in their Hugging Face layout. Matrices travel as
 * stored (f32, f16, or bf16 bits; see WireType) and are widened to f32 inside the graph, so a
 * BF16 checkpoint's weights take 2 bytes per parameter in memory, not 4; vectors (norms, biases)
 * are widened here (small, and Gemma's 1 + w is computed in f32). The embedding is never held
 * whole for lookups: rows are read from the file as needed.
 */
import ort from 'onnxruntime-node';
import { type Checkpoint, loadF32 } from '../model/checkpoint.js';
import { type FloatDtype, toFloat32 } from '../model/dtype.js';
import { readTensorBytes, readTensorRows, type TensorInfo } from '../model/safetensors.js';
import { EMBED, FINAL_NORM, layerPrefix, LAYER_TENSORS, layerTensorShapes, LM_HEAD, type LayerTensorRole } from '../model/tensor-names.js';
import { CompactError } from '../util/errors.js';
import type { WireType } from './onnx-graph.js';
import type { Precision } from './precision.js';

const NORM_ROLES: ReadonlySet<LayerTensorRole> = new Set(['inputNorm', 'qNorm', 'kNorm', 'postAttnNorm', 'preFfnNorm', 'postFfnNorm']);

/** How each matrix of a layer arrives in the graph (roles not listed: f32). */
export type LayerWires = Partial<Record<LayerTensorRole, WireType>>;

export interface LayerWeights {
  feeds: Record<string, ort.Tensor>;
  wires: LayerWires;
}

const WIRE: Record<FloatDtype, WireType> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
const TENSOR_TYPE = { float32: 'float32', float16: 'float16', bfloat16: 'uint16' } as const;

/** Layer `layer`'s weights: matrices as stored (`narrow`) or widened to f32 here; vectors in f32. */
export function loadLayerWeights(ckpt: Checkpoint, layer: number, narrow = true): LayerWeights {
  const feeds: Record<string, ort.Tensor> = {};
  const wires: LayerWires = {};
  const plusOne = ckpt.spec.family.normPlusOne;
  for (const [r, shape] of Object.entries(layerTensorShapes(ckpt.spec))) {
    const role = r as LayerTensorRole;
    const name = layerPrefix(layer) + LAYER_TENSORS[role];
    if (shape.length === 2 && narrow) {
      const { wire, tensor } = storedTensor(tensorInfo(ckpt, name), shape);
      feeds[role] = tensor;
      if (wire !== 'float32') wires[role] = wire;
      continue;
    }
    const data = loadF32(ckpt, name);
    if (plusOne && NORM_ROLES.has(role)) addOne(data);
    feeds[role] = new ort.Tensor('float32', data, shape);
  }
  return { feeds, wires };
}

/** A tensor's bytes as an ONNX Runtime tensor of its own width (bf16 as uint16 bits). */
function storedTensor(info: TensorInfo, shape: number[]): { wire: WireType; tensor: ort.Tensor } {
  const bytes = readTensorBytes(info); // a fresh, aligned buffer
  const wire = WIRE[info.dtype as FloatDtype];
  const data =
    wire === 'float32' ? new Float32Array(bytes.buffer, 0, bytes.length / 4) : new Uint16Array(bytes.buffer, 0, bytes.length / 2);
  return { wire, tensor: new ort.Tensor(TENSOR_TYPE[wire], data, shape) };
}

function tensorInfo(ckpt: Checkpoint, name: string): TensorInfo {
  const info = ckpt.tensors.get(name);
  if (!info) throw new CompactError(`${ckpt.dir}: tensor ${name} is missing`);
  return info;
}

/** Gemma's RMSNorm multiplies by (1 + w), computed in f32 like transformers does. */
export function addOne(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = 1 + data[i];
  return data;
}

/** Rows of each part of a narrow head (see HeadWeights): one part's logits for 4096 positions are 64 MB. */
export const HEAD_PART_ROWS = 4096;

/**
 * The final norm [D] (f32) and the LM head [V, D]: one f32 input `head`, or a narrow (f16/bf16)
 * head as stored, in parts `head_0`, `head_1`, … of HEAD_PART_ROWS rows (views of one buffer) that
 * the head graph widens one at a time.
 */
export interface HeadWeights {
  norm: ort.Tensor;
  wire: WireType;
  feeds: Record<string, ort.Tensor>;
  /** A quantized head (precision.ts WeightQuantizer.headFor): parts as codes and scales, whatever the wire. */
  precision?: Precision;
}

/** The head's weights, as stored (`narrow`) or widened to f32 here; a tied head is the embedding matrix. */
export function loadHeadWeights(ckpt: Checkpoint, narrow = true): HeadWeights {
  const { hiddenSize: D, vocabSize: V } = ckpt.spec;
  const norm = loadF32(ckpt, FINAL_NORM);
  if (ckpt.spec.family.normPlusOne) addOne(norm);
  const name = ckpt.spec.tiedEmbeddings ? EMBED : LM_HEAD;
  const { wire, tensor } = narrow
    ? storedTensor(tensorInfo(ckpt, name), [V, D])
    : { wire: 'float32' as const, tensor: new ort.Tensor('float32', loadF32(ckpt, name), [V, D]) };
  const feeds: Record<string, ort.Tensor> = {};
  if (wire === 'float32') feeds.head = tensor;
  else {
    const data = tensor.data as Uint16Array; // [V, D]
    const rows = HEAD_PART_ROWS;
    for (let c = 0; c * rows < V; c++) {
      const n = Math.min(rows, V - c * rows);
      feeds[`head_${c}`] = new ort.Tensor(tensor.type as 'uint16', data.subarray(c * rows * D, (c * rows + n) * D), [n, D]); // a view, no copy
    }
  }
  return { norm: new ort.Tensor('float32', norm, [D]), wire, feeds };
}

/**
 * Writes the input embeddings of `ids` (rows of [V, D] read from the checkpoint, widened, times
 * the family's scale) into `out` from row `row` on.
 */
export function embedInto(out: Float32Array, row: number, ids: readonly number[], ckpt: Checkpoint): void {
  const { hiddenSize: D, embedScale: scale } = ckpt.spec;
  const info = tensorInfo(ckpt, EMBED);
  const rows = toFloat32(readTensorRows(info, ids), info.dtype as FloatDtype); // [n, D]
  if (scale === 1) out.set(rows, row * D);
  else for (let i = 0; i < rows.length; i++) out[row * D + i] = rows[i] * scale;
}
