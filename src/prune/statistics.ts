/**
 * Collecting statistics: the calibration text, and the one layer-wise forward pass over it that
 * counts every candidate split's common act² (and ShortGPT's Block Influence), and with
 * compensation each layer's Gram, solved into compensated down_proj weights as the layer arrives.
 */
import { Engine } from '../engine/engine.js';
import type { GramRowGroups, PackedGram } from '../engine/gram-layout.js';
import { loadF32 } from '../model/checkpoint.js';
import { LAYER_TENSORS, layerPrefix } from '../model/tensor-names.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { check } from '../util/errors.js';
import { readUserText } from '../util/files.js';
import { ExactStats, shardWindows } from './calib-shard.js';
import { buildCalibration, checkCalibrationLoss, lossTargets, type Calibration, windowsCalibration } from './calibration.js';
import type { Candidate } from './candidates.js';
import { compensateLayer, DEFAULT_DAMP, type Gemm, gramsAsRows, GroupGrams } from './compensate.js';
import { DEFAULT_SELECTION, keptAfter, removalOrder } from './greedy-removal.js';
import type { CompensatedStore } from './compensated-store.js';
import { formatExact, scaledToNumber } from './exact-sum.js';
import type { CalibrationPassOptions, CompensationOptions, OutputOptions, ScoringOptions, SearchOptions } from './options.js';
import type { CompensationReport } from './report.js';
import { AUTO_HOLDOUT_CHARS } from './search.js';
import { scoresRecord } from './scores-file.js';
import { type ChannelScores, type ExactScores, topChannels, type Weighting } from './scores.js';
import type { Source } from './source.js';
import { keepHash } from './vocabulary.js';

/**
 * The calibration windows, when a calibration pass needs them, or --auto its held-out text (the
 * calibration text's tail, or --search-text), or a frequency vocabulary its expected counts (then
 * fewer or shorter windows will do); null otherwise.
 */
export function calibrationFor(
  input: string,
  o: CalibrationPassOptions & Pick<SearchOptions, 'auto' | 'searchText'>,
  needs: { activations: boolean; expectedCounts: boolean },
): Calibration | null {
  const windowsNeeded = needs.activations || needs.expectedCounts;
  if (!windowsNeeded && !o.auto) return null;
  const searchText = o.auto && o.searchText != null ? readSearchText(o.searchText) : null;
  const calibration =
    o.calibWindows && windowsNeeded
      ? windowsCalibration(o.calibWindows, o.seed, o.calibField)
      : buildCalibration(loadTokenizer(input), o.calib, {
          samples: o.samples,
          seqLen: o.seqLen,
          seed: o.seed,
          field: o.calibField,
          holdOutChars: o.auto && searchText == null ? AUTO_HOLDOUT_CHARS : undefined,
          fewer: !needs.activations && !o.auto,
        });
  if (searchText == null) return calibration;
  check(
    !calibration.documents.some((d) => d.includes(searchText)),
    `${o.searchText}: --search-text is part of the calibration text, so the search would measure text the statistics were counted on; give held-out text, or leave --search-text out (the search then holds out the calibration text's last 10 %)`,
  );
  return { ...calibration, heldOut: searchText };
}

function readSearchText(file: string): string {
  const text = readUserText(file);
  check(text.trim().length > 0, `${file}: --search-text is empty; the split search needs text to measure`);
  return text;
}

/** Where compensated weights go: the pass's store, candidate k stored as `first + k`. */
export interface CompensationTarget {
  store: CompensatedStore;
  gemm: Gemm;
  first: number;
}

/** One pass's statistics: per candidate, its scores, its compensation report, and its exact sums (for a scores file). */
export interface PassStatistics {
  scores: ChannelScores[];
  /** Per candidate, the kept channels of every layer where compensation chose them (greedy selection), else null. */
  channels: (number[][] | null)[];
  compensation: (CompensationReport | null)[];
  exact: (() => ExactScores)[];
}

/**
 * Common act² for every candidate vocabulary in one pass. Tokens are grouped by the set of
 * candidates that keep them; the graph sums h² per group, and candidate k's score is the sum
 * over the groups that it keeps (binary), weighted by token frequency (frequency), or plain act² (none).
 * With compensation the graph also sums the Gram hᵀ·diag(w)·h per group (only groups some candidate
 * counts), or, with a single compensated candidate, hands on its rows √w·h (only G_KK and W_R·G_RK
 * are formed, src/prune/kept-gram.ts); as each layer arrives, candidate k's Gram is the sum of its
 * groups', its channels are chosen from its scores, and its compensated down_proj is solved and
 * stored; the Grams are dropped.
 * The graph returns each window's act² and influence on its own, and they are summed exactly
 * (calib-shard.ts ExactStats), so a shard (o.calibShard: a subset of the windows, weighted as in
 * the whole calibration) sums with the others to this pass's scores bit for bit.
 */
