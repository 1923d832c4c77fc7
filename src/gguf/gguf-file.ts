/**
 * The GGUF v3 container (llama.cpp's ggml/docs/gguf.md): header, typed key/value metadata, tensor
 * infos, then the tensor data, each piece aligned to `general.alignment` (32). The writer is
 * streaming: the layout is computed from shapes and types up front, so the header goes out first
 * and each tensor's bytes are produced (and freed) one chunk at a time.
 */
import { fsyncSync, writeSync } from 'node:fs';
import { GGML_TYPES, type GgmlType, tensorBytes } from './quantize.js';

export const GGUF_ALIGNMENT = 32;

/** A metadata value with its GGUF type (numbers are ambiguous in JavaScript, so the type is explicit). */
export type MetadataValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'i32[]'; value: Int32Array }
  | { type: 'f32[]'; value: Float32Array };

export type Metadata = Map<string, MetadataValue>;

const VALUE_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

export interface GgufTensor {
  name: string;
  /** ggml order: ne[0] is the contiguous dimension (an HF [out, in] weight is [in, out] here). */
  dims: number[];
  type: GgmlType;
  /** Writes the tensor's encoded bytes, in order, through `write` (any number of chunks). */
  produce: (write: (chunk: Uint8Array) => void) => void;
}

/**
 * Writes `tensors` with `metadata` to the open file `fd` (a new, empty file). Yields to the event
 * loop between tensors so that an interrupt is handled (and the temp file removed) mid-write.
 */
export async function writeGguf(
  fd: number,
  metadata: Metadata,
  tensors: readonly GgufTensor[],
  onTensor?: (done: number, total: number) => void,
): Promise<void> {
  const out = new BufferedWriter(fd);
  out.u32(0x46554747); // "GGUF"
  out.u32(3);
  out.u64(tensors.length);
  out.u64(metadata.size);
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0;
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(GGML_TYPES[t.type].id);
    out.u64(offset);
    offset = align(offset + tensorBytes(t.type, t.dims));
  }
  out.pad();
  for (const [i, t] of tensors.entries()) {
    const start = out.position;
    t.produce((chunk) => out.bytes(chunk));
    const written = out.position - start;
    const expected = tensorBytes(t.type, t.dims);
    if (written !== expected) throw new Error(`GGUF writer: tensor ${t.name} produced ${written} bytes, expected ${expected}`);
    out.pad();
    onTensor?.(i + 1, tensors.length);
    await new Promise(setImmediate);
  }
  out.flush();
  fsyncSync(fd);
}

function writeValue(out: BufferedWriter, v: MetadataValue): void {
  switch (v.type) {
    case 'u32':
      out.u32(VALUE_TYPE.u32).u32(v.value);
      break;
    case 'i32':
      out.u32(VALUE_TYPE.i32).i32(v.value);
      break;
    case 'f32':
      out.u32(VALUE_TYPE.f32).f32(v.value);
      break;
    case 'bool':
      out.u32(VALUE_TYPE.bool).u8(v.value ? 1 : 0);
      break;
    case 'string':
      out.u32(VALUE_TYPE.string).string(v.value);
      break;
    case 'string[]':
      out.u32(VALUE_TYPE.array).u32(VALUE_TYPE.string).u64(v.value.length);
      for (const s of v.value) out.string(s);
      break;
    case 'i32[]':
      out.u32(VALUE_TYPE.array).u32(VALUE_TYPE.i32).u64(v.value.length);
      out.bytes(new Uint8Array(v.value.buffer, v.value.byteOffset, v.value.byteLength));
      break;
    case 'f32[]':
      out.u32(VALUE_TYPE.array).u32(VALUE_TYPE.f32).u64(v.value.length);
      out.bytes(new Uint8Array(v.value.buffer, v.value.byteOffset, v.value.byteLength));
      break;
  }
}

const align = (n: number): number => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

/** Little-endian writes through a 4 MiB buffer (the host is little-endian, as GGUF is). */
class BufferedWriter {
  private readonly buffer = Buffer.alloc(4 << 20);
  private used = 0;
  position = 0;

  constructor(private readonly fd: number) {}

  private room(n: number): void {
    if (this.used + n > this.buffer.length) this.flush();
  }

  u8(v: number): this {
    this.room(1);
    this.buffer.writeUInt8(v, this.used);
    return this.advance(1);
  }

  u32(v: number): this {
    this.room(4);
    this.buffer.writeUInt32LE(v, this.used);
    return this.advance(4);
  }

  i32(v: number): this {
    this.room(4);
    this.buffer.writeInt32LE(v, this.used);
    return this.advance(4);
  }

  f32(v: number): this {
    this.room(4);
    this.buffer.writeFloatLE(v, this.used);
    return this.advance(4);
  }

  u64(v: number): this {
    this.room(8);
    this.buffer.writeBigUInt64LE(BigInt(v), this.used);
    return this.advance(8);
  }

  string(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    return this.u64(bytes.length).bytes(bytes);
  }

  bytes(b: Uint8Array): this {
    if (b.length > this.buffer.length - this.used) {
      this.flush();
      writeAll(this.fd, b);
      this.position += b.length;
      return this;
    }
    this.buffer.set(b, this.used);
    return this.advance(b.length);
  }

  pad(): void {
    const n = align(this.position) - this.position;
    if (n > 0) this.bytes(new Uint8Array(n));
  }

  flush(): void {
    writeAll(this.fd, this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  private advance(n: number): this {
    this.used += n;
    this.position += n;
    return this;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  // writeSync takes at most 2 GiB per call.
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
