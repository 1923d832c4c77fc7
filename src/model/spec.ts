/**
 * config.json → ModelSpec: one flat, typed record that drives the engine, the pruner and the
 * accounting. Handles both config styles in the wild: `rope_theta` + `rope_scaling` (transformers
 * 4.x) and `rope_parameters` (transformers 5.x, per layer type for Gemma 3).
 */
import { join } from 'node:path';
import { CompactError, check } from '../util/errors.js';
import { readUserText } from '../util/files.js';
import { type Activation, type AttentionKind, FAMILIES, type FamilyDescriptor, type RawConfig, SUPPORTED_MODEL_TYPES } from './families.js';

export interface RopeSpec {
  theta: number;
  type: 'default' | 'linear' | 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface LayerSpec {
  attention: AttentionKind;
  /** Keys a query may see: k in (q − window, q]; null = unbounded. */
  window: number | null;
  rope: RopeSpec;
}

export interface ModelSpec {
  modelType: string;
  family: FamilyDescriptor;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  normEps: number;
  tiedEmbeddings: boolean;
  /** q/k/v biases; `oBias` too for Llama-style `attention_bias`. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  activation: Activation;
  attnScale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** Embedding multiplier (√D rounded to f32 for Gemma), 1 otherwise. */
  embedScale: number;
  layers: LayerSpec[];
  /** config.json as read, kept so writers can change a field and leave the rest alone. */
  raw: RawConfig;
}

export function readConfig(dir: string): ModelSpec {
  const file = join(dir, 'config.json');
  const text = readUserText(file, `; is ${dir} a Hugging Face checkpoint directory?`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CompactError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  check(raw && typeof raw === 'object' && !Array.isArray(raw), `${file}: expected a JSON object`);
  return specFromConfig(raw as RawConfig, file);
}

export function specFromConfig(raw: RawConfig, where = 'config.json'): ModelSpec {
  const modelType = raw.model_type;
  check(typeof modelType === 'string', `${where}: field model_type is missing`);
  const family = FAMILIES[modelType];
  check(family, `${where}: unsupported model_type ${JSON.stringify(modelType)}; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`);

  const int = (field: string, fallback?: number): number => {
    const v = raw[field] ?? fallback;
    check(Number.isSafeInteger(v) && (v as number) > 0, `${where}: field ${field} must be a positive integer, got ${JSON.stringify(raw[field])}`);
    return v as number;
  };
  const num = (field: string, fallback?: number): number => {
    const v = raw[field] ?? fallback;
    check(typeof v === 'number' && Number.isFinite(v), `${where}: field ${field} must be a number, got ${JSON.stringify(raw[field])}`);
    return v;
  };
  const optionalNum = (field: string): number | null => (raw[field] == null ? null : num(field));

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  check(numHeads % numKvHeads === 0, `${where}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = raw.head_dim == null ? family.defaultHeadDim ?? hiddenSize / numHeads : int('head_dim');
  check(Number.isInteger(headDim) && headDim % 2 === 0, `${where}: head_dim ${headDim} must be an even integer`);
  const numLayers = int('num_hidden_layers');

  const activationName = String(raw[family.activationField] ?? family.defaultActivation);
  const activation = family.geluIsTanh && activationName === 'gelu' ? 'gelu_tanh' : parseActivation(activationName, where);
  const attnScale = family.queryPreAttnScalar ? num('query_pre_attn_scalar', headDim) ** -0.5 : headDim ** -0.5;
  const slidingWindow = raw.sliding_window == null ? null : int('sliding_window');
  const layerTypes = parseLayerTypes(raw, family, numLayers, where);
  const layers = layerTypes.map((attention): LayerSpec => ({
    attention,
    window: attention === 'sliding' ? slidingWindow : null,
    rope: ropeFor(raw, family, attention, where),
  }));
  for (const [i, l] of layers.entries()) check(l.attention === 'full' || l.window != null, `${where}: layer ${i} is sliding_attention but sliding_window is not set`);

  return {
    modelType,
    family,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    normEps: num('rms_norm_eps', 1e-6),
    tiedEmbeddings: Boolean(raw.tie_word_embeddings ?? family.tiedByDefault),
    qkvBias: family.qkvBias || Boolean(raw.attention_bias),
    oBias: !family.qkvBias && Boolean(raw.attention_bias),
    mlpBias: Boolean(raw.mlp_bias),
    activation,
    attnScale,
    attnSoftcap: family.attnSoftcap ? optionalNum('attn_logit_softcapping') : null,
    finalSoftcap: optionalNum('final_logit_softcapping'),
    embedScale: family.scaleEmbeddings ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    layers,
    raw,
  };
}

function parseActivation(name: string, where: string): Activation {
  if (name === 'silu' || name === 'swish') return 'silu';
  if (name === 'gelu_pytorch_tanh' || name === 'gelu_new' || name === 'gelu_fast') return 'gelu_tanh';
  if (name === 'gelu') return 'gelu';
  throw new CompactError(`${where}: unsupported activation ${JSON.stringify(name)}; supported: silu, gelu, gelu_pytorch_tanh`);
}

function parseLayerTypes(raw: RawConfig, family: FamilyDescriptor, numLayers: number, where: string): AttentionKind[] {
  const types = raw.layer_types;
  if (types == null) return Array.from({ length: numLayers }, (_, i) => family.defaultLayerType(raw, i));
  check(Array.isArray(types) && types.length === numLayers, `${where}: layer_types must list ${numLayers} entries (num_hidden_layers)`);
  return types.map((t, i) => {
    if (t === 'full_attention') return 'full';
    if (t === 'sliding_attention') return 'sliding';
    throw new CompactError(`${where}: layer_types[${i}] is ${JSON.stringify(t)}; expected full_attention or sliding_attention`);
  });
}

/**
 * RoPE of one layer type. transformers 5 writes `rope_parameters` (flat, or keyed by layer type
 * for Gemma 3); transformers 4 writes `rope_theta` + `rope_scaling`, and Gemma 3's local layers
 * use `rope_local_base_freq` without scaling.
 */
function ropeFor(raw: RawConfig, family: FamilyDescriptor, attention: AttentionKind, where: string): RopeSpec {
  let params = raw.rope_parameters as RawConfig | null | undefined;
  if (params && typeof params === 'object') {
    const perType = params[`${attention}_attention`];
    if (perType && typeof perType === 'object') params = perType as RawConfig;
  } else {
    const local = raw.model_type === 'gemma3_text' && attention === 'sliding';
    const scaling = local ? null : (raw.rope_scaling as RawConfig | null | undefined);
    params = { ...(scaling ?? {}), rope_theta: local ? raw.rope_local_base_freq ?? 10000 : raw.rope_theta ?? family.defaultRopeTheta };
  }
  const type = String(params.rope_type ?? params.type ?? 'default');
  check(type === 'default' || type === 'linear' || type === 'llama3', `${where}: unsupported rope type ${JSON.stringify(type)}; supported: default, linear, llama3`);
  const theta = Number(params.rope_theta ?? family.defaultRopeTheta);
  check(Number.isFinite(theta) && theta > 0, `${where}: rope_theta must be a positive number`);
  return {
    theta,
    type,
    factor: Number(params.factor ?? 1),
    lowFreqFactor: Number(params.low_freq_factor ?? 1),
    highFreqFactor: Number(params.high_freq_factor ?? 4),
    originalMaxPositions: Number(params.original_max_position_embeddings ?? raw.max_position_embeddings ?? 8192),
  };
}