export async function activationScoresFor(
  src: Source,
  calibration: Calibration,
  candidates: Candidate[],
  keeps: number[][],
  weighting: Weighting,
  o: CalibrationPassOptions & Pick<ScoringOptions, 'calibShard'> & CompensationOptions & Pick<OutputOptions, 'onProgress'>,
  comp: CompensationTarget | null,
  /** When given, the dense model's expected token counts on the windows are added into it (see TokenFrequencies). */
  expected?: Float64Array,
): Promise<PassStatistics> {
  const I = src.ckpt.spec.intermediateSize;
  const tokens = tokenGroups(src.ckpt.spec.vocabSize, calibration, keeps, weighting, o.seqLen);
  const { statWeights, included } = tokens;
  const G = tokens.masks.length;
  const run = shardWindows(calibration.windows.length, o.calibShard); // the windows this pass runs
  const windows = run.map((w) => calibration.windows[w]);
  const stats = new ExactStats(src.ckpt.spec.numLayers, G, I);
  for (const w of run) stats.addWeights(statWeights[w]);
  const layerScores = (layer: number, k: number): number[] => stats.layerNumbers(layer, included(k));
  // NaN or infinite statistics would pick channels at random and write a checkpoint with exit 0.
  const checkFinite = () =>
    check(
      stats.broken < 0,
      () =>
        `calibration: the model's forward pass produces NaN or infinity (layer ${stats.broken}): its weights or config.json are broken, so no channel can be scored`,
    );

  const pruned = candidates.map((c) => c.budget.ffn < I);
  const grams = comp ? gramGroups(calibration, tokens, pruned) : null;
  const signatures = grams?.signatures ?? [];
  const C = signatures.length;
  const gramWeights = grams && C > 0 ? grams.weights : null;
  const selection = o.selection ?? DEFAULT_SELECTION;
  const reports: (CompensationReport | null)[] = candidates.map((_c, k) =>
    comp && pruned[k] ? { damp: o.damp ?? DEFAULT_DAMP, selection, layers: [] } : null,
  );
  const chosen: (number[][] | null)[] = candidates.map((_c, k) => (comp && pruned[k] && selection === 'greedy' ? [] : null));
  const keptOf: number[][] = []; // candidate 0's channels per layer (for sequential statistics)
  // One compensated candidate choosing by act²: only its G_KK and W_R·G_RK are formed, from the Gram's rows; otherwise a packed Gram.
  const asRows = gramsAsRows(pruned.filter(Boolean).length, selection);
  const groupGrams = new GroupGrams();
  const onGram = async (layer: number, gram: Float32Array | GramRowGroups) => {
    checkFinite();
    const down = loadF32(src.ckpt, layerPrefix(layer) + LAYER_TENSORS.down); // [D, I]
    const damp = o.damp ?? DEFAULT_DAMP;
    const groupsOf = (k: number) => signatures.flatMap((sig, g) => (sig[k] === '1' ? [g] : [])); // candidate k's Gram sums the Gram groups it counts
    const orders = new Map<string, number[]>(); // greedy removal order per Gram: candidates with the same Gram share it
    for (const [k, c] of candidates.entries()) {
      if (!pruned[k]) continue;
      const groups = groupsOf(k);
      const kGram = groupGrams.of(gram, groups, I);
      const key = groups.join();
      if (chosen[k] && !orders.has(key)) {
        const remove = Math.max(...candidates.map((other, m) => (chosen[m] && groupsOf(m).join() === key ? I - other.budget.ffn : 0)));
        orders.set(key, await removalOrder(comp!.gemm, down, kGram as PackedGram, remove, damp)); // packed: gramsAsRows is false for greedy
      }
      const channels = chosen[k] ? keptAfter(orders.get(key)!, I, I - c.budget.ffn) : topChannels(layerScores(layer, k), c.budget.ffn);
      chosen[k]?.push(channels);
      if (k === 0) keptOf[layer] = channels;
      const r = await compensateLayer(comp!.gemm, down, kGram, channels, damp);
      comp!.store.put(comp!.first + k, layer, r.weight);
      reports[k]!.layers.push({ lambda: r.lambda, silentKept: r.silentKept, noStatistics: r.noStatistics });
    }
    comp!.gemm.releaseBuffers();
  };
  const engine = new Engine(src.ckpt, { threads: o.threads, precision: o.precision });
  const targets = lossTargets(windows);
  const { logprobs } = await engine.forward(windows, {
    targets,
    expected,
    statWeights: run.map((w) => statWeights[w]),
    statGroups: G,
    onSequenceStats: (layer, _s, act2, influence) => stats.add(layer, act2, influence),
    gram: gramWeights ? { weights: run.map((w) => gramWeights[w]), groups: C, rows: asRows, onLayer: onGram } : undefined,
    // Sequential: layer ℓ runs again as pruned (removed columns of down_proj zero, kept ones refitted).
    rewriteLayer:
      o.sequential && comp && candidates.length === 1 && pruned[0]
        ? (layer) => ({ down: scatterColumns(comp.store.get(comp.first, layer)!, keptOf[layer], I) })
        : undefined,
    onLayer: (l, n) => o.onProgress?.('calibrate', l, n),
  });
  await engine.release();
  checkFinite();
  checkCalibrationLoss(targets, logprobs!);
  const influence = stats.act2.map((_, l) => stats.influence.scaled(l));
  const weightTotal = stats.weightTotal.scaled(0);
  const scores = keeps.map((keep, k) => {
    const layers = stats.act2.map((_, l) => stats.layerNumbers(l, included(k)));
    // A shard may hold no kept token; the shards summed are checked where they are used.
    check(
      o.calibShard || layers.some((l) => l.some((v) => v > 0)),
      `no calibration token is kept in a vocabulary of ${keep.length}, so common act² has nothing to count; keep more vocabulary or use --weighting none`,
    );
    return scoresRecord(
      src,
      'act2',
      weighting,
      weighting === 'none' ? null : keepHash(keep),
      calibration,
      {
        layers,
        influence: influence.map(scaledToNumber),
        weightTotal: scaledToNumber(weightTotal),
        exact: null, // made only for a scores file (exactOf below): every candidate's would be large
      },
      o.calibShard ?? null,
      o.precision,
    );
  });
  // Candidate k's exact sums, for its scores file.
  const exactOf = (k: number) => (): ExactScores => ({
    layers: stats.act2.map((_, l) => stats.layerScores(l, included(k)).map(formatExact)),
    influence: influence.map(formatExact),
    weightTotal: formatExact(weightTotal),
  });
  return { scores, channels: chosen, compensation: reports, exact: keeps.map((_, k) => exactOf(k)) };
}

