/**
 * Writes a checkpoint derived from another one, tensor by tensor: each source tensor is kept,
 * edited (sliced, renamed) or dropped by `edit`; dtypes and the shard layout are preserved, and
 * only one tensor is in memory at a time.
 */
import { copyFileSync, lstatSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { insideRepository } from '../util/files.js';
import type { Checkpoint } from './checkpoint.js';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint.js';
import { DTYPE_BYTES } from './dtype.js';
import type { TensorInfo } from './safetensors.js';
import { tensorChunks } from './slice.js';
import { type TensorToWrite, writeSafetensors } from './safetensors-writer.js';

/** What to write for a source tensor: null drops it. */
export type TensorEdit = (info: TensorInfo) => Omit<TensorToWrite, 'dtype'> | null;

export const keepTensor: TensorEdit = (info) => ({ name: info.name, shape: info.shape, bytes: () => tensorChunks(info) });

export interface WrittenWeights {
  tensors: number;
  bytes: number;
}

export async function writeWeights(
  src: Checkpoint,
  outDir: string,
  edit: TensorEdit,
  onTensor?: (done: number, total: number) => void,
): Promise<WrittenWeights> {
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
  // An index whenever the shards are not the one model.safetensors (a single indexed shard too: its name needs it).
  if (src.shards.some((s) => s.file !== SINGLE_FILE)) {
    const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeFileSync(join(outDir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sorted }, null, 2)}\n`);
  }
  return { tensors: Object.keys(weightMap).length, bytes: totalBytes };
}

/** A file or directory of the source that the output does not get, and why. */
export interface LeftOut {
  /** Name in the source directory; a directory's ends with "/". */
  file: string;
  reason: 'symbolic link' | 'directory' | 'stale weights' | 'old token ids';
}

/**
 * Weights in other formats or other files than the checkpoint compact read (PyTorch, TensorFlow,
 * Flax, GGUF, ONNX, native Mistral/Meta `consolidated.*` with its `params.json`, stray safetensors):
 * they would no longer match the pruned model, and a loader that prefers them would silently
 * load the unpruned weights.
 */
const STALE_WEIGHTS = [
  /\.(safetensors|bin|pt|pth|ckpt|h5|keras|msgpack|gguf|ggml|onnx|onnx_data|onnx\.data|tflite|ot|npz|npy|nemo)$/i,
  /\.(safetensors|bin|h5|msgpack)\.index\.json$/i,
  /^(pytorch_model|tf_model|flax_model|consolidated)\b/,
  /^params\.json$/,
];

export function isStaleWeightFile(name: string): boolean {
  return STALE_WEIGHTS.some((pattern) => pattern.test(name));
}

/**
 * Copies the checkpoint's other top-level files (tokenizer, generation config, licence, …) except
 * `skip`, and returns what it left out, sorted by name: stale weight files, files for which
 * `staleTokenizerFile` is true, directories, and symbolic links that lead out of the model's own
 * repository (copying their target would publish a file the user never meant to be part of the
 * model). A link inside it — to a file of the directory, or into the `blobs/` of a Hugging Face
 * cache snapshot (`<repo>/snapshots/<rev>/`, where every file is such a link) — is copied as the
 * regular file it points to.
 */
export function copyOtherFiles(
  src: Checkpoint,
  outDir: string,
  skip: Set<string>,
  staleTokenizerFile: (name: string) => boolean = () => false,
): LeftOut[] {
  const weights = new Set([...src.shards.map((s) => s.file), INDEX_FILE]);
  const leftOut: LeftOut[] = [];
  for (const name of readdirSync(src.dir).sort()) {
    if (weights.has(name) || skip.has(name)) continue;
    const path = join(src.dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) leftOut.push({ file: `${name}/`, reason: 'directory' });
    else if (stat.isSymbolicLink() && !insideRepository(src.dir, path)) leftOut.push({ file: name, reason: 'symbolic link' });
    else if (!statSync(path).isFile())
      continue; // sockets, FIFOs, devices: nothing a model holds
    else if (isStaleWeightFile(name)) leftOut.push({ file: name, reason: 'stale weights' });
    else if (staleTokenizerFile(name)) leftOut.push({ file: name, reason: 'old token ids' });
    else copyFileSync(path, join(outDir, name));
  }
  return leftOut;
}
