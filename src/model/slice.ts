/**
 * Row and column selection on raw little-endian tensor bytes, in the stored dtype (no widening),
 * read and produced in bounded chunks: a tensor is never read whole, so one larger than memory or
 * than 2 GiB (Qwen2.5-72B's embedding is 2.49 GB) is sliced with about two chunks in memory.
 */
import { basename } from 'node:path';
import { check } from '../util/errors.js';
import { DTYPE_BYTES } from './dtype.js';
import { readTensorBytes, type TensorInfo } from './safetensors.js';

/** Bytes of source rows read at once (a chunk holds at least one row). Tests lower it. */
export const CHUNK = { bytes: 64 * 1024 * 1024 };

function rowLayout(info: TensorInfo): { rows: number; rowBytes: number; perChunk: number } {
  const rows = info.shape.length === 0 ? 1 : info.shape[0];
  const rowBytes = rows === 0 ? 0 : (info.end - info.begin) / rows;
  return { rows, rowBytes, perChunk: Math.max(1, Math.floor(CHUNK.bytes / Math.max(1, rowBytes))) };
}

/** Exponent bits all ones (NaN or ±∞) per float dtype, on the value's raw little-endian bits. */
const NON_FINITE: Record<string, { bytes: 2 | 4; mask: number }> = {
  F32: { bytes: 4, mask: 0x7f800000 },
  F16: { bytes: 2, mask: 0x7c00 },
  BF16: { bytes: 2, mask: 0x7f80 },
};

/**
 * Throws if `bytes` (values of `info` about to be written) hold NaN or ±∞: a corrupt checkpoint is
 * refused, not copied into a pruned one (whose evaluation would then fail on the tokens that use them).
 */
export function checkFinite(info: TensorInfo, bytes: Uint8Array): Uint8Array {
  const f = NON_FINITE[info.dtype];
  if (!f) return bytes;
  // Whole words in a typed array (platform order, little-endian as safetensors): 5× faster than a DataView.
  const aligned = bytes.byteOffset % f.bytes === 0 ? bytes : bytes.slice();
  const count = Math.floor(aligned.byteLength / f.bytes);
  const words =
    f.bytes === 4 ? new Uint32Array(aligned.buffer, aligned.byteOffset, count) : new Uint16Array(aligned.buffer, aligned.byteOffset, count);
  const mask = f.mask;
  let finite = true;
  for (let i = 0; i < count; i++) {
    if ((words[i] & mask) === mask) {
      finite = false;
      break;
    }
  }
  check(finite, () => `${basename(info.file)}: tensor ${info.name} holds NaN or infinite values; the checkpoint is corrupt`);
  return bytes;
}

/** The whole tensor, in chunks of rows. */
export function* tensorChunks(info: TensorInfo): Generator<Uint8Array> {
  const { rows, perChunk } = rowLayout(info);
  for (let r = 0; r < rows; r += perChunk) yield checkFinite(info, readTensorBytes(info, r, Math.min(rows, r + perChunk)));
}

/**
 * Rows `keep` (of the first dimension) in that order, in chunks: each reads one span of source rows
 * of at most a chunk and copies the kept ones out of it.
 */
export function* keptRowChunks(info: TensorInfo, keep: ArrayLike<number>): Generator<Uint8Array> {
  const { rowBytes, perChunk } = rowLayout(info);
  for (let i = 0; i < keep.length;) {
    let lo = keep[i];
    let hi = keep[i];
    let j = i + 1;
    for (; j < keep.length && j - i < perChunk; j++) {
      const nextLo = Math.min(lo, keep[j]);
      const nextHi = Math.max(hi, keep[j]);
      if (nextHi - nextLo + 1 > perChunk) break;
      lo = nextLo;
      hi = nextHi;
    }
    const src = readTensorBytes(info, lo, hi + 1);
    const out = new Uint8Array((j - i) * rowBytes);
    for (let k = i; k < j; k++) out.set(src.subarray((keep[k] - lo) * rowBytes, (keep[k] - lo + 1) * rowBytes), (k - i) * rowBytes);
    yield checkFinite(info, out);
    i = j;
  }
}

/** Columns `keep` of a [R, C] tensor, in chunks of rows. */
export function* keptColumnChunks(info: TensorInfo, keep: ArrayLike<number>): Generator<Uint8Array> {
  const { rows, perChunk } = rowLayout(info);
  for (let r = 0; r < rows; r += perChunk) {
    const end = Math.min(rows, r + perChunk);
    yield checkFinite(info, sliceColumns(readTensorBytes(info, r, end), [end - r, info.shape[1]], info.dtype, keep));
  }
}

/** Columns `keep` of a [R, C] tensor held in memory. */
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
