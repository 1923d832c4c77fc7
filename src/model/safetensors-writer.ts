/**
 * Writes a safetensors file tensor by tensor: the header is computed from names, dtypes and shapes
 * first, then each tensor's bytes are produced and written in order, chunk by chunk, so at most
 * one chunk of one tensor is in memory and no single write exceeds what `fs.writeSync` takes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DTYPE_BYTES } from './dtype.js';

export interface TensorToWrite {
  name: string;
  dtype: string;
  shape: number[];
  /** Produces the tensor's little-endian bytes when it is its turn to be written: whole, or in chunks. */
  bytes: () => Uint8Array | Iterable<Uint8Array>;
}

/** Largest single write (fs.writeSync refuses lengths of 2 GiB and more). */
const MAX_WRITE = 1 << 30;

/** Yields to the event loop between chunks, so an interrupt (Ctrl-C) is handled promptly. */
export async function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  // The header is written from a flat map of strings (metadata comes from a checked header).
  const header: Record<string, unknown> = metadata
    ? { __metadata__: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, String(v)])) }
    : {};
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // data starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(file, 'w');
  try {
    writeAll(fd, length);
    writeAll(fd, headerBytes);
    for (const [i, t] of tensors.entries()) {
      const produced = t.bytes();
      let written = 0;
      for (const chunk of produced instanceof Uint8Array ? [produced] : produced) {
        writeAll(fd, chunk);
        written += chunk.byteLength;
        await yieldToEventLoop();
      }
      if (written !== sizes[i]) throw new Error(`tensor ${t.name}: got ${written} bytes, header says ${sizes[i]}`);
    }
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done, Math.min(MAX_WRITE, bytes.byteLength - done));
}
