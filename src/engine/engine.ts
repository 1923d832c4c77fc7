/**
 * The layer-wise forward pass. Sequences are right-padded into micro-batches; for each layer the
 * weights are loaded once and every micro-batch runs through it, so one layer is resident at a
 * time while the hidden states of all sequences stay in memory between layers. Statistics are
 * reduced inside the graph; only [I]-sized vectors come back per layer.
 */
import ort from 'onnxruntime-node';
import type { Checkpoint } from '../model/checkpoint.js';
import type { ModelSpec } from '../model/spec.js';
import { check } from '../util/errors.js';
import { buildExpectedGraph, buildHeadGraph } from './head-graph.js';
import { runHead } from './head-run.js';
import { GramRowGroups } from './gram-layout.js';
import { buildLayerGraph, type LayerGraphOptions } from './layer-graph.js';
import { layerTensorShapes, type LayerTensorRole } from '../model/tensor-names.js';
import { embedInto, type HeadWeights, loadHeadWeights, loadLayerWeights } from './layer-weights.js';
import { attentionMask, ropeTables } from './positions.js';
import { type Precision, WeightQuantizer } from './precision.js';
import { createSession } from './session.js';

export interface EngineOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /** Target tokens per ONNX Runtime run (padded B·T). */
  tokensPerRun?: number;
  /** How the layers' projections and the LM head multiply (default fp32; see precision.ts). */
  precision?: Precision;
}

export interface ForwardRequest {
  /** Per sequence, G weights per position ([T, G] row-major) for the layer statistics (enables act² and influence). */
  statWeights?: Float32Array[];
  /** G: how many weightings statWeights holds per position (default 1). */
  statGroups?: number;
  /**
   * Called after each micro-batch of a layer with each of its sequences' own act² [G, I] (f32, not
   * summed with the other sequences of the batch, so it does not depend on how they were batched)
   * and block influence, for a caller that sums them its own way (prune: exactly).
   */
  onSequenceStats?: (layer: number, sequence: number, act2: Float32Array, influence: number) => void;
  /**
   * Per sequence, the tokens whose log-probabilities to return: K = targetGroups per position
   * ([T, K] row-major, −1: none). The head runs only on positions with a target (unless logits
   * are requested), so scoring a few continuation tokens after a long context costs little.
   */
  targets?: Int32Array[];
  /** K: candidate targets per position (default 1), e.g. several one-token answers after one shared input. */
  targetGroups?: number;
  /**
   * Per sequence, a token tree instead of a chain: the parent index of each token (−1: the token
   * starts a new chain at position 0; a parent precedes its children). A token sits at position =
   * its depth and attends to its ancestors and itself only, so one run can hold several sequences
   * that share prefixes (a prompt and each of its answers) without computing the prefix twice.
   * A sequence with a tree runs alone in its micro-batch.
   */
  parents?: (Int32Array | undefined)[];
  /** Return full logits [T, V] per sequence (small models and tests only). */
  logits?: boolean;
  /**
   * Adds, per token id, the next-token probabilities of every position of every sequence (padding
   * left out) into this [V] sum: the model's expected token counts, summed inside ONNX Runtime
   * (head-graph.ts buildExpectedGraph), never holding [T, V] logits.
   */
  expected?: Float64Array;
  /**
   * The Gram of down_proj's inputs per layer, for least-squares compensation: per sequence C
   * weights per position (≥ 0, [T, C] row-major; 0: the position is left out), and a callback that
   * gets layer ℓ's Gram [C, P] (upper block triangle, packed as gram-layout.ts says; f32, summed over
   * micro-batches) and act² (when statWeights are given) as soon as the layer has run. The Gram is
   * not kept: only one layer's is ever in memory.
   */
  gram?: { weights: Float32Array[]; groups: number } & (
    | { rows?: false; onLayer: (layer: number, gram: Float32Array, act2: Float64Array | undefined) => void | Promise<void> }
    /**
     * rows: the callback gets layer ℓ's Gram rows √w_t·h_t of every micro-batch by group instead
     * (gram-layout.ts GramRowGroups; group c's Gram is Σ rowᵀ·row over its rows): compensation
     * forms only the parts it needs once the layer's kept channels are known. The rows are
     * overwritten by the next layer's: use them before the callback's promise settles.
     */
    | { rows: true; onLayer: (layer: number, gram: GramRowGroups, act2: Float64Array | undefined) => void | Promise<void> }
  );
  /**
   * Sequential statistics: after layer ℓ's statistics (and gram.onLayer), weights to run layer ℓ
   * again with (same shapes; e.g. down_proj with removed columns zeroed and the rest refitted), so
   * layer ℓ + 1 sees the hidden states the pruned model produces. null: keep the layer's output.
   */
  rewriteLayer?: (layer: number) => Record<string, Float32Array> | null;
  /** Called after each layer has processed every micro-batch. */
  onLayer?: (layer: number, layers: number) => void;
}

