/**
 * Safetensors files, read lazily: the header is parsed and checked once; tensor bytes are read by
 * byte offset only when asked for, so a file is never loaded whole.
 * Format: u64 LE header length n, n bytes of JSON {name: {dtype, shape, data_offsets}}, data.
 * The header is checked by the rules of Hugging Face's own reader (the `safetensors` crate's
 * `Metadata::validate`): a header of at most 100,000,000 bytes starting with '{'; tensors, sorted
 * by offsets, tile the data exactly (no hole, no overlap, the last one ending at the end of the
 * file); `__metadata__` a map of string to string. A file it would refuse is refused here.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { CompactError, check } from '../util/errors.js';
import { depthAtMost, describeJson, isJsonObject, MAX_JSON_DEPTH, oneLine, openUserFile } from '../util/files.js';
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

/** The safetensors crate's MAX_HEADER_SIZE. */
const MAX_HEADER_BYTES = 100_000_000;

export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const where = basename(file);
  const { fd, size: fileSize } = openUserFile(file, { within: dirname(file) });
  try {
    check(fileSize >= 8, `${where}: file is ${fileSize} bytes, too short for a safetensors header`);
    const lengthBytes = readExactly(fd, 0, 8, where);
    const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    check(
      headerLength > 1 && headerLength <= MAX_HEADER_BYTES && 8 + headerLength <= fileSize,
      `${where}: header length ${headerLength} is invalid for a file of ${fileSize} bytes (truncated or not safetensors)`,
    );
    const headerBytes = readExactly(fd, 8, headerLength, where);
    check(headerBytes[0] === 0x7b, `${where}: header does not start with '{' (not safetensors)`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    } catch {
      throw new CompactError(`${where}: header is not valid UTF-8`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new CompactError(`${where}: header is not valid JSON (${oneLine((e as Error).message)})`);
    }
    check(isJsonObject(json), `${where}: header is not a JSON object`);
    // V8 parses any depth, but quoting a 100,000-deep dtype in an error overflowed the stack
    check(depthAtMost(text, MAX_JSON_DEPTH), `${where}: header JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
    const dataStart = 8 + headerLength;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = parseMetadata(where, entry);
        continue;
      }
      tensors.set(name, parseEntry(where, file, name, entry, dataStart, dataSize));
    }
    checkTiling(where, [...tensors.values()], dataStart, dataSize);
    return { file, tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

function parseEntry(where: string, file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  check(e && typeof e === 'object', `${where}: tensor ${name}: entry is not an object`);
  check(
    typeof e.dtype === 'string' && Object.hasOwn(DTYPE_BYTES, e.dtype),
    `${where}: tensor ${name}: unknown dtype ${JSON.stringify(e.dtype)}`,
  );
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
  check(Number.isSafeInteger(expected), `${where}: tensor ${name}: shape ${JSON.stringify(shape)} is too large`);
  check(
    end - begin === expected,
    `${where}: tensor ${name}: ${e.dtype}${JSON.stringify(shape)} needs ${expected} bytes but data_offsets span ${end - begin}`,
  );
  check(
    end <= dataSize,
    `${where}: tensor ${name}: data_offsets end ${end} is past the end of the data (${dataSize} bytes; file truncated?)`,
  );
  return { name, file, dtype: e.dtype, shape, begin: dataStart + begin, end: dataStart + end };
}

/** `__metadata__`: a map of string to string (anything else makes Hugging Face's reader refuse the file). */
function parseMetadata(where: string, entry: unknown): Record<string, string> {
  if (entry == null) return {};
  check(isJsonObject(entry), `${where}: __metadata__ must be an object of strings, got ${describeJson(entry)}`);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(entry)) {
    check(
      typeof value === 'string',
      `${where}: __metadata__ ${oneLine(JSON.stringify(key), 60)} must be a string, got ${describeJson(value)}`,
    );
    metadata[key] = value;
  }
  return metadata;
}

/** Sorted by offsets, the tensors tile the data: each starts where the previous one ends, the last ends at the end of the file. */
function checkTiling(where: string, tensors: TensorInfo[], dataStart: number, dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let end = dataStart;
  let previous: TensorInfo | undefined;
  for (const t of sorted) {
    check(t.begin >= end, `${where}: tensors ${previous?.name} and ${t.name} overlap in the file`);
    check(t.begin === end, `${where}: ${t.begin - end} bytes before tensor ${t.name} belong to no tensor (a hole in the data)`);
    end = t.end;
    previous = t;
  }
  check(
    end === dataStart + dataSize,
    `${where}: the last ${dataStart + dataSize - end} bytes of the file belong to no tensor (data not fully covered: wrong header length or a stray tail)`,
  );
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

/** Reads rows `rows` (any order, repeats allowed) of a tensor's first dimension, concatenated, through one open file. */
export function readTensorRows(info: TensorInfo, rows: readonly number[]): Uint8Array {
  const rowBytes = (info.end - info.begin) / Math.max(1, info.shape[0]);
  const out = new Uint8Array(rows.length * rowBytes);
  const fd = openFile(info.file);
  try {
    rows.forEach((r, i) => readInto(fd, out, i * rowBytes, info.begin + r * rowBytes, rowBytes, basename(info.file)));
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Reads a float tensor (or a range of its rows) widened to f32. */
export function readTensorF32(info: TensorInfo, rowStart?: number, rowEnd?: number): Float32Array {
  check(
    isFloatDtype(info.dtype),
    `${basename(info.file)}: tensor ${info.name} has dtype ${info.dtype}; compact computes with F32, F16 or BF16`,
  );
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
  return readInto(fd, new Uint8Array(length), 0, position, length, where);
}

/** Reads `length` bytes at file `position` into `out` from `offset` on. */
function readInto(fd: number, out: Uint8Array, offset: number, position: number, length: number, where: string): Uint8Array {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, offset + done, Math.min(length - done, 1 << 30), position + done);
    check(n > 0, `${where}: unexpected end of file at byte ${position + done} (file truncated?)`);
    done += n;
  }
  return out;
}
