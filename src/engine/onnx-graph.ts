/**
 * A small builder for ONNX graphs: named values in, ops, named values out, serialised with the
 * onnx-proto schema. Only what the decoder graphs need.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { AttributeType } = onnx.AttributeProto;
const { DataType } = onnx.TensorProto;

/** The opset of every graph, except those that reinterpret bits (BitCast is new in opset 26). */
export const OPSET = 18;
const BITCAST_OPSET = 26;

/** A float attribute (plain numbers are INT, number[] is INTS). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (value: number): FloatAttr => new FloatAttr(value);
type AttrValue = number | number[] | string | FloatAttr;
type Dim = number | string;
type ElemType = 'float' | 'int64' | 'double' | 'float16' | 'uint16' | 'int8' | 'uint8';
const ELEM_TYPES: Record<ElemType, number> = {
  float: DataType.FLOAT,
  int64: DataType.INT64,
  double: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  uint16: DataType.UINT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
};

/**
 * How a weight travels from JavaScript into a graph: f32, f16 (ONNX Runtime's 'float16'), or
 * bf16 as its raw bits in a 'uint16' tensor (onnxruntime-node's Tensor has no bfloat16 type).
 */
export type WireType = 'float32' | 'float16' | 'bfloat16';
const WIRE_ELEM: Record<WireType, ElemType> = { float32: 'float', float16: 'float16', bfloat16: 'uint16' };

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;
  private opset = OPSET;
  /** Contributed operator sets used (e.g. com.microsoft: 1), imported beside the standard one. */
  private readonly domains = new Map<string, number>();

  input(name: string, dims: Dim[], type: ElemType = 'float'): string {
    this.inputs.push(valueInfo(name, dims, type));
    return name;
  }

  output(value: string, name: string, dims: Dim[], type: ElemType = 'float'): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, dims, type));
  }

  /** A weight input as it arrives from JavaScript (`wire`); widen it where it is used. */
  weightInput(name: string, dims: Dim[], wire: WireType): string {
    return this.input(name, dims, WIRE_ELEM[wire]);
  }

  /**
   * A narrow value as f32, exactly: f16 by Cast; bf16 bits (uint16) reinterpreted as bfloat16
   * (BitCast), then Cast. Widening a [4864, 896] tensor this way took 2.6 ms on one thread
   * against 4.5 ms for Cast to uint32, BitShift left 16, BitCast to float.
   */
  widen(value: string, wire: WireType): string {
    if (wire === 'float32') return value;
    if (wire === 'float16') return this.op('Cast', [value], { to: DataType.FLOAT });
    this.opset = Math.max(this.opset, BITCAST_OPSET);
    return this.op('Cast', [this.op('BitCast', [value], { to: DataType.BFLOAT16 })], { to: DataType.FLOAT });
  }

  /** A constant tensor baked into the graph. */
  constant(values: number[], dims: number[] = [values.length], type: 'float' | 'int64' = 'float'): string {
    const name = `const_${this.counter++}`;
    this.initializers.push(
      type === 'float'
        ? { name, dims, dataType: DataType.FLOAT, floatData: values }
        : { name, dims, dataType: DataType.INT64, int64Data: values },
    );
    return name;
  }

  /** A constant tensor baked into the graph from its raw little-endian bytes (any element type; e.g. quantized weights, which ONNX Runtime prepacks only when constant). */
  rawConstant(bytes: Uint8Array, dims: number[], type: ElemType): string {
    const name = `const_${this.counter++}`;
    this.initializers.push({ name, dims, dataType: ELEM_TYPES[type], rawData: bytes });
    return name;
  }

  scalar(value: number): string {
    return this.constant([value], []);
  }

  ints(values: number[]): string {
    return this.constant(values, [values.length], 'int64');
  }

  /** Appends one node; returns the name of its (first) output. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string, outputCount = 1): string {
    const base = outName ?? `${opType.toLowerCase()}_${this.counter++}`;
    const outputs = outputCount === 1 ? [base] : Array.from({ length: outputCount }, (_, i) => `${base}_${i}`);
    this.nodes.push({ opType, input: inputs, output: outputs, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return outputs[0];
  }

  /** Appends a node of a contributed operator set (ONNX Runtime's com.microsoft kernels); returns its output. */
  domainOp(domain: string, version: number, opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    this.domains.set(domain, version);
    const out = this.op(opType, inputs, attrs);
    this.nodes[this.nodes.length - 1].domain = domain;
    return out;
  }

  /** Appends a node with several outputs; returns their names. */
  multi(opType: string, inputs: string[], outputCount: number, attrs: Record<string, AttrValue> = {}): string[] {
    const base = `${opType.toLowerCase()}_${this.counter++}`;
    this.op(opType, inputs, attrs, base, outputCount);
    return Array.from({ length: outputCount }, (_, i) => `${base}_${i}`);
  }

  toBytes(graphName: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: this.opset > OPSET ? 10 : 8,
      producerName: 'compact',
      opsetImport: [{ domain: '', version: this.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
      graph: { name: graphName, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: Dim[], type: ElemType): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPES[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  if (v instanceof FloatAttr) return { name, type: AttributeType.FLOAT, f: v.value };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  return { name, type: AttributeType.INT, i: v };
}