export interface ForwardResult {
  /** Per layer, Σ_t w_{t,g}·h_t² per weighting g and FFN channel ([G, I]). */
  act2?: Float64Array[];
  /** Per layer, Σ_t w_t·(1 − cos(layer input, layer output)). */
  influence?: number[];
  /** Per sequence, log p(target) per position and group ([T, K]; NaN where the target was −1). */
  logprobs?: Float32Array[];
  /** Per sequence, the greedy (argmax) token at each position that had a target (−1 elsewhere). */
  argmax?: Int32Array[];
  /** Per sequence, logits [T, V]. */
  logits?: Float32Array[];
  /** Wall time: reading weights, running layers, running the head. */
  timings: { loadMs: number; layersMs: number; headMs: number };
}

interface MicroBatch {
  /** Indices of its sequences in the request. */
  members: number[];
  length: number;
  hidden: ort.Tensor; // [B, T, D]
  statWeights?: ort.Tensor; // [B, T, G]
  /** Gram feeds (see ForwardRequest.gram): gathered positions, their weights, positions per group (also in `split`). */
  gram?: { feeds: Record<string, ort.Tensor>; split: number[] };
  /** Token tree of its only sequence (see ForwardRequest.parents), with its position feeds per layer kind. */
  tree?: { parents: Int32Array; depths: Int32Array; feeds: Map<string, Record<string, ort.Tensor>> };
}

export class Engine {
  private layerSessions = new Map<string, Promise<ort.InferenceSession>>();
  private headSessions = new Map<boolean, Promise<ort.InferenceSession>>();
  private expectedGraphSession: Promise<ort.InferenceSession> | undefined;
  private quantizer?: WeightQuantizer;
  private head?: HeadWeights;

  constructor(
    readonly ckpt: Checkpoint,
    private readonly options: EngineOptions = {},
  ) {}

  get spec(): ModelSpec {
    return this.ckpt.spec;
  }

