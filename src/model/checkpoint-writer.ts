/**
 * Writes a checkpoint derived from another one, tensor by tensor: each source tensor is kept,
 * edited (sliced, renamed) or dropped by `edit`; dtypes and the shard layout are preserved, and
 * only one tensor is in memory at a time.
 */
import { copyFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from './checkpoint.js';
import { INDEX_FILE } from './checkpoint.js';
import { DTYPE_BYTES } from './dtype.js';
import { readTensorBytes, type TensorInfo } from './safetensors.js';
import { type TensorToWrite, writeSafetensors } from './safetensors-writer.js';

/** What to write for a source tensor: null drops it. */
export type TensorEdit = (info: TensorInfo) => Omit<TensorToWrite, 'dtype'> | null;

export const keepTensor: TensorEdit = (info) => ({ name: info.name, shape: info.shape, bytes: () => readTensorBytes(info) });

export interface WrittenWeights {
  tensors: number;
  bytes: number;
}

export async function writeWeights(src: Checkpoint, outDir: string, edit: TensorEdit, onTensor?: (done: number, total: number) => void): Promise<WrittenWeights> {
  const weightMap: Record<string, string> = {};
  let totalBytes = 0;
  let done = 0;
  for (const shard of src.shards) {
    const inFile = [...src.tensors.values()].filter((t) => t.file === join(src.dir, shard.file)).sort((a, b) => a.begin - b.begin);
    const out: TensorToWrite[] = [];
    for (const info of inFile) {
      const edited = edit(info);
      if (!edited) continue;
      out.push({
        ...edited,
        dtype: info.dtype,
        bytes: () => {
          const bytes = edited.bytes();
          onTensor?.(++done, src.tensors.size);
          return bytes;
        },
      });
      weightMap[edited.name] = shard.file;
      totalBytes += edited.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[info.dtype];
    }
    await writeSafetensors(join(outDir, shard.file), out, shard.metadata);
  }
  if (src.shards.length > 1) {
    const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeFileSync(join(outDir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sorted }, null, 2)}\n`);
  }
  return { tensors: Object.keys(weightMap).length, bytes: totalBytes };
}

/** Copies the checkpoint's other top-level files (tokenizer, generation config, …) except `skip`. */
export function copyOtherFiles(src: Checkpoint, outDir: string, skip: Set<string>): void {
  const weights = new Set([...src.shards.map((s) => s.file), INDEX_FILE]);
  for (const name of readdirSync(src.dir).sort()) {
    if (weights.has(name) || skip.has(name) || !statSync(join(src.dir, name)).isFile()) continue;
    copyFileSync(join(src.dir, name), join(outDir, name));
  }
}
