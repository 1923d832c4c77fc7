/**
 * config.json of real models (shapes from their published configs), and random-weight BF16
 * checkpoints with those shapes, for speed and memory benchmarks.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { specFromConfig } from '../src/model/spec.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { expectedTensorShapes } from '../src/model/tensor-names.js';

export const REAL_SHAPES: Record<string, Record<string, unknown>> = {
  'qwen2.5-0.5b': {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    max_position_embeddings: 32768,
    use_sliding_window: false,
    sliding_window: 32768,
    max_window_layers: 21,
  },
  'llama-3.2-1b': {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 32.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 8192,
    },
    hidden_act: 'silu',
    tie_word_embeddings: true,
    max_position_embeddings: 131072,
    attention_bias: false,
    mlp_bias: false,
  },
  // Llama-3.1-8B's published config (untied head; stored as 4 shards of at most 5 GB, see randomCheckpoint's shardBytes).
  'llama-3.1-8b': {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 8192,
    },
    hidden_act: 'silu',
    tie_word_embeddings: false,
    max_position_embeddings: 131072,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 128000,
    eos_token_id: 128001,
  },
  'gemma-3-1b': {
    architectures: ['Gemma3ForCausalLM'],
    model_type: 'gemma3_text',
    vocab_size: 262144,
    hidden_size: 1152,
    intermediate_size: 6912,
    num_hidden_layers: 26,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    rope_local_base_freq: 10000.0,
    rope_scaling: null,
    sliding_window: 512,
    sliding_window_pattern: 6,
    query_pre_attn_scalar: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    tie_word_embeddings: true,
    max_position_embeddings: 32768,
  },
};

/**
 * Writes (once) a random-weight BF16 checkpoint with the shapes of `name` (or `shapes`) under `root`;
 * returns its directory. With `shardBytes`, tensors go in order into shards of at most that many
 * bytes (`model-0000k-of-0000n.safetensors` and `model.safetensors.index.json`, as transformers'
 * save_pretrained splits them); every tensor is generated as it is written, never the whole model.
 */
export async function randomCheckpoint(
  root: string,
  name: string,
  seed = 1,
  shapes = REAL_SHAPES[name],
  { shardBytes }: { shardBytes?: number } = {},
): Promise<string> {
  const dir = join(root, name);
  if (existsSync(join(dir, 'config.json'))) return dir;
  const config = { ...shapes, torch_dtype: 'bfloat16' };
  const spec = specFromConfig(config, name);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  let state = seed >>> 0 || 1;
  const tensors = [...expectedTensorShapes(spec)].map(([tensorName, shape]) => ({
    name: tensorName,
    dtype: 'BF16',
    shape,
    bytes: function* () {
      const n = shape.reduce((a, b) => a * b, 1);
      const f = new Float32Array(1);
      const bits = new Uint32Array(f.buffer);
      const isNorm = shape.length === 1 && /norm/.test(tensorName);
      // Norm weights: 1 (Gemma stores w with 1 + w applied, so 0); others: uniform ±√(3/fan_in)·0.5.
      const amplitude = isNorm ? 0 : Math.sqrt(3 / shape[shape.length - 1]) * 0.5;
      const base = isNorm && !spec.family.normPlusOne ? 1 : 0;
      for (let start = 0; start < n; start += 1 << 26) {
        const out = new Uint16Array(Math.min(1 << 26, n - start)); // 128 MiB chunks
        for (let i = 0; i < out.length; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          f[0] = base + amplitude * ((state >>> 0) / 2 ** 31 - 1);
          out[i] = bits[0] >>> 16;
        }
        yield new Uint8Array(out.buffer);
      }
    },
  }));
  const bytesOf = (t: { shape: number[] }) => 2 * t.shape.reduce((a, b) => a * b, 1);
  const shards: (typeof tensors)[] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (shardBytes != null && size > 0 && size + bytesOf(t) > shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytesOf(t);
  }
  if (shardBytes == null) await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
  else {
    const n = String(shards.length).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    for (const [k, shard] of shards.entries()) {
      const file = `model-${String(k + 1).padStart(5, '0')}-of-${n}.safetensors`;
      await writeSafetensors(join(tmp, file), shard, { format: 'pt' });
      for (const t of shard) weightMap[t.name] = file;
    }
    const totalSize = tensors.reduce((sum, t) => sum + bytesOf(t), 0);
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    writeFileSync(join(tmp, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  }
  writeFileSync(join(tmp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  renameSync(tmp, dir);
  return dir;
}
