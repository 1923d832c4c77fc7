/**
 * How each supported family maps onto llama.cpp's own architectures, as data (the way
 * model/families.ts describes the families). The descriptors say what llama.cpp reads and what it
 * hard-codes; `checkRepresentable` refuses a model whose config llama.cpp would silently compute
 * differently (an attention scale or sliding-window pattern it fixes per architecture).
 */
import type { ModelSpec } from '../model/spec.js';
import { check } from '../util/errors.js';

export type SlidingWindowSupport =
  /** llama.cpp has no sliding window for the architecture: the exported context is capped at the window. */
  | { kind: 'none' }
  /** Layer i is local iff i % period < period − 1 (Gemma 2: period 2; Gemma 3: period 6). */
  | { kind: 'pattern'; period: number; localRopeTheta?: number };

export interface LlamaCppArchitecture {
  /** `general.architecture`. */
  name: 'llama' | 'qwen2' | 'qwen3' | 'gemma' | 'gemma2' | 'gemma3';
  /** llama.cpp rotates adjacent pairs (NORM RoPE): q/k rows are permuted from HF's rotate-half. */
  interleavedRope: boolean;
  /** Added to every RMSNorm weight: llama.cpp multiplies by w, Gemma's HF code by (1 + w). */
  normShift: number;
  /** GGUF name of HF's `post_attention_layernorm`: the FFN's pre-norm, or Gemma 2/3's post-attention norm. */
  postAttentionNorm: 'ffn_norm' | 'post_attention_norm';
  /** llama.cpp reads a separate `output.weight` (otherwise the head is always the embedding). */
  untiedHead: boolean;
  activation: 'silu' | 'gelu_tanh';
  slidingWindow: SlidingWindowSupport;
  /** Writes attention/final logit soft-capping. */
  softcapping: boolean;
  /** llama.cpp's attention scale: 1/√head_dim, except the listed layer counts (its "27B" shapes), where 1/√(D/H). */
  wideScaleLayerCounts: number[];
  /** RoPE scaling types llama.cpp applies for this architecture. */
  ropeTypes: ('default' | 'linear' | 'llama3')[];
}

const llamaLike = {
  interleavedRope: false,
  normShift: 0,
  postAttentionNorm: 'ffn_norm',
  untiedHead: true,
  activation: 'silu',
  slidingWindow: { kind: 'none' },
  softcapping: false,
  wideScaleLayerCounts: [],
  ropeTypes: ['default', 'linear'],
} as const satisfies Omit<LlamaCppArchitecture, 'name'>;

const gemmaLike = { ...llamaLike, normShift: 1, activation: 'gelu_tanh' } as const;

const LLAMA: LlamaCppArchitecture = { ...llamaLike, name: 'llama', interleavedRope: true, ropeTypes: ['default', 'linear', 'llama3'] };

/** model_type → llama.cpp architecture, as llama.cpp's convert_hf_to_gguf.py maps them. */
export const LLAMA_CPP_ARCHITECTURES: Record<string, LlamaCppArchitecture> = {
  llama: LLAMA,
  mistral: LLAMA,
  qwen2: { ...llamaLike, name: 'qwen2' },
  qwen3: { ...llamaLike, name: 'qwen3' },
  gemma: { ...gemmaLike, name: 'gemma', untiedHead: false },
  gemma2: {
    ...gemmaLike,
    name: 'gemma2',
    untiedHead: false,
    postAttentionNorm: 'post_attention_norm',
    slidingWindow: { kind: 'pattern', period: 2 },
    softcapping: true,
    wideScaleLayerCounts: [46],
  },
  gemma3_text: {
    ...gemmaLike,
    name: 'gemma3',
    postAttentionNorm: 'post_attention_norm',
    slidingWindow: { kind: 'pattern', period: 6, localRopeTheta: 10000 },
    softcapping: true,
    wideScaleLayerCounts: [62],
  },
};

export function architectureFor(spec: ModelSpec): LlamaCppArchitecture {
  const arch = Object.hasOwn(LLAMA_CPP_ARCHITECTURES, spec.modelType) ? LLAMA_CPP_ARCHITECTURES[spec.modelType] : undefined;
  check(
    arch,
    `model_type ${spec.modelType} has no llama.cpp architecture; GGUF export supports ${Object.keys(LLAMA_CPP_ARCHITECTURES).join(', ')}`,
  );
  return arch;
}

