/**
 * config.json → ModelSpec: one flat, typed record that drives the engine, the pruner and the
 * accounting. Handles both config styles in the wild: `rope_theta` + `rope_scaling` (transformers
 * 4.x) and `rope_parameters` (transformers 5.x, per layer type for Gemma 3).
 */
import { join } from 'node:path';
import { CompactError, check } from '../util/errors.js';
import { describeJson, isJsonObject, readUserJsonObject } from '../util/files.js';
import { type Activation, type AttentionKind, familyOf, type FamilyDescriptor, type RawConfig, SUPPORTED_MODEL_TYPES } from './families.js';

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
  return specFromConfig(readUserJsonObject(file, { within: dir, hint: `; is ${dir} a Hugging Face checkpoint directory?` }), file);
}

/**
 * More layers than any real model has (Llama 3.1 405B: 126); checked before anything per layer is
 * allocated, so a mistyped num_hidden_layers is one clear error, not an out-of-memory crash. The
 * checkpoint then checks every layer's tensors are present.
 */
export const MAX_LAYERS = 4096;

export function specFromConfig(raw: RawConfig, where = 'config.json'): ModelSpec {
  const modelType = raw.model_type;
  check(typeof modelType === 'string', `${where}: field model_type is missing`);
  const family = familyOf(modelType);
  check(family, `${where}: unsupported model_type ${JSON.stringify(modelType)}; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`);

  const int = (field: string, fallback?: number): number => {
    const v = raw[field] ?? fallback;
    check(
      Number.isSafeInteger(v) && (v as number) > 0,
      `${where}: field ${field} must be a positive integer, got ${JSON.stringify(raw[field])}`,
    );
    return v as number;
  };
  /** A finite number > `above` (a value where the math needs one, e.g. a divisor). */
  const num = (field: string, fallback: number | undefined, above = -Infinity): number => {
    const v = raw[field] ?? fallback;
    check(
      typeof v === 'number' && Number.isFinite(v) && v > above,
      `${where}: field ${field} must be a number${above > -Infinity ? ` > ${above}` : ''}, got ${JSON.stringify(raw[field])}`,
    );
    return v;
  };
  /** A soft-capping value: positive, and finite in f32 (the engine's compute type), or absent. */
  const softcap = (field: string): number | null => {
    if (raw[field] == null) return null;
    const v = num(field, undefined, 0);
    check(
      Number.isFinite(Math.fround(v)),
      `${where}: field ${field} must be a number > 0 and below 3.4e38 (f32), got ${JSON.stringify(raw[field])}`,
    );
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = raw[field] ?? fallback;
    check(typeof v === 'boolean', `${where}: field ${field} must be true or false, got ${JSON.stringify(raw[field])}`);
    return v;
  };
  // Fields read elsewhere (families' layer patterns, RoPE, evaluation lengths): right type or absent.
  for (const field of ['max_position_embeddings', 'sliding_window_pattern']) if (raw[field] != null) int(field);
  if (raw.max_window_layers != null)
    check(
      Number.isSafeInteger(raw.max_window_layers) && (raw.max_window_layers as number) >= 0,
      `${where}: field max_window_layers must be a non-negative integer, got ${JSON.stringify(raw.max_window_layers)}`,
    );
  bool('use_sliding_window', false);

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  check(numHeads % numKvHeads === 0, `${where}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = raw.head_dim == null ? (family.defaultHeadDim ?? hiddenSize / numHeads) : int('head_dim');
  check(Number.isInteger(headDim) && headDim % 2 === 0, `${where}: head_dim ${headDim} must be an even integer`);
  const numLayers = int('num_hidden_layers');
  check(numLayers <= MAX_LAYERS, `${where}: field num_hidden_layers is ${numLayers}; compact reads at most ${MAX_LAYERS} layers`);

  const activationValue = raw[family.activationField] ?? family.defaultActivation;
  check(
    typeof activationValue === 'string',
    `${where}: field ${family.activationField} must be a string, got ${JSON.stringify(activationValue)}`,
  );
  const activationName = activationValue;
  const activation = family.geluIsTanh && activationName === 'gelu' ? 'gelu_tanh' : parseActivation(activationName, where);
  const attnScale = family.queryPreAttnScalar ? num('query_pre_attn_scalar', headDim, 0) ** -0.5 : headDim ** -0.5;
  const slidingWindow = raw.sliding_window == null ? null : int('sliding_window');
  const layerTypes = parseLayerTypes(raw, family, numLayers, where);
  const layers = layerTypes.map((attention): LayerSpec => ({
    attention,
    window: attention === 'sliding' ? slidingWindow : null,
    rope: ropeFor(raw, family, attention, where),
  }));
  for (const [i, l] of layers.entries())
    check(l.attention === 'full' || l.window != null, `${where}: layer ${i} is sliding_attention but sliding_window is not set`);

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
    normEps: num('rms_norm_eps', 1e-6, 0),
    tiedEmbeddings: bool('tie_word_embeddings', family.tiedByDefault),
    qkvBias: family.qkvBias || bool('attention_bias', false),
    oBias: !family.qkvBias && bool('attention_bias', false),
    mlpBias: bool('mlp_bias', false),
    activation,
    attnScale,
    attnSoftcap: family.attnSoftcap ? softcap('attn_logit_softcapping') : null,
    finalSoftcap: softcap('final_logit_softcapping'),
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
  for (const field of ['rope_parameters', 'rope_scaling']) {
    check(raw[field] == null || isJsonObject(raw[field]), `${where}: field ${field} must be an object, got ${describeJson(raw[field])}`);
  }
  let params = raw.rope_parameters as RawConfig | null | undefined;
  if (params) {
    const perType = params[`${attention}_attention`];
    if (perType && typeof perType === 'object') params = perType as RawConfig;
  } else {
    const local = raw.model_type === 'gemma3_text' && attention === 'sliding';
    const scaling = local ? null : (raw.rope_scaling as RawConfig | null | undefined);
    params = { ...(scaling ?? {}), rope_theta: local ? (raw.rope_local_base_freq ?? 10000) : (raw.rope_theta ?? family.defaultRopeTheta) };
  }
  const type = params.rope_type ?? params.type ?? 'default';
  check(
    type === 'default' || type === 'linear' || type === 'llama3',
    `${where}: unsupported rope type ${JSON.stringify(type)}; supported: default, linear, llama3`,
  );
  // Each value must be a number where the math needs one: theta ≥ 1 (inverse frequencies
  // theta^(-2i/d) stay finite in f32), factors > 0, and for llama3 high_freq_factor > low_freq_factor.
  const number = (value: unknown, fallback: number, ok: (v: number) => boolean, name: string, what: string): number => {
    const v = value ?? fallback;
    check(typeof v === 'number' && Number.isFinite(v) && ok(v), `${where}: ${name} must be ${what}, got ${JSON.stringify(value)}`);
    return v;
  };
  const positive = (v: number) => v > 0;
  const theta = number(params.rope_theta, family.defaultRopeTheta, (v) => v >= 1, 'rope_theta', 'a number ≥ 1');
  const factor = number(params.factor, 1, positive, 'rope factor', 'a number > 0');
  const lowFreqFactor = number(params.low_freq_factor, 1, positive, 'rope low_freq_factor', 'a number > 0');
  const highFreqFactor = number(
    params.high_freq_factor,
    4,
    (v) => v > 0 && (type !== 'llama3' || v > lowFreqFactor),
    'rope high_freq_factor',
    'a number > 0 (and > low_freq_factor for llama3)',
  );
  const originalMaxPositions = number(
    params.original_max_position_embeddings ?? raw.max_position_embeddings,
    8192,
    (v) => Number.isSafeInteger(v) && v > 0,
    'rope original_max_position_embeddings',
    'a positive integer',
  );
  return { theta, type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions };
}
