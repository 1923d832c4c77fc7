/**
 * Greedy decoding with every layer's weights resident and a key/value cache: one sequence
 * (`generate`, `prefill`/`step`) or several decoded together (`generateBatch`). The layer-wise
 * Engine suits batched scoring (a layer's weights are read once per batch); decoding needs every
 * layer at every step, so the Decoder keeps them all in memory and runs each step on the new
 * token(s) only. Used for generate_until tasks, greedy agreement and per-token latency.
 *
 * Weights are held in f32 or as stored (see DecoderOptions.weights). A decoding step reads every
 * weight once, so widening bf16/f16 inside the graph at every step makes it slower (see
 * docs/benchmarks.md, "Narrow weights"); f32 is the default while it fits comfortably in memory.
 */
import { totalmem } from 'node:os';
import ort from 'onnxruntime-node';
import type { Checkpoint } from '../model/checkpoint.js';
import type { ModelSpec } from '../model/spec.js';
import { EMBED } from '../model/tensor-names.js';
import { check } from '../util/errors.js';
import { buildHeadGraph } from './head-graph.js';
import { buildLayerGraph } from './layer-graph.js';
import { embedInto, type HeadWeights, loadHeadWeights, loadLayerWeights } from './layer-weights.js';
import { attentionMask, ropeTables } from './positions.js';
import { createSession } from './session.js';

interface Cache {
  key: ort.Tensor; // [1, K, P, hd]
  value: ort.Tensor; // [1, K, P, hd]
}

/** Where generateBatch's time went (accumulated until reset; for benchmarks). */
export interface DecoderTimings {
  /** Prompt runs and decoding steps (one layer call per step for all unfinished sequences). */
  prefillMs: number;
  decodeMs: number;
  steps: number;
  /** Inside those: layer session runs, LM head runs, building masks and RoPE rows. */
  layersMs: number;
  headMs: number;
  feedsMs: number;
}

export interface DecoderOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /**
   * 'f32': weights widened once when opened (fastest steps); 'stored': as the checkpoint stores
   * them (bf16/f16: half the memory), widened in the graph at every step. Default: 'f32' when the
   * widened weights take at most a quarter of this machine's memory, else 'stored'.
   */
  weights?: 'f32' | 'stored';
}

/** 'f32' when the layers and head widened to f32 fit in a quarter of the machine's memory. */
function defaultWeights(ckpt: Checkpoint): 'f32' | 'stored' {
  let elements = 0;
  for (const [name, info] of ckpt.tensors)
    if (name !== EMBED || ckpt.spec.tiedEmbeddings) elements += info.shape.reduce((a, b) => a * b, 1);
  return 4 * elements <= totalmem() / 4 ? 'f32' : 'stored';
}

export class Decoder {
  private caches: Cache[] = [];
  readonly timings: DecoderTimings = { prefillMs: 0, decodeMs: 0, steps: 0, layersMs: 0, headMs: 0, feedsMs: 0 };

  private constructor(
    readonly spec: ModelSpec,
    private readonly layerSession: ort.InferenceSession,
    private readonly headSession: ort.InferenceSession,
    private readonly ckpt: Checkpoint,
    private readonly layers: Record<string, ort.Tensor>[],
    private readonly head: HeadWeights,
  ) {}

  static async open(ckpt: Checkpoint, options: DecoderOptions = {}): Promise<Decoder> {
    const spec = ckpt.spec;
    const narrow = (options.weights ?? defaultWeights(ckpt)) === 'stored';
    let layers = Array.from({ length: spec.numLayers }, (_, layer) => loadLayerWeights(ckpt, layer, narrow));
    // One layer graph serves every layer: layers stored in different dtypes are all widened to f32.
    if (new Set(layers.map((l) => JSON.stringify(l.wires))).size > 1)
      layers = layers.map((_, layer) => loadLayerWeights(ckpt, layer, false));
    const head = loadHeadWeights(ckpt, narrow);
    const [layerSession, headSession] = await Promise.all([
      createSession(
        buildLayerGraph(spec, { stats: false, cache: true, rowPositions: true, wires: layers[0].wires }),
        options.threads,
        false,
      ),
      createSession(buildHeadGraph(spec, head.wire, { logits: true }), options.threads, false),
    ]);
    return new Decoder(
      spec,
      layerSession,
      headSession,
      ckpt,
      layers.map((l) => l.feeds),
      head,
    );
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.caches[0]?.key.dims[2] ?? 0;
  }

