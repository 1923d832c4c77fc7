/**
 * The precisions the layer and head graphs can multiply activations by weight matrices in. fp32
 * is the reference (every fidelity test runs it); int8 is the fast path for calibration: weights
 * are quantized once when a layer (or the LM head) is loaded (symmetric, per output channel) and
 * ONNX Runtime's DynamicQuantizeMatMul quantizes the activations per call (asymmetric uint8, one
 * scale per call) and runs its integer GEMM. Everything else (norms, RoPE, attention scores,
 * softmax, log-softmax, the act², influence and Gram statistics) stays f32 in both.
 */
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import type { LayerTensorRole } from '../model/tensor-names.js';
import { HEAD_PART_ROWS, type HeadWeights, type LayerWeights } from './layer-weights.js';
import { checkChoice } from '../util/errors.js';
import { GraphBuilder, type WireType } from './onnx-graph.js';
import { createSession } from './session.js';

const INT8 = onnxProto.onnx.TensorProto.DataType.INT8;

export const PRECISIONS = ['fp32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * A library caller's `precision` (undefined: fp32), refused as the CLI's --precision choices
 * refuse a bad value, in the same words with the library's option name.
 */
export function checkPrecision(value: unknown): Precision {
  checkChoice('precision', value, PRECISIONS);
  return (value as Precision | undefined) ?? 'fp32';
}

/** How a quantized precision stores and multiplies a weight matrix. */
export interface QuantizedLinear {
  /** ONNX Runtime contrib operator (domain com.microsoft) that takes f32 activations and the codes. */
  op: 'DynamicQuantizeMatMul';
  /**
   * Largest weight code. 63 (7 bits), not 127: without AVX-512 VNNI, ONNX Runtime's u8×s8 kernel
   * adds pairs of products in int16 (vpmaddubsw), which saturates at 255 · 127 · 2; with 127 a
   * [2048, 896] × [896, 4864] product was off by 16 % (relative Frobenius), with 63 by 0.8 %, at
   * the same speed (bench/precision-matmul.ts).
   */
  maxCode: number;
}

export const PRECISION_TRAITS: Record<Precision, { quantized: QuantizedLinear | null; summary: string }> = {
  fp32: { quantized: null, summary: 'f32 MatMul: the reference; what eval and every fidelity test use' },
  int8: {
    quantized: { op: 'DynamicQuantizeMatMul', maxCode: 63 },
    summary: 'projections and LM head as integer GEMMs (weights int8 per output channel, activations uint8 per call); statistics still f32',
  },
};

/** The graph input holding a quantized matrix's per-output-channel scales. */
const scaleName = (role: string): string => `${role}_scale`;

/** Declares a quantized matrix's inputs (codes [in, out] int8, scales [out]); `shape` is its Hugging Face [out, in]. */
export function quantizedWeightInput(g: GraphBuilder, role: string, shape: number[]): string {
  const [out, inner] = shape;
  g.input(scaleName(role), [out]);
  return g.input(role, [inner, out], 'int8');
}

/** x [.., in] × Wᵀ → [.., out] (f32) with the quantized matrix declared by quantizedWeightInput. */
export function quantizedMatMul(g: GraphBuilder, x: string, weight: string, q: QuantizedLinear): string {
  return g.domainOp('com.microsoft', 1, q.op, [x, weight, scaleName(weight)]);
}

/**
 * Quantizes a layer's matrices for a quantized precision, inside ONNX Runtime (vectorised, all
 * threads): per matrix W [out, in] as stored (narrow ones widened in the graph), scale = max |W
 * row| / maxCode (1 for an all-zero row), codes = round(W / scale) as int8 (QuantizeLinear per
 * row), transposed to [in, out]. One session per wire type; dims are symbolic, so it serves every
 * matrix shape.
 */
export class WeightQuantizer {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(private readonly threads?: number) {}

  /**
   * A layer's weights as `precision` takes them: fp32 as given; quantized, every matrix (2-D feed)
   * replaced by its codes and scales (no longer narrow, so its wire is dropped). Vectors (norms,
   * biases) stay f32.
   */
  async weightsFor(weights: LayerWeights, precision: Precision): Promise<LayerWeights> {
    const q = PRECISION_TRAITS[precision].quantized;
    if (!q) return weights;
    return { feeds: await this.quantize(weights.feeds, (role) => weights.wires[role as LayerTensorRole] ?? 'float32', q), wires: {} };
  }

  /** Every matrix (2-D feed) of `feeds` as its codes [in, out] and scales [out]; other feeds as given. */
  private async quantize(
    feeds: Record<string, ort.Tensor>,
    wireOf: (name: string) => WireType,
    q: QuantizedLinear,
  ): Promise<Record<string, ort.Tensor>> {
    const out: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      if (tensor.dims.length !== 2) {
        out[name] = tensor;
        continue;
      }
      const { codes, scale } = await (await this.session(wireOf(name), q)).run({ w: tensor });
      out[name] = codes; // [in, out] int8
      out[scaleName(name)] = scale; // [out]
    }
    return out;
  }

  /**
   * The LM head as `precision` takes it: fp32 as given; quantized, in parts head_0, head_1, … of
   * HEAD_PART_ROWS rows (an f32 head is cut into views first), each as codes and scales.
   */
  async headFor(head: HeadWeights, precision: Precision): Promise<HeadWeights> {
    const q = PRECISION_TRAITS[precision].quantized;
    if (!q) return head;
    let parts = head.feeds; // head_0, head_1, … as stored
    if (head.feeds.head) {
      const data = head.feeds.head.data as Float32Array; // [V, D]
      const [V, D] = head.feeds.head.dims;
      parts = {};
      for (let c = 0; c * HEAD_PART_ROWS < V; c++) {
        const n = Math.min(HEAD_PART_ROWS, V - c * HEAD_PART_ROWS);
        parts[`head_${c}`] = new ort.Tensor('float32', data.subarray(c * HEAD_PART_ROWS * D, (c * HEAD_PART_ROWS + n) * D), [n, D]); // a view
      }
    }
    return { norm: head.norm, wire: head.wire, feeds: await this.quantize(parts, () => head.wire, q), precision };
  }

  private session(wire: WireType, q: QuantizedLinear): Promise<ort.InferenceSession> {
    const key = `${wire}:${q.maxCode}`;
    let session = this.sessions.get(key);
    if (!session) {
      const g = new GraphBuilder();
      const w = g.widen(g.weightInput('w', ['O', 'I'], wire), wire); // [O, I] f32
      const max = g.op('ReduceMax', [g.op('Abs', [w]), g.ints([1])], { keepdims: 0 }); // [O]
      const scale = g.op('Where', [g.op('Greater', [max, g.scalar(0)]), g.op('Div', [max, g.scalar(q.maxCode)]), g.scalar(1)]); // [O]
      const zero = g.op('Cast', [g.op('Mul', [max, g.scalar(0)])], { to: INT8 }); // [O] int8 zeros
      // round(w / scale) per row (half to even), saturated to int8 (|codes| ≤ maxCode already).
      const codes = g.op('QuantizeLinear', [w, scale, zero], { axis: 0 }); // [O, I] int8
      g.output(g.op('Transpose', [codes], { perm: [1, 0] }), 'codes', ['I', 'O'], 'int8');
      g.output(scale, 'scale', ['O']);
      session = createSession(g.toBytes('quantize_int8'), this.threads);
      this.sessions.set(key, session);
    }
    return session;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