  async forward(sequences: number[][], request: ForwardRequest = {}): Promise<ForwardResult> {
    const spec = this.spec;
    for (const [i, seq] of sequences.entries()) {
      check(seq.length > 0, `sequence ${i} is empty`);
      for (const id of seq)
        check(
          Number.isInteger(id) && id >= 0 && id < spec.vocabSize,
          `sequence ${i}: token id ${id} is outside the vocabulary [0, ${spec.vocabSize})`,
        );
    }
    const stats = request.statWeights != null;
    const groups = request.statGroups ?? 1;
    const batches = this.makeMicroBatches(sequences, request.statWeights, groups, request.parents);
    const gramGroups = request.gram?.groups ?? 0;
    const asRows = request.gram?.rows === true;
    if (request.gram) for (const batch of batches) batch.gram = gramFeeds(batch, sequences, request.gram.weights, gramGroups, !asRows);
    const perSequence = stats && request.onSequenceStats != null;
    const timings = { loadMs: 0, layersMs: 0, headMs: 0 };
    const precision = this.options.precision ?? 'fp32';
    const quantized = precision === 'fp32' ? {} : { precision }; // fp32 sessions keep their options as before
    const result: ForwardResult = stats ? { act2: [], influence: [], timings } : { timings };

    const quantizer = (this.quantizer ??= new WeightQuantizer(this.options.threads));
    const load = async (layer: number) => {
      const clock = performance.now();
      const weights = await quantizer.weightsFor(loadLayerWeights(this.ckpt, layer), precision);
      timings.loadMs += performance.now() - clock;
      return weights;
    };
    let weights = await load(0);
    // The Gram's rows [N_b, I] per micro-batch, written in place every layer (onLayer is done with a
    // layer's rows before the next one runs): fresh 40 MB outputs per micro-batch and layer keep the
    // garbage collector busy (GC 10.0 → 7.0 s of a Qwen2.5-0.5B-shaped compensated prune).
    const rowTensors = asRows
      ? batches.map(({ gram }) => {
          const N = gram!.split.reduce((n, c) => n + c, 0); // the gathered positions
          return new ort.Tensor('float32', new Float32Array(N * spec.intermediateSize), [N, spec.intermediateSize]);
        })
      : [];
    for (let layer = 0; layer < spec.numLayers; layer++) {
      const clock = performance.now();
      const act2 = new Float64Array(groups * spec.intermediateSize);
      let influence = 0;
      let gram: Float32Array | undefined; // [C, P] packed
      const gramRows: { rows: Float32Array; split: number[] }[] = []; // [N_b, I] per micro-batch
      const session = await this.layerSession({
        stats,
        gram: asRows ? 0 : gramGroups,
        ...(asRows ? { gramRows: true } : {}),
        perSequence,
        wires: weights.wires,
        ...quantized,
      });
      const inputs = request.rewriteLayer ? batches.map((b) => b.hidden) : null; // [B, T, D] each, for the rerun
      for (const [b, batch] of batches.entries()) {
        const feeds: Record<string, ort.Tensor> = {
          ...weights.feeds,
          hidden: batch.hidden,
          ...(batch.tree ? this.treeFeeds(layer, batch.tree) : this.positionFeeds(layer, batch.length)),
        };
        if (batch.statWeights) feeds.statWeights = batch.statWeights;
        if (batch.gram) Object.assign(feeds, batch.gram.feeds);
        const fetches = asRows
          ? Object.fromEntries(session.outputNames.map((name) => [name, name === 'gramRows' ? rowTensors[b] : null]))
          : undefined;
        const out = await session.run(feeds, fetches);
        batch.hidden = out.hidden_out;
        if (stats) {
          const a = out.act2.data as Float32Array; // [G, I], or [B, G, I] per sequence
          const n = act2.length;
          for (let j = 0; j < a.length; j++) act2[j % n] += a[j];
          const inf = out.influence.data as Float32Array; // [], or [B] per sequence
          for (const v of inf) influence += v;
          if (perSequence) batch.members.forEach((s, b) => request.onSequenceStats!(layer, s, a.subarray(b * n, (b + 1) * n), inf[b]));
        }
        if (asRows) gramRows.push({ rows: rowTensors[b].data as Float32Array, split: batch.gram!.split });
        else if (gramGroups) {
          const part = out.gram.data as Float32Array;
          if (!gram) gram = part;
          else for (let j = 0; j < part.length; j++) gram[j] += part[j];
        }
      }
      const g = request.gram;
      if (g?.rows) await g.onLayer(layer, new GramRowGroups(spec.intermediateSize, gramRows), stats ? act2 : undefined);
      else if (g) await g.onLayer(layer, gram!, stats ? act2 : undefined);
      const rewritten = request.rewriteLayer?.(layer);
      if (rewritten) {
        // The rewritten matrices come in f32.
        const wires = Object.fromEntries(Object.entries(weights.wires).filter(([role]) => !(role in rewritten)));
        const plain = await this.layerSession({ stats: false, wires, ...quantized });
        const shapes = layerTensorShapes(spec);
        const replaced = (
          await quantizer.weightsFor(
            {
              feeds: Object.fromEntries(
                Object.entries(rewritten).map(([role, data]) => [role, new ort.Tensor('float32', data, shapes[role as LayerTensorRole]!)]),
              ),
              wires: {},
            },
            precision,
          )
        ).feeds;
        for (const [i, batch] of batches.entries()) {
          const feeds: Record<string, ort.Tensor> = {
            ...weights.feeds,
            ...replaced,
            hidden: inputs![i],
            ...(batch.tree ? this.treeFeeds(layer, batch.tree) : this.positionFeeds(layer, batch.length)),
          };
          batch.hidden = (await plain.run(feeds)).hidden_out;
        }
      }
      if (layer + 1 < spec.numLayers) weights = await load(layer + 1);
      timings.layersMs += performance.now() - clock;
      if (stats) {
        result.act2!.push(act2);
        result.influence!.push(influence);
      }
      request.onLayer?.(layer + 1, spec.numLayers);
    }
    if (request.targets || request.logits || request.expected) {
      const clock = performance.now();
      const head = (this.head ??= await quantizer.headFor(loadHeadWeights(this.ckpt), precision));
      const sessions = {
        head: await this.headSession(head, request.logits === true),
        expected: request.expected ? await this.expectedSession(head) : undefined,
      };
      Object.assign(result, await runHead(sessions, head, this.spec, sequences, batches, request));
      timings.headMs = performance.now() - clock;
    }
    return result;
  }

