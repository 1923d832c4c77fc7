/**
 * llama.cpp itself (npm node-llama-cpp, its prebuilt CPU binary) as the oracle for exported GGUF
 * files, beside our own engine: token ids, next-token log-probabilities, greedy continuations.
 */
import { availableParallelism } from 'node:os';
import { getLlama, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { Decoder } from '../../src/engine/decoder.js';
import { Engine } from '../../src/engine/engine.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';

let llama: Promise<Llama> | undefined;

/** One llama.cpp instance per test process; never builds from source, never uses a GPU. */
export function llamaCpp(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  return llama;
}

/** ggml threads spin: never more than the free cores (here: all of them, tests run one at a time). */
const THREADS = Math.max(1, availableParallelism());

export async function loadGguf(file: string, vocabOnly = false): Promise<LlamaModel> {
  return (await llamaCpp()).loadModel({ modelPath: file, gpuLayers: 0, vocabOnly });
}

/** llama.cpp's log-probabilities [T][V] after each prefix of `ids` (F32 key/value cache). */
export async function llamaLogProbs(model: LlamaModel, ids: number[], vocabSize: number): Promise<Float64Array[]> {
  const context = await model.createContext({
    contextSize: Math.max(32, ids.length),
    batchSize: Math.max(32, ids.length),
    threads: THREADS,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  try {
    const results = await context
      .getSequence()
      .controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { probabilities: true } }]));
    return results.map((r, t) => {
      const probabilities = r?.next?.probabilities;
      if (!probabilities) throw new Error(`llama.cpp returned no probabilities at position ${t}`);
      const out = new Float64Array(vocabSize).fill(-Infinity);
      for (const [token, p] of probabilities) out[token] = Math.log(p);
      return out;
    });
  } finally {
    await context.dispose();
  }
}

/** Our engine's log-softmax rows [T][V] for `ids`. */
export async function ourLogProbs(dir: string, ids: number[]): Promise<Float64Array[]> {
  const engine = new Engine(openCheckpoint(dir), { tokensPerRun: 256 });
  try {
    const { logits } = await engine.forward([ids], { logits: true });
    const all = logits![0];
    const V = all.length / ids.length;
    return ids.map((_, t) => logSoftmax(all.subarray(t * V, (t + 1) * V)));
  } finally {
    await engine.release();
  }
}

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}

/**
 * Largest |Δ log p| over every (position, token) where either side gives the token p ≥ 1e-6
 * (below that, llama.cpp's f32 probabilities lose the digits a log needs), and the number compared.
 */
export function maxLogProbDiff(ours: Float64Array[], theirs: Float64Array[]): { max: number; compared: number } {
  let max = 0;
  let compared = 0;
  const floor = Math.log(1e-6);
  ours.forEach((row, t) => {
    row.forEach((lp, token) => {
      const other = theirs[t][token];
      if (lp < floor && other < floor) return;
      compared++;
      max = Math.max(max, Math.abs(lp - other));
    });
  });
  return { max, compared };
}

/** llama.cpp's greedy continuation (temperature 0) of `prompt`, `n` tokens. */
export async function llamaGreedy(model: LlamaModel, prompt: number[], n: number): Promise<number[]> {
  const context = await model.createContext({
    contextSize: prompt.length + n + 1,
    threads: THREADS,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  try {
    const out: number[] = [];
    for await (const token of context.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      out.push(token);
      if (out.length === n) break;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

/** Our greedy continuation with the key/value-cache decoder. */
export async function ourGreedy(dir: string, prompt: number[], n: number): Promise<number[]> {
  const decoder = await Decoder.open(openCheckpoint(dir));
  try {
    let row = await decoder.prefill(prompt);
    const out: number[] = [];
    while (out.length < n) {
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
      out.push(best);
      if (out.length < n) row = await decoder.step(best);
    }
    return out;
  } finally {
    await decoder.release();
  }
}
