/**
 * A small builder for ONNX graphs: named values in, ops, named values out, serialised with the
 * onnx-proto schema. Only what the decoder graphs need.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { AttributeType } = onnx.AttributeProto;
const { DataType } = onnx.TensorProto;

export const OPSET = 18;

/** A float attribute (plain numbers are INT, number[] is INTS). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (value: number): FloatAttr => new FloatAttr(value);
type AttrValue = number | number[] | string | FloatAttr;
type Dim = number | string;
type ElemType = 'float' | 'int64' | 'double';
const ELEM_TYPES: Record<ElemType, number> = { float: DataType.FLOAT, int64: DataType.INT64, double: DataType.DOUBLE };

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  input(name: string, dims: Dim[], type: ElemType = 'float'): string {
    this.inputs.push(valueInfo(name, dims, type));
    return name;
  }

  output(value: string, name: string, dims: Dim[], type: ElemType = 'float'): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, dims, type));
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

  /** Appends a node with several outputs; returns their names. */
  multi(opType: string, inputs: string[], outputCount: number, attrs: Record<string, AttrValue> = {}): string[] {
    const base = `${opType.toLowerCase()}_${this.counter++}`;
    this.op(opType, inputs, attrs, base, outputCount);
    return Array.from({ length: outputCount }, (_, i) => `${base}_${i}`);
  }

  toBytes(graphName: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'compact',
      opsetImport: [{ domain: '', version: OPSET }],
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
