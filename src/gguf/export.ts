/**
 * `compact export`: a Hugging Face checkpoint → one GGUF file that llama.cpp runs unchanged.
 * Everything is checked (architecture, tokenizer) before the first byte is written; the file is
 * written atomically and streamed one tensor chunk at a time.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type Checkpoint, openCheckpoint } from '../model/checkpoint.js';
import { buildTokenizer, readTokenizerJson } from '../model/tokenizer.js';
import type { ModelSpec, RopeSpec } from '../model/spec.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { check } from '../util/errors.js';
import type { JsonObject } from '../vocab/tokenizer-json.js';
import { architectureFor, checkRepresentable, globalRope, type LlamaCppArchitecture } from './architectures.js';
import { type Metadata, writeGguf } from './gguf-file.js';
import { GGML_TYPES, type GgmlType, tensorBytes } from './quantize.js';
import { type OutputType, planTensors } from './tensor-plan.js';
import { type TokenizerSummary, tokenizerMetadata } from './tokenizer-metadata.js';

export interface ExportOptions {
  type: OutputType;
  force?: boolean;
  /** `general.name` (default: the checkpoint directory's name). */
  name?: string;
  /** Write the tokenizer and hyperparameters only (llama.cpp's `--vocab-only`). */
  vocabOnly?: boolean;
  /** The file goes into the checkpoint directory itself (prune --gguf, while that directory is being written). */
  intoCheckpoint?: boolean;
  onTensor?: (done: number, total: number) => void;
}

export interface ExportReport {
  output: string;
  architecture: string;
  type: OutputType;
  tensors: { total: number; byType: Record<string, number> };
  bytes: number;
  contextLength: number;
  /** llama.cpp has no sliding window for this architecture: the context was capped at the window. */
  contextCappedAtWindow: boolean;
  tokenizer: TokenizerSummary;
}

export async function exportGguf(inputDir: string, output: string, options: ExportOptions): Promise<ExportReport> {
  const ckpt = openCheckpoint(inputDir);
  const { arch, contextLength, cappedAtWindow, rope, tokenizer } = checkExportable(ckpt);
  const metadata = modelMetadata(ckpt.spec, arch, rope, contextLength, options.type, options.name ?? basename(resolve(inputDir)));
  for (const [key, value] of tokenizer.metadata) metadata.set(key, value);
  const tensors = options.vocabOnly ? [] : planTensors(ckpt, arch, options.type, rope);

  const inputs = options.intoCheckpoint ? [] : [inputDir];
  await writeFileAtomic(output, { force: options.force, inputs }, (fd) => writeGguf(fd, metadata, tensors, options.onTensor));

  const byType: Record<string, number> = {};
  for (const t of tensors) byType[t.type] = (byType[t.type] ?? 0) + 1;
  return {
    output,
    architecture: arch.name,
    type: options.type,
    tensors: { total: tensors.length, byType },
    bytes: tensors.reduce((sum, t) => sum + tensorBytes(t.type, t.dims), 0),
    contextLength,
    contextCappedAtWindow: cappedAtWindow,
    tokenizer: tokenizer.summary,
  };
}

/** Everything export checks, without writing: what llama.cpp would compute differently, and the tokenizer. */
export function checkExportable(ckpt: Checkpoint) {
  const arch = architectureFor(ckpt.spec);
  return { arch, ...checkRepresentable(arch, ckpt.spec), rope: globalRope(arch, ckpt.spec), tokenizer: tokenizerPart(ckpt) };
}

/** `general.*` and `{arch}.*` hyperparameters, as llama.cpp's loader reads them. */
function modelMetadata(
  spec: ModelSpec,
  arch: LlamaCppArchitecture,
  rope: RopeSpec,
  contextLength: number,
  type: OutputType,
  name: string,
): Metadata {
  const a = arch.name;
  const m: Metadata = new Map();
  const u32 = (key: string, value: number) => m.set(key, { type: 'u32', value });
  const f32 = (key: string, value: number) => m.set(key, { type: 'f32', value });
  m.set('general.architecture', { type: 'string', value: a });
  m.set('general.name', { type: 'string', value: name });
  u32('general.file_type', GGML_TYPES[type.toUpperCase() as GgmlType].fileType);
  if (type === 'q8_0') u32('general.quantization_version', 2);
  u32(`${a}.vocab_size`, spec.vocabSize);
  u32(`${a}.context_length`, contextLength);
  u32(`${a}.embedding_length`, spec.hiddenSize);
  u32(`${a}.block_count`, spec.numLayers);
  u32(`${a}.feed_forward_length`, spec.intermediateSize);
  u32(`${a}.attention.head_count`, spec.numHeads);
  u32(`${a}.attention.head_count_kv`, spec.numKvHeads);
  u32(`${a}.attention.key_length`, spec.headDim);
  u32(`${a}.attention.value_length`, spec.headDim);
  u32(`${a}.rope.dimension_count`, spec.headDim);
  f32(`${a}.attention.layer_norm_rms_epsilon`, spec.normEps);
  f32(`${a}.rope.freq_base`, rope.theta);
  if (rope.type === 'linear') {
    m.set(`${a}.rope.scaling.type`, { type: 'string', value: 'linear' });
    f32(`${a}.rope.scaling.factor`, rope.factor);
  }
  if (arch.slidingWindow.kind === 'pattern') {
    const window = spec.layers.find((l) => l.window != null)?.window;
    if (window != null) u32(`${a}.attention.sliding_window`, window);
  }
  if (spec.attnSoftcap != null) f32(`${a}.attn_logit_softcapping`, spec.attnSoftcap);
  if (spec.finalSoftcap != null) f32(`${a}.final_logit_softcapping`, spec.finalSoftcap);
  return m;
}

/** The tokenizer's metadata (llama.cpp needs one: its "no vocabulary" models cannot be run by its tools). */
function tokenizerPart(ckpt: Checkpoint): ReturnType<typeof tokenizerMetadata> {
  check(
    existsSync(join(ckpt.dir, 'tokenizer.json')),
    `${ckpt.dir}: no tokenizer.json; a GGUF for llama.cpp needs the tokenizer (convert a SentencePiece or tiktoken tokenizer to tokenizer.json first)`,
  );
  const files = readTokenizerJson(ckpt.dir);
  return tokenizerMetadata({
    tokenizer: files.tokenizer,
    tokenizerConfig: files.config,
    config: ckpt.spec.raw as JsonObject,
    hf: buildTokenizer(ckpt.dir, files),
    rows: ckpt.spec.vocabSize,
  });
}