/** The attention scale llama.cpp will use for this shape. */
export function llamaCppAttentionScale(arch: LlamaCppArchitecture, spec: ModelSpec): number {
  const dim = arch.wideScaleLayerCounts.includes(spec.numLayers) ? Math.floor(spec.hiddenSize / spec.numHeads) : spec.headDim;
  return 1 / Math.sqrt(dim);
}

/**
 * Refuses what llama.cpp cannot compute as transformers does (one line naming the field); returns
 * the context length to declare (capped at the sliding window where llama.cpp has none).
 */
export function checkRepresentable(arch: LlamaCppArchitecture, spec: ModelSpec): { contextLength: number; cappedAtWindow: boolean } {
  const where = `config.json (${spec.modelType} → llama.cpp ${arch.name})`;
  check(
    spec.activation === arch.activation,
    `${where}: activation ${spec.activation}; llama.cpp's ${arch.name} computes ${arch.activation}`,
  );
  check(
    arch.untiedHead || spec.tiedEmbeddings,
    `${where}: untied lm_head; llama.cpp's ${arch.name} always uses the embedding as the output head`,
  );
  check(!spec.mlpBias, `${where}: mlp_bias is not supported by GGUF export`);
  check(spec.qkvBias === spec.family.qkvBias && !spec.oBias, `${where}: attention_bias is not supported by GGUF export`);
  check(
    Math.abs(llamaCppAttentionScale(arch, spec) - spec.attnScale) <= 1e-7 * spec.attnScale,
    `${where}: attention scale ${spec.attnScale.toPrecision(6)} (query_pre_attn_scalar) differs from the ${llamaCppAttentionScale(arch, spec).toPrecision(6)} llama.cpp fixes for ${arch.name} with ${spec.numLayers} layers`,
  );
  check(arch.softcapping || spec.attnSoftcap == null, `${where}: attn_logit_softcapping is not supported by llama.cpp's ${arch.name}`);
  check(arch.softcapping || spec.finalSoftcap == null, `${where}: final_logit_softcapping is not supported by llama.cpp's ${arch.name}`);

  const maxPositions = Number(spec.raw.max_position_embeddings ?? 0) || 4096;
  const sw = arch.slidingWindow;
  if (sw.kind === 'pattern') {
    spec.layers.forEach((layer, i) => {
      const local = i % sw.period < sw.period - 1;
      check(
        layer.attention === (local ? 'sliding' : 'full'),
        `${where}: layer ${i} is ${layer.attention} attention, but llama.cpp's ${arch.name} fixes the pattern to ${sw.period - 1} sliding : 1 full`,
      );
      if (local && sw.localRopeTheta != null) {
        check(
          layer.rope.type === 'default' && layer.rope.theta === sw.localRopeTheta,
          `${where}: local layers use RoPE ${layer.rope.type} θ=${layer.rope.theta}; llama.cpp's ${arch.name} fixes θ=${sw.localRopeTheta} without scaling`,
        );
      }
    });
    check(
      spec.layers.every((l) => l.window === null || l.window === spec.layers.find((x) => x.window != null)?.window),
      `${where}: sliding windows differ between layers`,
    );
    return { contextLength: maxPositions, cappedAtWindow: false };
  }
  const windows = spec.layers.map((l) => l.window).filter((w): w is number => w != null);
  const window = windows.length ? Math.min(...windows) : Infinity;
  return { contextLength: Math.min(maxPositions, window), cappedAtWindow: window < maxPositions };
}

/** The RoPE every global (non-local) layer shares; llama.cpp has one per model (plus its fixed local one). */
export function globalRope(arch: LlamaCppArchitecture, spec: ModelSpec): ModelSpec['layers'][number]['rope'] {
  const sw = arch.slidingWindow;
  const globals = spec.layers.filter((_, i) => !(sw.kind === 'pattern' && sw.localRopeTheta != null && i % sw.period < sw.period - 1));
  const rope = (globals[0] ?? spec.layers[0]).rope;
  for (const l of globals) {
    check(
      JSON.stringify(l.rope) === JSON.stringify(rope),
      `config.json: layers use different RoPE settings, which llama.cpp's ${arch.name} cannot express`,
    );
  }
  check(arch.ropeTypes.includes(rope.type), `config.json: RoPE scaling ${rope.type} is not supported by llama.cpp's ${arch.name}`);
  return rope;
}