  /** Groups sequences (longest first) into right-padded micro-batches of about tokensPerRun tokens; a sequence with a tree runs alone. */
  private makeMicroBatches(
    sequences: number[][],
    statWeights: Float32Array[] | undefined,
    groups: number,
    parents: (Int32Array | undefined)[] | undefined,
  ): MicroBatch[] {
    const D = this.spec.hiddenSize;
    const budget = this.options.tokensPerRun ?? 2048;
    const order = sequences.map((_, i) => i).sort((a, b) => sequences[b].length - sequences[a].length || a - b);
    const batches: MicroBatch[] = [];
    for (let start = 0; start < order.length;) {
      const length = sequences[order[start]].length;
      const parentsOfFirst = parents?.[order[start]];
      const tree = parentsOfFirst ? treeOf(parentsOfFirst, length, order[start]) : undefined;
      let count = tree ? 1 : Math.max(1, Math.min(order.length - start, Math.floor(budget / length)));
      for (let i = 1; i < count; i++) {
        if (parents?.[order[start + i]]) count = i; // trees run alone
      }
      const members = order.slice(start, start + count);
      start += count;
      const hidden = new Float32Array(count * length * D); // [B, T, D], padding stays 0
      const weights = statWeights ? new Float32Array(count * length * groups) : undefined; // [B, T, G], padding 0
      members.forEach((s, b) => {
        embedInto(hidden, b * length, sequences[s], this.ckpt);
        if (weights) {
          check(
            statWeights![s].length === sequences[s].length * groups,
            `statWeights of sequence ${s} has ${statWeights![s].length} entries for ${sequences[s].length} tokens × ${groups} groups`,
          );
          weights.set(statWeights![s], b * length * groups);
        }
      });
      batches.push({
        members,
        length,
        hidden: new ort.Tensor('float32', hidden, [count, length, D]),
        statWeights: weights && new ort.Tensor('float32', weights, [count, length, groups]),
        tree,
      });
    }
    return batches;
  }

  private positionCache = new Map<string, Record<string, ort.Tensor>>();

  private positionFeeds(layer: number, length: number): Record<string, ort.Tensor> {
    const spec = this.spec;
    const layerSpec = spec.layers[layer];
    const key = `${JSON.stringify(layerSpec)}:${length}`;
    let feeds = this.positionCache.get(key);
    if (!feeds) {
      const { cos, sin } = ropeTables(layerSpec.rope, spec.headDim, length);
      feeds = {
        cos: new ort.Tensor('float32', cos, [length, 1, spec.headDim]),
        sin: new ort.Tensor('float32', sin, [length, 1, spec.headDim]),
        mask: new ort.Tensor('float32', attentionMask(layerSpec, length), [length, length]),
      };
      if (this.positionCache.size > 16) this.positionCache.clear();
      this.positionCache.set(key, feeds);
    }
    return feeds;
  }

  /** RoPE rows gathered at each token's depth, and the ancestor mask (within the layer's window). */
  private treeFeeds(layer: number, tree: NonNullable<MicroBatch['tree']>): Record<string, ort.Tensor> {
    const spec = this.spec;
    const layerSpec = spec.layers[layer];
    const key = JSON.stringify(layerSpec);
    let feeds = tree.feeds.get(key);
    if (!feeds) {
      const { parents, depths } = tree;
      const T = parents.length;
      const hd = spec.headDim;
      const table = ropeTables(layerSpec.rope, hd, depths.reduce((a, b) => Math.max(a, b), 0) + 1);
      const cos = new Float32Array(T * hd);
      const sin = new Float32Array(T * hd);
      const mask = new Float32Array(T * T).fill(-Infinity); // [T, T]
      for (let q = 0; q < T; q++) {
        cos.set(table.cos.subarray(depths[q] * hd, (depths[q] + 1) * hd), q * hd);
        sin.set(table.sin.subarray(depths[q] * hd, (depths[q] + 1) * hd), q * hd);
        for (let k = q; k >= 0; k = parents[k]) {
          if (layerSpec.window == null || depths[q] - depths[k] < layerSpec.window) mask[q * T + k] = 0;
        }
      }
      feeds = {
        cos: new ort.Tensor('float32', cos, [T, 1, hd]),
        sin: new ort.Tensor('float32', sin, [T, 1, hd]),
        mask: new ort.Tensor('float32', mask, [T, T]),
      };
      tree.feeds.set(key, feeds);
    }
    return feeds;
  }

