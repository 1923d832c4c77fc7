/**
 * What differs between the supported decoder families, as data. Everything else (tensor names,
 * the layer computation, the writer) is shared code that reads these flags.
 */
export type Activation = 'silu' | 'gelu_tanh' | 'gelu';
export type AttentionKind = 'full' | 'sliding';

export interface FamilyDescriptor {
  /** `model_type` in config.json. */
  modelType: string;
  /** RMSNorm multiplies by (1 + w) instead of w (Gemma). */
  normPlusOne: boolean;
  /** Embeddings are multiplied by √hidden_size, rounded to the compute dtype (Gemma). */
  scaleEmbeddings: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3). */
  qkNorm: boolean;
  /** Norms around both sub-blocks: post-attention, pre- and post-feedforward (Gemma 2/3). */
  sandwichNorms: boolean;
  /** Attention logits scaled by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5 (Gemma 2/3). */
  queryPreAttnScalar: boolean;
  /** q/k/v projections carry biases whatever the config says (Qwen2). */
  qkvBias: boolean;
  /** `attn_logit_softcapping` is applied (Gemma 2; Gemma 3 stores it but never uses it). */
  attnSoftcap: boolean;
  /** config field naming the activation, its default, and `gelu` read as tanh-GELU (Gemma 1). */
  activationField: 'hidden_act' | 'hidden_activation';
  defaultActivation: string;
  geluIsTanh: boolean;
  /** Defaults transformers uses when config.json omits the field. */
  defaultHeadDim: number | null;
  tiedByDefault: boolean;
  defaultRopeTheta: number;
  /** Attention kind of layer i when config.json has no `layer_types`. */
  defaultLayerType: (config: RawConfig, layer: number) => AttentionKind;
}

export type RawConfig = Record<string, unknown>;

const plain = {
  normPlusOne: false,
  scaleEmbeddings: false,
  qkNorm: false,
  sandwichNorms: false,
  queryPreAttnScalar: false,
  qkvBias: false,
  attnSoftcap: false,
  activationField: 'hidden_act',
  defaultActivation: 'silu',
  geluIsTanh: false,
  defaultHeadDim: null,
  tiedByDefault: false,
  defaultRopeTheta: 10000,
  defaultLayerType: () => 'full',
} as const satisfies Omit<FamilyDescriptor, 'modelType'>;

/** Qwen2/3: sliding attention only when enabled, and only from layer max_window_layers on. */
const qwenLayerType = (c: RawConfig, i: number): AttentionKind =>
  c.use_sliding_window === true && c.sliding_window != null && i >= Number(c.max_window_layers ?? 0) ? 'sliding' : 'full';

const gemma = {
  ...plain,
  normPlusOne: true,
  scaleEmbeddings: true,
  activationField: 'hidden_activation',
  defaultActivation: 'gelu_pytorch_tanh',
  defaultHeadDim: 256,
  tiedByDefault: true,
} as const;

export const FAMILIES: Record<string, FamilyDescriptor> = {
  llama: { ...plain, modelType: 'llama' },
  mistral: { ...plain, modelType: 'mistral', defaultLayerType: (c) => (c.sliding_window != null ? 'sliding' : 'full') },
  qwen2: { ...plain, modelType: 'qwen2', qkvBias: true, defaultLayerType: qwenLayerType },
  qwen3: { ...plain, modelType: 'qwen3', qkNorm: true, defaultHeadDim: 128, defaultLayerType: qwenLayerType },
  gemma: { ...gemma, modelType: 'gemma', activationField: 'hidden_act', geluIsTanh: true },
  gemma2: {
    ...gemma,
    modelType: 'gemma2',
    sandwichNorms: true,
    queryPreAttnScalar: true,
    attnSoftcap: true,
    defaultLayerType: (_c, i) => ((i + 1) % 2 ? 'sliding' : 'full'),
  },
  gemma3_text: {
    ...gemma,
    modelType: 'gemma3_text',
    sandwichNorms: true,
    queryPreAttnScalar: true,
    qkNorm: true,
    defaultRopeTheta: 1_000_000,
    defaultLayerType: (c, i) => ((i + 1) % Number(c.sliding_window_pattern ?? 6) ? 'sliding' : 'full'),
  },
};

export const SUPPORTED_MODEL_TYPES = Object.keys(FAMILIES);

/** The family of a config's `model_type`, own entries only ("constructor" or "__proto__" is no family). */
export function familyOf(modelType: string): FamilyDescriptor | undefined {
  return Object.hasOwn(FAMILIES, modelType) ? FAMILIES[modelType] : undefined;
}
