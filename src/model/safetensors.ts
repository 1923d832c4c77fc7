/**
 * Safetensors files, read lazily: the header is parsed and checked once; tensor bytes are read by
 * byte offset only when asked for, so a file is never loaded whole.
 * Format: u64 LE header length n, n bytes of JSON {name: {dtype, shape, data_offsets}}, data.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { CompactError, check } from '../util/errors.js';
import { DTYPE_BYTES, type FloatDtype, isFloatDtype, toFloat32 } from './dtype.js';

export interface TensorInfo {
  name: string;
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offsets of the tensor's data in `file`. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const where = basename(file);
  const fd = openFile(file);
  try {
    const fileSize = fstatSync(fd).size;
    check(fileSize >= 8, `${where}: file is ${fileSize} bytes, too short for a safetensors header`);
    const lengthBytes = readExactly(fd, 0, 8, where);
    const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    check(
      headerLength > 1 && headerLength <= MAX_HEADER_BYTES && 8 + headerLength <= fileSize,
      `${where}: header length ${headerLength} is invalid for a file of ${fileSize} bytes (truncated or not safetensors)`,
    );
    const text = Buffer.from(readExactly(fd, 8, headerLength, where)).toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new CompactError(`${where}: header is not valid JSON (${(e as Error).message})`);
    }
    check(json && typeof json === 'object' && !Array.isArray(json), `${where}: header is not a JSON object`);
    const dataStart = 8 + headerLength;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (entry ?? {}) as Record<string, string>;
        continue;
      }
      tensors.set(name, parseEntry(where, file, name, entry, dataStart, dataSize));
    }
    checkNoOverlap(where, [...tensors.values()]);
    return { file, tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

function parseEntry(where: string, file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  check(e && typeof e === 'object', `${where}: tensor ${name}: entry is not an object`);
  check(typeof e.dtype === 'string' && e.dtype in DTYPE_BYTES, `${where}: tensor ${name}: unknown dtype ${JSON.stringify(e.dtype)}`);
  check(
    Array.isArray(e.shape) && e.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
    `${where}: tensor ${name}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`,
  );
  const offsets = e.data_offsets;
  check(
    Array.isArray(offsets) && offsets.length === 2 && offsets.every((o) => Number.isSafeInteger(o) && o >= 0) && offsets[0] <= offsets[1],
    `${where}: tensor ${name}: data_offsets ${JSON.stringify(offsets)} are not [begin, end] with 0 <= begin <= end`,
  );
  const [begin, end] = offsets as [number, number];
  const shape = e.shape as number[];
  const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype];
  check(end - begin === expected, `${where}: tensor ${name}: ${e.dtype}${JSON.stringify(shape)} needs ${expected} bytes but data_offsets span ${end - begin}`);
  check(end <= dataSize, `${where}: tensor ${name}: data_offsets end ${end} is past the end of the data (${dataSize} bytes; file truncated?)`);
  return { name, file, dtype: e.dtype, shape, begin: dataStart + begin, end: dataStart + end };
}

function checkNoOverlap(where: string, tensors: TensorInfo[]): void {
  const sorted = [...tensors].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    check(sorted[i].begin >= sorted[i - 1].end, `${where}: tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap in the file`);
  }
}

/** Reads the raw bytes of a tensor (or of rows [rowStart, rowEnd) of its first dimension). */
export function readTensorBytes(info: TensorInfo, rowStart = 0, rowEnd = info.shape[0] ?? 1): Uint8Array {
  const rowBytes = info.shape.length === 0 ? info.end - info.begin : (info.end - info.begin) / Math.max(1, info.shape[0]);
  const fd = openFile(info.file);
  try {
    return readExactly(fd, info.begin + rowStart * rowBytes, (rowEnd - rowStart) * rowBytes, basename(info.file));
  } finally {
    closeSync(fd);
  }
}

/** Reads a float tensor (or a range of its rows) widened to f32. */
export function readTensorF32(info: TensorInfo, rowStart?: number, rowEnd?: number): Float32Array {
  check(isFloatDtype(info.dtype), `${basename(info.file)}: tensor ${info.name} has dtype ${info.dtype}; compact computes with F32, F16 or BF16`);
  return toFloat32(readTensorBytes(info, rowStart, rowEnd), info.dtype as FloatDtype);
}

function openFile(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    throw new CompactError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function readExactly(fd: number, position: number, length: number, where: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
    check(n > 0, `${where}: unexpected end of file at byte ${position + done} (file truncated?)`);
    done += n;
  }
  return out;
}