  /** Starts a new sequence: runs the prompt and returns the logits [V] of its last position. */
  async prefill(prompt: readonly number[]): Promise<Float32Array> {
    check(prompt.length > 0, 'the prompt is empty');
    const { numKvHeads: K, headDim: hd } = this.spec;
    const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, K, 0, hd]);
    this.caches = this.layers.map(() => ({ key: empty(), value: empty() }));
    return this.run(prompt);
  }

  /** Appends one token and returns its logits [V]. */
  async step(token: number): Promise<Float32Array> {
    check(this.caches.length > 0, 'step() before prefill()');
    return this.run([token]);
  }

  /** Greedy continuation of `prompt`: up to `maxNew` tokens, fewer if `stop` says so after a token. */
  async generate(prompt: readonly number[], maxNew: number, stop: (generated: number[]) => boolean = () => false): Promise<number[]> {
    const generated: number[] = [];
    let next = argmax(await this.prefill(prompt));
    for (;;) {
      generated.push(next);
      if (generated.length >= maxNew || stop(generated)) return generated;
      next = argmax(await this.step(next));
    }
  }

  /**
   * Greedy continuations of several prompts decoded together. Each prompt is prefilled alone (as
   * `generate` does); their caches are then stacked as the batch dimension, [B, K, P, hd] with
   * P the longest prompt (row b's keys in columns 0..len_b−1, the rest padding), and every step
   * runs one token of each unfinished sequence through each layer as one call (the weights are
   * read once per step for all of them) and appends one column to every row. Each row has its
   * own RoPE position and mask (`rowPositions`): it sees its prompt columns and the decoded
   * columns, never padding or another row, so each continuation is the one `generate` gives
   * alone, and attention costs what B separate sequences cost. When sequences finish, the cache
   * is compacted to the rows still running. `stop(i, generated)` ends sequence i after a token;
   * `maxNew` bounds every sequence.
   */
  async generateBatch(
    prompts: readonly (readonly number[])[],
    maxNew: number,
    stop: (index: number, generated: number[]) => boolean = () => false,
  ): Promise<number[][]> {
    check(
      prompts.every((p) => p.length > 0),
      'a prompt is empty',
    );
    const { numKvHeads: K, headDim: hd } = this.spec;
    const B = prompts.length;
    const lengths = prompts.map((p) => p.length);
    const P = Math.max(...lengths);
    const t0 = performance.now();
    // Prefill alone, then stack: keys/values per layer [B, K, P, hd].
    const keys = this.layers.map(() => new Float32Array(B * K * P * hd));
    const values = this.layers.map(() => new Float32Array(B * K * P * hd));
    const next: number[] = new Array(B);
    for (const [b, prompt] of prompts.entries()) {
      next[b] = argmax(await this.prefill(prompt));
      const L = prompt.length;
      this.caches.forEach((cache, layer) => {
        for (let k = 0; k < K; k++) {
          const src = k * L * hd; // [1, K, L, hd]
          const dst = (b * K + k) * P * hd;
          keys[layer].set((cache.key.data as Float32Array).subarray(src, src + L * hd), dst);
          values[layer].set((cache.value.data as Float32Array).subarray(src, src + L * hd), dst);
        }
      });
    }
    let rows = prompts.map((_, b) => b); // the sequence of each cache row
    this.caches = this.layers.map((_, layer) => ({
      key: new ort.Tensor('float32', keys[layer], [B, K, P, hd]),
      value: new ort.Tensor('float32', values[layer], [B, K, P, hd]),
    }));
    const t1 = performance.now();
    this.timings.prefillMs += t1 - t0;

    const generated: number[][] = prompts.map(() => []);
    for (;;) {
      for (const b of rows) generated[b].push(next[b]);
      const running = rows.filter((b) => !(generated[b].length >= maxNew || stop(b, generated[b])));
      if (running.length === 0) break;
      if (running.length < rows.length) this.keepRows(rows, running);
      rows = running;
      const tokens = await this.batchStep(
        rows.map((b) => next[b]),
        rows.map((b) => lengths[b]),
        rows.map((b) => lengths[b] + generated[b].length - 1),
        P,
      );
      rows.forEach((b, r) => (next[b] = tokens[r]));
      this.timings.steps++;
    }
    this.timings.decodeMs += performance.now() - t1;
    this.caches = [];
    return generated;
  }

  /** Compacts the cache [R, K, S, hd] to the rows whose sequences are in `keep` (in order). */
  private keepRows(rows: number[], keep: number[]): void {
    const picked = keep.map((b) => rows.indexOf(b));
    this.caches = this.caches.map(({ key, value }) => {
      const [, K, S, hd] = key.dims;
      const row = K * S * hd;
      const gather = (t: ort.Tensor) => {
        const data = t.data as Float32Array;
        const out = new Float32Array(picked.length * row);
        picked.forEach((r, i) => out.set(data.subarray(r * row, (r + 1) * row), i * row));
        return new ort.Tensor('float32', out, [picked.length, K, S, hd]);
      };
      return { key: gather(key), value: gather(value) };
    });
  }

  /**
   * One decoding step of R sequences: ids[r] at position pos[r]; row r's cache holds its prompt
   * in columns 0..promptLength[r]−1, padding up to P, then one column per step. Returns the argmax per row.
   */
  private async batchStep(ids: readonly number[], promptLength: readonly number[], pos: readonly number[], P: number): Promise<number[]> {
    const { hiddenSize: D, vocabSize: V, headDim: hd } = this.spec;
    for (const id of ids) check(Number.isInteger(id) && id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    const R = ids.length;
    const S = this.caches[0].key.dims[2] + 1; // keys after this step's column
    const x = new Float32Array(R * D); // [R, 1, D]
    embedInto(x, 0, ids, this.ckpt);
    let hidden: ort.Tensor = new ort.Tensor('float32', x, [R, 1, D]);
    const positionFeeds = new Map<string, Record<string, ort.Tensor>>(); // per distinct layer kind
    for (const [layer, weights] of this.layers.entries()) {
      const layerSpec = this.spec.layers[layer];
      const kind = JSON.stringify(layerSpec);
      const tFeeds = performance.now();
      let positions = positionFeeds.get(kind);
      if (!positions) {
        const cos = new Float32Array(R * hd); // [R, 1, 1, hd]
        const sin = new Float32Array(R * hd);
        const mask = new Float32Array(R * S).fill(-Infinity); // [R, 1, 1, 1, S]
        for (let r = 0; r < R; r++) {
          const row = ropeTables(layerSpec.rope, hd, 1, pos[r]);
          cos.set(row.cos, r * hd);
          sin.set(row.sin, r * hd);
          for (let c = 0; c < S; c++) {
            const keyPos = c < P ? c : promptLength[r] + (c - P); // padding columns: c ≥ promptLength, c < P
            const visible = (c < promptLength[r] || c >= P) && (layerSpec.window == null || pos[r] - keyPos < layerSpec.window);
            if (visible) mask[r * S + c] = 0;
          }
        }
        positions = {
          cos: new ort.Tensor('float32', cos, [R, 1, 1, hd]),
          sin: new ort.Tensor('float32', sin, [R, 1, 1, hd]),
          mask: new ort.Tensor('float32', mask, [R, 1, 1, 1, S]),
        };
        positionFeeds.set(kind, positions);
      }
      const cache = this.caches[layer];
      const tRun = performance.now();
      const out = await this.layerSession.run({ ...weights, hidden, ...positions, pastKey: cache.key, pastValue: cache.value });
      this.timings.feedsMs += tRun - tFeeds;
      this.timings.layersMs += performance.now() - tRun;
      hidden = out.hidden_out;
      this.caches[layer] = { key: out.key, value: out.value };
    }
    const tHead = performance.now();
    const out = await this.headSession.run(
      {
        hidden: new ort.Tensor('float32', hidden.data as Float32Array, [R, D]),
        norm: this.head.norm,
        ...this.head.feeds,
        targets: new ort.Tensor('int64', new BigInt64Array(R), [R, 1]),
      },
      ['argmax'],
    );
    this.timings.headMs += performance.now() - tHead;
    return Array.from(out.argmax.data as BigInt64Array, Number);
  }

  private async run(ids: readonly number[]): Promise<Float32Array> {
    const { hiddenSize: D, vocabSize: V, headDim: hd } = this.spec;
    for (const id of ids) check(Number.isInteger(id) && id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    const T = ids.length;
    const past = this.length;
    const x = new Float32Array(T * D); // [1, T, D]
    embedInto(x, 0, ids, this.ckpt);
    let hidden: ort.Tensor = new ort.Tensor('float32', x, [1, T, D]);
    const positionFeeds = new Map<string, Record<string, ort.Tensor>>(); // per distinct layer kind
    for (const [layer, weights] of this.layers.entries()) {
      const layerSpec = this.spec.layers[layer];
      const key = JSON.stringify(layerSpec);
      let positions = positionFeeds.get(key);
      if (!positions) {
        const { cos, sin } = ropeTables(layerSpec.rope, hd, T, past);
        positions = {
          cos: new ort.Tensor('float32', cos, [1, T, 1, hd]),
          sin: new ort.Tensor('float32', sin, [1, T, 1, hd]),
          mask: new ort.Tensor('float32', attentionMask(layerSpec, T, past), [1, 1, 1, T, past + T]),
        };
        positionFeeds.set(key, positions);
      }
      const cache = this.caches[layer];
      const out = await this.layerSession.run({ ...weights, hidden, ...positions, pastKey: cache.key, pastValue: cache.value });
      hidden = out.hidden_out;
      this.caches[layer] = { key: out.key, value: out.value };
    }
    const last = (hidden.data as Float32Array).subarray((T - 1) * D, T * D); // [1, D]
    const out = await this.headSession.run(
      {
        hidden: new ort.Tensor('float32', last, [1, D]),
        norm: this.head.norm,
        ...this.head.feeds,
        targets: new ort.Tensor('int64', new BigInt64Array(1), [1, 1]),
      },
      ['logits'],
    );
    return out.logits.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.layerSession.release();
    await this.headSession.release();
    this.caches = [];
  }
}

/** Index of the largest value (the first on ties, like torch.argmax). */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