/** Calibration tokens grouped by which candidates keep them, and each token's statistic weight. */
interface TokenGroups {
  /** Per group, its membership mask (bit k: candidate k keeps the token); one group [0] when every token counts. */
  masks: number[];
  /** The group of a token id. */
  groupOf: (id: number) => number;
  /** The statistic weight of a token id: 1, or its frequency on the calibration windows. */
  weightOf: (id: number) => number;
  /** Per window, each position's weight in its group's column: [T, G]. */
  statWeights: Float32Array[];
  /** Per group, whether candidate k's score counts it. */
  included: (k: number) => boolean[];
}

function tokenGroups(V: number, calibration: Calibration, keeps: number[][], weighting: Weighting, seqLen: number): TokenGroups {
  check(keeps.length <= 30, `internal: at most 30 candidate vocabularies per pass, got ${keeps.length}`);
  const membership = new Int32Array(V); // bit k: candidate k keeps the token
  keeps.forEach((keep, k) => keep.forEach((id) => (membership[id] |= 1 << k)));
  const masks = weighting === 'none' ? [0] : [...new Set(calibration.windows.flat().map((id) => membership[id]))].sort((a, b) => a - b);
  const group = new Map(masks.map((m, g) => [m, g]));
  const G = masks.length;
  const frequency = new Float64Array(V);
  if (weighting === 'frequency') for (const id of calibration.windows.flat()) frequency[id] += 1 / (calibration.windows.length * seqLen);
  const weightOf = (id: number) => (weighting === 'frequency' ? frequency[id] : 1);
  const groupOf = (id: number) => (weighting === 'none' ? 0 : group.get(membership[id])!);
  const statWeights = calibration.windows.map((w) => {
    const weights = new Float32Array(w.length * G); // [T, G]
    w.forEach((id, t) => (weights[t * G + groupOf(id)] = weightOf(id)));
    return weights;
  });
  const included = (k: number) => masks.map((m) => weighting === 'none' || (m & (1 << k)) !== 0);
  return { masks, groupOf, weightOf, statWeights, included };
}

/**
 * Gram groups: act² groups counted by the same pruned candidates are only ever used summed, so
 * they share one Gram (one fixed split: a single group); groups no pruned candidate counts have none.
 */
function gramGroups(calibration: Calibration, tokens: TokenGroups, pruned: boolean[]): { signatures: string[]; weights: Float32Array[] } {
  const signatures: string[] = []; // per Gram group: which pruned candidates count it ('1' at k)
  const gramGroupOf = tokens.masks.map((_m, g) => {
    const signature = pruned.map((p, k) => (p && tokens.included(k)[g] ? 1 : 0)).join('');
    if (!signature.includes('1')) return -1;
    const c = signatures.indexOf(signature);
    return c >= 0 ? c : signatures.push(signature) - 1;
  });
  const C = signatures.length;
  const weights = calibration.windows.map((w) => {
    const weights = new Float32Array(w.length * C); // [T, C]
    w.forEach((id, t) => {
      const c = gramGroupOf[tokens.groupOf(id)];
      if (c >= 0) weights[t * C + c] = tokens.weightOf(id);
    });
    return weights;
  });
  return { signatures, weights };
}

/** [D, I′] columns placed at `kept` of a zero [D, I]. */
function scatterColumns(values: Float32Array, kept: number[], I: number): Float32Array {
  const n = kept.length;
  const D = values.length / n;
  const out = new Float32Array(D * I);
  for (let d = 0; d < D; d++) for (let c = 0; c < n; c++) out[d * I + kept[c]] = values[d * n + c];
  return out;
}