  /** The head's session: an f32 head has one graph; a narrow one a graph with logits and one without (see buildHeadGraph). */
  private headSession(head: HeadWeights, logits: boolean): Promise<ort.InferenceSession> {
    const key = (head.wire === 'float32' && !head.precision) || logits;
    let session = this.headSessions.get(key);
    if (!session) {
      const quantized = head.precision ? { precision: head.precision } : {};
      session = createSession(buildHeadGraph(this.spec, head.wire, { logits, ...quantized }), this.options.threads);
      this.headSessions.set(key, session);
    }
    return session;
  }

  /** The expected-counts graph's session (buildExpectedGraph), made on first use. */
  private expectedSession(head: HeadWeights): Promise<ort.InferenceSession> {
    this.expectedGraphSession ??= createSession(
      buildExpectedGraph(this.spec, head.wire, head.precision ? { precision: head.precision } : {}),
      this.options.threads,
    );
    return this.expectedGraphSession;
  }

  /** The layer session for these outputs and weight types (one per combination; usually every layer has the same). */
  private layerSession(options: LayerGraphOptions): Promise<ort.InferenceSession> {
    const key = JSON.stringify(options);
    let session = this.layerSessions.get(key);
    if (!session) {
      session = createSession(buildLayerGraph(this.spec, options), this.options.threads);
      this.layerSessions.set(key, session);
    }
    return session;
  }

  async release(): Promise<void> {
    const expected = this.expectedGraphSession ? [this.expectedGraphSession] : [];
    for (const s of [...this.layerSessions.values(), ...this.headSessions.values(), ...expected]) await (await s).release();
    this.expectedGraphSession = undefined;
    this.layerSessions.clear();
    this.headSessions.clear();
    await this.quantizer?.release();
    this.quantizer = undefined;
  }
}

/**
 * A micro-batch's Gram feeds: the flattened positions b·T + t with a nonzero weight, grouped by
 * group, their weights, and the count per group (a feed for the packed Gram's in-graph Split).
 * A group with no position gets one of weight 0, so every part of that Split is non-empty.
 */
function gramFeeds(
  batch: MicroBatch,
  sequences: number[][],
  weights: Float32Array[],
  groups: number,
  packed: boolean,
): NonNullable<MicroBatch['gram']> {
  const index: number[] = [];
  const scale: number[] = [];
  const split: number[] = [];
  for (let c = 0; c < groups; c++) {
    const before = index.length;
    batch.members.forEach((s, b) => {
      check(
        weights[s].length === sequences[s].length * groups,
        `gram weights of sequence ${s} has ${weights[s].length} entries for ${sequences[s].length} tokens × ${groups} groups`,
      );
      for (let t = 0; t < sequences[s].length; t++) {
        const w = weights[s][t * groups + c];
        if (w !== 0) {
          index.push(b * batch.length + t);
          scale.push(w);
        }
      }
    });
    if (index.length === before) {
      index.push(0);
      scale.push(0);
    }
    split.push(index.length - before);
  }
  const feeds: Record<string, ort.Tensor> = {
    gramIndex: new ort.Tensor('int64', BigInt64Array.from(index, BigInt), [index.length]),
    gramScale: new ort.Tensor('float32', Float32Array.from(scale), [scale.length, 1]),
  };
  if (packed && groups > 1) feeds.gramSplit = new ort.Tensor('int64', BigInt64Array.from(split, BigInt), [groups]);
  return { feeds, split };
}

/** Checks a parent array (each parent precedes its child) and computes the depths. */
function treeOf(parents: Int32Array, length: number, sequence: number): NonNullable<MicroBatch['tree']> {
  check(parents.length === length, `parents of sequence ${sequence} has ${parents.length} entries for ${length} tokens`);
  const depths = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const p = parents[i];
    check(
      Number.isInteger(p) && p >= -1 && p < i,
      `parents of sequence ${sequence}: token ${i} has parent ${p}; a parent must precede its child (−1: none)`,
    );
    depths[i] = p < 0 ? 0 : depths[p] + 1;
  }
  return { parents, depths, feeds: new Map() };
}
