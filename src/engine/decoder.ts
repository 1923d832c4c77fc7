/**
 * Greedy decoding of one sequence with every layer's weights resident and a key/value cache.
 * The layer-wise Engine suits batched scoring (a layer's weights are read once per batch);
 * decoding needs every layer at every step, so the Decoder keeps them all in memory (f32) and
 * runs each step on the new token only. Used for greedy agreement and per-token latency.
 */
import ort from 'onnxruntime-node';
import type { Checkpoint } from '../model/checkpoint.js';
import type { ModelSpec } from '../model/spec.js';
import { check } from '../util/errors.js';
import { buildHeadGraph } from './head-graph.js';
import { buildLayerGraph } from './layer-graph.js';
import { embedInto, loadEmbedding, loadHeadWeights, loadLayerWeights } from './layer-weights.js';
import { attentionMask, ropeTables } from './positions.js';
import { createSession } from './session.js';

interface Cache {
  key: ort.Tensor; // [1, K, P, hd]
  value: ort.Tensor; // [1, K, P, hd]
}

export class Decoder {
  private caches: Cache[] = [];

  private constructor(
    readonly spec: ModelSpec,
    private readonly layerSession: ort.InferenceSession,
    private readonly headSession: ort.InferenceSession,
    private readonly layers: Record<string, ort.Tensor>[],
    private readonly embedding: Float32Array, // [V, D]
    private readonly head: { norm: ort.Tensor; weight: ort.Tensor },
  ) {}

