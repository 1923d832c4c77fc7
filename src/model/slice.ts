/** Row and column selection on raw little-endian tensor bytes, in the stored dtype (no widening). */
import { DTYPE_BYTES } from './dtype.js';

/** Rows `keep` of a [R, C] tensor. */
export function sliceRows(bytes: Uint8Array, shape: number[], keep: ArrayLike<number>): Uint8Array {
  const rowBytes = (bytes.byteLength / shape[0]) | 0;
  const out = new Uint8Array(keep.length * rowBytes);
  for (let i = 0; i < keep.length; i++) out.set(bytes.subarray(keep[i] * rowBytes, (keep[i] + 1) * rowBytes), i * rowBytes);
  return out;
}

/** Columns `keep` of a [R, C] tensor. */
export function sliceColumns(bytes: Uint8Array, shape: number[], dtype: string, keep: ArrayLike<number>): Uint8Array {
  const [rows, cols] = shape;
  const width = DTYPE_BYTES[dtype];
  const words = width === 2 ? Uint16Array : width === 4 ? Uint32Array : width === 8 ? Float64Array : Uint8Array;
  const src = new words(new Uint8Array(bytes).buffer); // aligned copy
  const dst = new words(rows * keep.length);
  for (let r = 0; r < rows; r++) {
    const from = r * cols;
    const to = r * keep.length;
    for (let j = 0; j < keep.length; j++) dst[to + j] = src[from + keep[j]];
  }
  return new Uint8Array(dst.buffer);
}
