/**
 * Writing: one plan as a standard checkpoint — weights sliced in their stored dtype (or
 * compensated down_proj encoded in it), config.json, rewritten tokenizer files, the source's other
 * files — and, with --gguf, the GGUF of it inside the same directory.
 */
import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { exportGguf } from '../gguf/export.js';
import { encode as encodeAs } from '../gguf/quantize.js';
import type { OutputType } from '../gguf/tensor-plan.js';
import type { Checkpoint } from '../model/checkpoint.js';
import { copyOtherFiles, type LeftOut, type TensorEdit, writeWeights } from '../model/checkpoint-writer.js';
import { MANIFEST_FILE, TIMING_FILE } from '../model/prune-files.js';
import { keptColumnChunks, keptRowChunks, tensorChunks } from '../model/slice.js';
import { EMBED, LAYER_TENSORS, LM_HEAD } from '../model/tensor-names.js';
import { check } from '../util/errors.js';
import { jsonText } from '../util/json-text.js';
import { staleTokenizerFile } from '../vocab/slow-tokenizer-files.js';
import type { JsonObject, TokenizerFiles } from '../vocab/tokenizer-json.js';
import { layerDropFields, renumberLayerTensor } from './layer-drop.js';
import type { PruneReport } from './report.js';
import type { Plan } from './select.js';
import { type Source, TOKENIZER_FILES } from './source.js';

/**
 * Weights, config.json, tokenizer files and the rest of the source's files, for one plan; returns
 * what was left out. With a pruned vocabulary every tokenizer file is either rewritten for the
 * kept ids or left out: none is copied with the old ids.
 */
export async function writeCheckpointFiles(
  src: Source,
  dir: string,
  plan: Plan,
  onTensor?: (done: number, total: number) => void,
): Promise<LeftOut[]> {
  const spec = src.ckpt.spec;
  await writeWeights(src.ckpt, dir, tensorEdit(src.ckpt, plan), onTensor);
  // Surgery's config.json has the vocabulary fields (vocab_size, bos/eos/pad ids) remapped.
  const config: JsonObject = {
    ...((plan.surgery?.files.config as JsonObject | undefined) ?? spec.raw),
    intermediate_size: plan.budget.ffn,
    ...layerDropFields(spec, plan.dropped),
  };
  writeFileSync(join(dir, 'config.json'), jsonText(config, src.floatPaths.config));
  const rewritten = new Set(['config.json', 'README.md', MANIFEST_FILE, TIMING_FILE]);
  for (const [key, file] of Object.entries(TOKENIZER_FILES) as [keyof TokenizerFiles, string][]) {
    const value = plan.surgery?.files[key];
    if (value == null || key === 'config') continue;
    writeFileSync(join(dir, file), jsonText(value, src.floatPaths[key]));
    rewritten.add(file);
  }
  for (const [file, bytes] of plan.slowFiles ?? []) {
    writeFileSync(join(dir, file), bytes);
    rewritten.add(file);
  }
  return copyOtherFiles(src.ckpt, dir, rewritten, plan.surgery ? staleTokenizerFile : undefined);
}

export const ggufFileName = (type: OutputType): string => `model.${type}.gguf`;

/** prune --gguf: the GGUF of the checkpoint being written, inside it (so the whole output stays atomic). */
export async function writeGgufInto(tmp: string, output: string, type: OutputType): Promise<PruneReport['gguf']> {
  const file = ggufFileName(type);
  const r = await exportGguf(tmp, join(tmp, file), { type, name: basename(resolve(output)), intoCheckpoint: true });
  return { file, architecture: r.architecture, type, bytes: r.bytes };
}

/** Each source tensor's name, shape and bytes in the output (null: dropped with its layer). */
function tensorEdit(ckpt: Checkpoint, plan: Plan): TensorEdit {
  const L = ckpt.spec.numLayers;
  const rows = plan.surgery ? embeddingRows(plan.surgery.old2new) : null;
  return (info) => {
    const name = renumberLayerTensor(info.name, plan.dropped, L);
    if (name == null) return null;
    // Embedding and LM head [V, D] → [V′, D]: the kept tokens' rows, in new-id order.
    if (rows && (info.name === EMBED || info.name === LM_HEAD)) {
      return { name, shape: [rows.length, info.shape[1]], bytes: () => keptRowChunks(info, rows) };
    }
    const layer = /^model\.layers\.(\d+)\.mlp\./.exec(info.name);
    if (plan.channels && layer) {
      const keep = plan.channels[Number(layer[1])];
      const suffix = info.name.slice(info.name.indexOf('mlp.'));
      // down_proj [D, I] → [D, I′]: the kept columns, or the compensated weights.
      if (suffix === LAYER_TENSORS.down && plan.compensated) {
        const compensated = plan.compensated;
        return { name, shape: [info.shape[0], keep.length], bytes: () => [storedBytes(compensated(Number(layer[1])), info.dtype, name)] };
      }
      if (suffix === LAYER_TENSORS.down) return { name, shape: [info.shape[0], keep.length], bytes: () => keptColumnChunks(info, keep) };
      // gate_proj / up_proj [I, D] (and their biases [I]) → the kept rows; down_proj's bias [D] is unchanged.
      if (suffix !== LAYER_TENSORS.downBias)
        return { name, shape: [keep.length, ...info.shape.slice(1)], bytes: () => keptRowChunks(info, keep) };
    }
    return { name, shape: info.shape, bytes: () => tensorChunks(info) };
  };
}

/** Old row index of each new id: the inverse of old2new. */
function embeddingRows(old2new: Int32Array): Int32Array {
  const rows: number[] = [];
  old2new.forEach((n, old) => {
    if (n >= 0) rows[n] = old;
  });
  return Int32Array.from(rows);
}

/** Largest finite magnitude of each stored float type. */
const FLOAT_MAX: Record<string, number> = { F32: 3.4028234663852886e38, F16: 65504, BF16: 3.3895313892515355e38 };

/** f32 weights in the tensor's stored dtype (round to nearest even); a value the dtype cannot hold is refused, never written. */
function storedBytes(values: Float32Array, dtype: string, name: string): Uint8Array {
  check(dtype in FLOAT_MAX, `${name}: compensation writes F32, F16 or BF16 tensors, not ${dtype}; use --no-compensate`);
  const max = FLOAT_MAX[dtype];
  for (const v of values) {
    if (!(Math.abs(v) <= max))
      check(
        false,
        `${name}: a compensated weight (${v}) does not fit ${dtype}; nothing was written — use --no-compensate or more calibration text`,
      );
  }
  return encodeAs(values, dtype as 'F32' | 'F16' | 'BF16');
}