  static async open(ckpt: Checkpoint, options: { threads?: number } = {}): Promise<Decoder> {
    const spec = ckpt.spec;
    const embedding = loadEmbedding(ckpt);
    const layers = Array.from({ length: spec.numLayers }, (_, layer) => loadLayerWeights(ckpt, layer));
    const [layerSession, headSession] = await Promise.all([
      createSession(buildLayerGraph(spec, { stats: false, cache: true }), options.threads, false),
      createSession(buildHeadGraph(spec), options.threads, false),
    ]);
    return new Decoder(spec, layerSession, headSession, layers, embedding, loadHeadWeights(ckpt, embedding));
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
   * Greedy continuations of several prompts decoded together: every step runs one token of each
   * unfinished sequence through the layers as one call (the weights are read once per step for
   * all of them). The sequences share one key/value cache, packed one after another; each query
   * sees only its own sequence's keys (by the additive mask) at its own positions (RoPE rows per
   * token), so each continuation is the one `generate` gives alone. `stop(i, generated)` ends
   * sequence i after a token; `maxNew` bounds every sequence.
   */
  async generateBatch(prompts: readonly (readonly number[])[], maxNew: number, stop: (index: number, generated: number[]) => boolean = () => false): Promise<number[][]> {
    check(prompts.every((p) => p.length > 0), 'a prompt is empty');
    const { numKvHeads: K, headDim: hd } = this.spec;
    const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, K, 0, hd]);
    this.caches = this.layers.map(() => ({ key: empty(), value: empty() }));
    const cacheSeq: number[] = []; // per cache column: its sequence and position
    const cachePos: number[] = [];
    const generated: number[][] = prompts.map(() => []);
    const next: number[] = new Array(prompts.length);
    // Prefill, one prompt per call (its mask hides the prompts before it).
    for (const [i, prompt] of prompts.entries()) {
      const [token] = await this.runPacked(prompt, prompt.map(() => i), prompt.map((_, t) => t), cacheSeq, cachePos, [prompt.length - 1]);
      next[i] = token;
    }
    let active = prompts.map((_, i) => i);
    while (active.length > 0) {
      for (const i of active) generated[i].push(next[i]);
      active = active.filter((i) => !(generated[i].length >= maxNew || stop(i, generated[i])));
      if (active.length === 0) break;
      const tokens = await this.runPacked(
        active.map((i) => next[i]),
        active,
        active.map((i) => prompts[i].length + generated[i].length - 1),
        cacheSeq,
        cachePos,
        active.map((_, t) => t),
      );
      active.forEach((i, t) => (next[i] = tokens[t]));
    }
    this.caches = [];
    return generated;
  }

  /** Runs tokens of several sequences (seq[t], at position pos[t]) over the shared cache; returns the argmax at the rows asked. */
  private async runPacked(ids: readonly number[], seq: readonly number[], pos: readonly number[], cacheSeq: number[], cachePos: number[], rows: readonly number[]): Promise<number[]> {
    const { hiddenSize: D, vocabSize: V, headDim: hd } = this.spec;
    for (const id of ids) check(Number.isInteger(id) && id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    const T = ids.length;
    const past = cacheSeq.length;
    const keySeq = cacheSeq.concat(seq);
    const keyPos = cachePos.concat(pos);
    const x = new Float32Array(T * D); // [1, T, D]
    embedInto(x, 0, ids, this.embedding, D, this.spec.embedScale);
    let hidden: ort.Tensor = new ort.Tensor('float32', x, [1, T, D]);
    const positionFeeds = new Map<string, Record<string, ort.Tensor>>(); // per distinct layer kind
    for (const [layer, weights] of this.layers.entries()) {
      const layerSpec = this.spec.layers[layer];
      const key = JSON.stringify(layerSpec);
      let positions = positionFeeds.get(key);
      if (!positions) {
        const cos = new Float32Array(T * hd);
        const sin = new Float32Array(T * hd);
        pos.forEach((p, t) => {
          const row = ropeTables(layerSpec.rope, hd, 1, p);
          cos.set(row.cos, t * hd);
          sin.set(row.sin, t * hd);
        });
        const S = past + T;
        const mask = new Float32Array(T * S).fill(-Infinity);
        for (let t = 0; t < T; t++) {
          for (let k = 0; k < S; k++) {
            const visible = keySeq[k] === seq[t] && keyPos[k] <= pos[t] && (layerSpec.window == null || pos[t] - keyPos[k] < layerSpec.window);
            if (visible) mask[t * S + k] = 0;
          }
        }
        positions = {
          cos: new ort.Tensor('float32', cos, [T, 1, hd]),
          sin: new ort.Tensor('float32', sin, [T, 1, hd]),
          mask: new ort.Tensor('float32', mask, [T, S]),
        };
        positionFeeds.set(key, positions);
      }
      const cache = this.caches[layer];
      const out = await this.layerSession.run({ ...weights, hidden, ...positions, pastKey: cache.key, pastValue: cache.value });
      hidden = out.hidden_out;
      this.caches[layer] = { key: out.key, value: out.value };
    }
    cacheSeq.push(...seq);
    cachePos.push(...pos);
    const all = hidden.data as Float32Array;
    const picked = new Float32Array(rows.length * D); // [N, D]
    rows.forEach((r, n) => picked.set(all.subarray(r * D, (r + 1) * D), n * D));
    const out = await this.headSession.run(
      { hidden: new ort.Tensor('float32', picked, [rows.length, D]), norm: this.head.norm, head: this.head.weight, targets: new ort.Tensor('int64', new BigInt64Array(rows.length), [rows.length, 1]) },
      ['argmax'],
    );
    return Array.from(out.argmax.data as BigInt64Array, Number);
  }

  private async run(ids: readonly number[]): Promise<Float32Array> {
    const { hiddenSize: D, vocabSize: V, headDim: hd } = this.spec;
    for (const id of ids) check(Number.isInteger(id) && id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    const T = ids.length;
    const past = this.length;
    const x = new Float32Array(T * D); // [1, T, D]
    embedInto(x, 0, ids, this.embedding, D, this.spec.embedScale);
    let hidden: ort.Tensor = new ort.Tensor('float32', x, [1, T, D]);
    const positionFeeds = new Map<string, Record<string, ort.Tensor>>(); // per distinct layer kind
    for (const [layer, weights] of this.layers.entries()) {
      const layerSpec = this.spec.layers[layer];
      const key = JSON.stringify(layerSpec);
      let positions = positionFeeds.get(key);
      if (!positions) {
        const { cos, sin } = ropeTables(layerSpec.rope, hd, T, past);
        positions = {
          cos: new ort.Tensor('float32', cos, [T, 1, hd]),
          sin: new ort.Tensor('float32', sin, [T, 1, hd]),
          mask: new ort.Tensor('float32', attentionMask(layerSpec, T, past), [T, past + T]),
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
      { hidden: new ort.Tensor('float32', last, [1, D]), norm: this.head.norm, head: this.head.weight, targets: new ort.Tensor('int64', new BigInt64Array(1), [1, 1]) },
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
