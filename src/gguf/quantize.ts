/**
 * ggml tensor types compact writes, and the f32 → type encoders. Rounding follows llama.cpp's own
 * converter (gguf-py): f16 round-to-nearest-even, bf16 as ggml's `ggml_compute_fp32_to_bf16`,
 * Q8_0 as `gguf.quants.Q8_0` (blocks of 32 values: an f16 scale d = max|x| / 127 and 32 int8
 * q = roundf(x / d), computed in f32).
 */
export const GGML_TYPES = {
  F32: { id: 0, fileType: 0 },
  F16: { id: 1, fileType: 1 },
  Q8_0: { id: 8, fileType: 7 },
  BF16: { id: 30, fileType: 32 },
} as const;

export type GgmlType = keyof typeof GGML_TYPES;

export const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

export function tensorBytes(type: GgmlType, dims: readonly number[]): number {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case 'F32':
      return 4 * n;
    case 'F16':
    case 'BF16':
      return 2 * n;
    case 'Q8_0':
      return (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

/** Encodes `values` (whole rows of a tensor; a multiple of 32 values for Q8_0) as `type`. */
export function encode(values: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16':
      return halves(values, f32ToF16);
    case 'BF16':
      return halves(values, f32ToBf16);
    case 'Q8_0':
      return q8_0(values);
  }
}

function halves(values: Float32Array, convert: (bits: number) => number): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = convert(bits[i]);
  return new Uint8Array(out.buffer);
}

/** IEEE binary32 bits → binary16 bits, round to nearest even (numpy's astype(float16)). */
export function f32ToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    return sign | roundShift(full, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | ((e << 10) + roundShift(mantissa, 13));
}

function roundShift(value: number, shift: number): number {
  const kept = Math.floor(value / 2 ** shift);
  const rest = value - kept * 2 ** shift;
  const half = 2 ** (shift - 1);
  return rest > half || (rest === half && kept % 2 === 1) ? kept + 1 : kept;
}

/** IEEE binary32 bits → bfloat16 bits, as ggml rounds (nearest even; NaN kept quiet). */
export function f32ToBf16(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}

function q8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[base + j]));
    const d = Math.fround(amax / 127);
    scratch[0] = d;
    view.setUint16(b * Q8_0_BLOCK_BYTES, f32ToF16(scratchBits[0]), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x = d === 0 ? 0 : Math.fround(values[base + j] / d);
      view.setInt8(b * Q8_0_BLOCK_BYTES + 2 + j, Math.sign(x) * Math.floor(Math.abs(x) + 0.5));
    }
  }
  return out;
}
