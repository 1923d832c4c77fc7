/**
 * A Hugging Face checkpoint directory: config.json + model.safetensors, or shards listed in
 * model.safetensors.index.json. Opening reads only headers, and checks that every tensor the
 * config implies is present with the right shape.
 */
import { existsSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { CompactError, check } from '../util/errors.js';
import { readUserJsonObject } from '../util/files.js';
import { isFloatDtype } from './dtype.js';
import { readSafetensorsHeader, readTensorF32, type TensorInfo } from './safetensors.js';
import { type ModelSpec, readConfig } from './spec.js';
import { expectedTensorShapes } from './tensor-names.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface Checkpoint {
  dir: string;
  spec: ModelSpec;
  /** Safetensors files in shard order (names relative to dir), with their header metadata. */
  shards: { file: string; metadata: Record<string, string> }[];
  tensors: Map<string, TensorInfo>;
}

export function openCheckpoint(dir: string): Checkpoint {
  checkModelPath(dir);
  const spec = readConfig(dir);
  const shards: Checkpoint['shards'] = [];
  const tensors = new Map<string, TensorInfo>();
  for (const file of listWeightFiles(dir)) {
    const header = readSafetensorsHeader(join(dir, file));
    shards.push({ file, metadata: header.metadata });
    for (const [name, info] of header.tensors) {
      check(!tensors.has(name), `${file}: tensor ${name} also appears in ${basename(tensors.get(name)?.file ?? '')}`);
      tensors.set(name, info);
    }
  }
  for (const [name, shape] of expectedTensorShapes(spec)) {
    const info = tensors.get(name);
    check(info, `${dir}: tensor ${name} is missing (expected ${JSON.stringify(shape)} from config.json)`);
    check(
      info.shape.length === shape.length && info.shape.every((d, i) => d === shape[i]),
      `${basename(info.file)}: tensor ${name} has shape ${JSON.stringify(info.shape)} but config.json implies ${JSON.stringify(shape)}`,
    );
    check(isFloatDtype(info.dtype), `${basename(info.file)}: tensor ${name} has dtype ${info.dtype}; supported: F32, F16, BF16`);
  }
  return { dir, spec, shards, tensors };
}

/**
 * The weight files, by their plain names in `dir`. An index's shard names are normalized
 * ("./model-00002-of-00002.safetensors" is "model-00002-of-00002.safetensors") and must name a
 * file of the directory itself.
 */
function listWeightFiles(dir: string): string[] {
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    const index = readUserJsonObject(indexPath, { within: dir });
    const map = index.weight_map;
    check(map && typeof map === 'object' && !Array.isArray(map), `${indexPath}: field weight_map is missing or not an object`);
    const files = new Set<string>();
    for (const file of Object.values(map as Record<string, unknown>)) {
      check(typeof file === 'string' && file.length > 0, `${indexPath}: weight_map has a non-string file name ${JSON.stringify(file)}`);
      const name = posix.normalize(file.replaceAll('\\', '/'));
      check(
        !name.startsWith('../') && name !== '..' && !name.startsWith('/'),
        `${indexPath}: shard ${JSON.stringify(file)} points outside the checkpoint directory`,
      );
      check(
        !name.includes('/') && name !== '.',
        `${indexPath}: shard ${JSON.stringify(file)} is not a file of the checkpoint directory itself (compact reads shards from the top level)`,
      );
      check(existsSync(join(dir, name)), `${indexPath}: shard ${file} does not exist`);
      files.add(name);
    }
    check(files.size > 0, `${indexPath}: weight_map is empty`);
    return [...files].sort();
  }
  check(existsSync(join(dir, SINGLE_FILE)), `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} (only safetensors checkpoints are supported)`);
  return [SINGLE_FILE];
}

/** Reads a tensor of the checkpoint as f32 (rows [start, end) of its first dimension if given). */
export function loadF32(ckpt: Checkpoint, name: string, rowStart?: number, rowEnd?: number): Float32Array {
  const info = ckpt.tensors.get(name);
  if (!info) throw new CompactError(`${ckpt.dir}: tensor ${name} is missing`);
  return readTensorF32(info, rowStart, rowEnd);
}

/** An empty model path would mean the current directory, and every error after it would read oddly. */
export function checkModelPath(dir: string): void {
  check(dir.trim() !== '', 'the model directory path is empty');
}
