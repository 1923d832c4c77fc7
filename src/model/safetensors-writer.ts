/**
 * Writes a safetensors file tensor by tensor: the header is computed from names, dtypes and shapes
 * first, then each tensor's bytes are produced and written in order, so only one is in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DTYPE_BYTES } from './dtype.js';

export interface TensorToWrite {
  name: string;
  dtype: string;
  shape: number[];
  /** Produces the tensor's little-endian bytes when it is its turn to be written. */
  bytes: () => Uint8Array;
}

/** Yields to the event loop between tensors, so an interrupt (Ctrl-C) is handled promptly. */
export async function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // data starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, length);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      const bytes = t.bytes();
      const expected = (header[t.name] as { data_offsets: number[] }).data_offsets;
      if (bytes.byteLength !== expected[1] - expected[0]) throw new Error(`tensor ${t.name}: got ${bytes.byteLength} bytes, header says ${expected[1] - expected[0]}`);
      writeSync(fd, bytes);
      await yieldToEventLoop();
    }
  } finally {
    closeSync(fd);
  }
}
