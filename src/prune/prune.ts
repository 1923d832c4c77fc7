/**
 * `compact prune`: the whole pipeline. Budget → kept vocabulary → channel scores (one layer-wise
 * pass, or a scores file) → kept channels per layer → a standard checkpoint written atomically
 * (weights sliced in their stored dtype, tokenizer surgery, config, model card, manifest).
 * With --auto, several vocabulary/FFN splits of the same ratio are scored in that one pass, each
 * is written and measured (bits per byte on held-out calibration text), and the best is kept.
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Engine } from '../engine/engine.js';
import { evaluateText } from '../eval/text-metrics.js';
import { checkExportable, exportGguf } from '../gguf/export.js';
import type { OutputType } from '../gguf/tensor-plan.js';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.js';
import { copyOtherFiles, type LeftOut, writeWeights, type TensorEdit } from '../model/checkpoint-writer.js';
import { fingerprint } from '../model/fingerprint.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { keptColumnChunks, keptRowChunks, tensorChunks } from '../model/slice.js';
import { EMBED, LM_HEAD, LAYER_TENSORS, layerPrefix } from '../model/tensor-names.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { removeOnInterrupt, scratchPath, writeDirAtomic } from '../util/atomic-dir.js';
import { check } from '../util/errors.js';
import { checkReadable, MAX_JSON_BYTES, readUserBytes } from '../util/files.js';
import { jsonText, readJsonDocument } from '../util/json-text.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { pruneSlowTokenizerFiles, readSlowTokenizerFiles, SLOW_TOKENIZER_FILES, type SlowTokenizerFile, type SlowTokenizerFiles, staleTokenizerFile } from '../vocab/slow-tokenizer-files.js';
import { pruneTokenizerFiles, type SurgeryResult } from '../vocab/surgery.js';
import type { JsonObject, TokenizerFiles } from '../vocab/tokenizer-json.js';
import { type Budget, channelParams, defaultRoundTo, solveBudget, vocabRowParams } from './budget.js';
import { buildCalibration, readDocuments, type Calibration } from './calibration.js';
import { blockInfluence, layerDropFields, layersToDrop, renumberLayerTensor } from './layer-drop.js';
import { modelCard } from './model-card.js';
import {
  activationScores,
  type ChannelScores,
  type Criterion,
  magnitudeScores,
  randomScores,
  readScores,
  SCORES_FORMAT,
  sumScores,
  topChannels,
  type Weighting,
} from './scores.js';

export const METHODS = ['compact', 'vocab-only', 'ffn-only', 'shortgpt'] as const;
export type Method = (typeof METHODS)[number];

/** Vocabulary shares tried by --auto (clipped to what the vocabulary can give). */
export const AUTO_SHARES = [0, 0.1, 0.25, 0.5, 0.75, 1];
/** Held-out text for --auto: the last 10 % of the calibration text, at most this many characters. */
const AUTO_HOLDOUT_CHARS = 65536;

export interface PruneOptions {
  method: Method;
  vocab?: number;
  ffn?: number;
  ratio?: number;
  vocabShare?: number;
  /** Search the vocabulary share for the lowest held-out bits per byte. */
  auto?: boolean;
  roundTo?: number;
  vocabMode: KeepMode;
  /** Text whose token counts drive --vocab-mode frequency (default: the calibration text). */
  vocabCorpus?: string[];
  keepList?: (string | number)[];
  weighting: Weighting;
  criterion: Criterion;
  calib: string[];
  calibField: string;
  samples: number;
  seqLen: number;
  seed: number;
  scoresIn?: string[];
  scoresOut?: string;
  force?: boolean;
  threads?: number;
  commandLine: string;
  version: string;
  /** Also write a GGUF of the output for llama.cpp, inside it (checked before any long work). */
  gguf?: OutputType;
  onProgress?: (stage: 'calibrate' | 'search' | 'write', done: number, total: number) => void;
}

export interface AutoCandidate {
  vocabShare: number;
  vocab: number;
  ffn: number;
  removedRatio: number;
  heldOutBitsPerByte: number;
}

export interface PruneReport {
  input: string;
  output: string;
  method: Method;
  vocab: { before: number; after: number; alwaysKept: number };
  ffn: { before: number; after: number };
  layers: { before: number; after: number; dropped: number[] };
  parameters: { before: ParamCount; after: ParamCount; removedRatio: number };
  calibration: { sha256: string; files: string[]; samples: number; seqLen: number; seed: number; corpusTokens: number } | null;
  criterion: Criterion | null;
  weighting: Weighting | null;
  /** What --auto tried (held-out bits per byte per split), the chosen one first. */
  auto: { heldOutChars: number; candidates: AutoCandidate[] } | null;
  /** Files and directories of the input not copied to the output (stale weights or token ids, links), by name. */
  leftOut: LeftOut[];
  /** The GGUF written with --gguf: its file name in the output, llama.cpp architecture, type, bytes of tensor data. */
  gguf: { file: string; architecture: string; type: OutputType; bytes: number } | null;
  seconds: { read: number; calibrate: number; score: number; search: number; write: number; total: number };
}

/** The source checkpoint and its tokenizer files. */
interface Source {
  input: string;
  ckpt: Checkpoint;
  before: ParamCount;
  files: TokenizerFiles;
  floatPaths: Partial<Record<keyof TokenizerFiles, Set<string>>>;
  /** Smallest V′ the tokenizer allows (V when there is no tokenizer.json). */
  alwaysKept: number;
}

/** Everything that decides the output's bytes. */
interface Plan {
  budget: Budget;
  keep: number[];
  surgery: SurgeryResult | null;
  /** tokenizer.model, vocab.json, merges.txt, added_tokens.json rewritten for the kept ids. */
  slowFiles: Map<SlowTokenizerFile, Uint8Array> | null;
  channels: number[][] | null;
  dropped: Set<number>;
}

export async function prune(input: string, output: string, o: PruneOptions): Promise<PruneReport> {
  const clock = stopwatch();
  const src = openSource(input, o);
  const spec = src.ckpt.spec;
  if (o.gguf) checkExportable(src.ckpt);
  const read = clock.lap();

  const { budgets, shares } = planBudgets(src, o);
  const dropLayers = o.method === 'shortgpt' ? layersForRatio(src, o.ratio) : 0;
  // Slow-tokenizer files are checked now, so a bad one is refused before any long work.
  const slow = budgets.some((b) => b.vocab < spec.vocabSize) ? readSlowFiles(src) : null;
  const counts = o.vocabMode === 'frequency' ? countTokens(loadTokenizer(input), (o.vocabCorpus ?? o.calib).flatMap((f) => readDocuments(f, o.calibField))) : undefined;
  const keeps = budgets.map((b) => keepFor(src, b.vocab, o, counts));
  if (!o.scoresIn?.length) checkReadable(o.calib); // a missing calibration file stops here, before any long work

  // ── scores: one layer-wise pass serves every candidate split ──
  const ffnPruned = budgets.some((b) => b.ffn < spec.intermediateSize);
  const needsActivations = o.method === 'shortgpt' || (ffnPruned && o.criterion === 'act2' && !o.scoresIn?.length);
  const weighting: Weighting = o.method === 'shortgpt' ? 'none' : o.weighting;
  let calibration: Calibration | null = null;
  let scores: ChannelScores[] = [];
  if (o.scoresIn?.length) {
    check(!o.auto, '--auto computes its own scores; drop --scores-in');
    const summed = sumScores(o.scoresIn, o.scoresIn.map(readScores));
    checkScoresFit(summed, o.scoresIn[0], src.ckpt, o.method === 'shortgpt' ? null : o.criterion, weighting, keepHash(keeps[0]));
    scores = [summed];
  } else if (needsActivations) {
    calibration = buildCalibration(loadTokenizer(input), o.calib, { samples: o.samples, seqLen: o.seqLen, seed: o.seed, field: o.calibField, holdOutChars: o.auto ? AUTO_HOLDOUT_CHARS : undefined });
    scores = await activationScoresFor(src, calibration, keeps, weighting, o);
  } else if (ffnPruned) {
    const layers = o.criterion === 'magnitude' ? magnitudeScores(src.ckpt) : randomScores(spec.numLayers, spec.intermediateSize, o.seed);
    scores = [scoresRecord(src, o.criterion, null, null, null, { layers, influence: null, weightTotal: 0 })];
  }
  const calibrate = clock.lap();
  // Candidate k's scores: one set per candidate vocabulary, or one set shared by all.
  const scoresOf = (k: number): ChannelScores | undefined => scores[Math.min(k, scores.length - 1)];
  const planFor = (k: number): Plan => {
    const s = scoresOf(k)!;
    const surgery = keeps[k].length < spec.vocabSize ? pruneTokenizerFiles(src.files, keeps[k]) : null;
    const slowFiles = surgery && slow ? pruneSlowTokenizerFiles(slow, surgery) : null;
    const channels = budgets[k].ffn < spec.intermediateSize ? s.layers.map((l) => topChannels(l, budgets[k].ffn)) : null;
    const dropped = dropLayers ? new Set(layersToDrop(blockInfluence(s.influence!, s.weightTotal), dropLayers)) : new Set<number>();
    return { budget: budgets[k], keep: keeps[k], surgery, slowFiles, channels, dropped };
  };
  const score = clock.lap();

  // ── --auto: write and measure each split, keep the best ──
  let chosen = 0;
  let auto: PruneReport['auto'] = null;
  if (o.auto) {
    const candidates: (AutoCandidate & { index: number })[] = [];
    for (const [k, budget] of budgets.entries()) {
      const dir = scratchPath(output, 'auto', k);
      const release = removeOnInterrupt(dir); // the search runs outside writeDirAtomic: an interrupt must not leave a candidate
      try {
        await writeDirAtomic(dir, { force: true, inputs: [input] }, (tmp) => writeCheckpointFiles(src, tmp, planFor(k)));
        const candidate = openCheckpoint(dir);
        const engine = new Engine(candidate, { threads: o.threads });
        const metrics = await evaluateText(engine, encode(loadTokenizer(dir), calibration!.heldOut), Buffer.byteLength(calibration!.heldOut, 'utf8'));
        await engine.release();
        const removedRatio = 1 - countParams(candidate).total / src.before.total;
        candidates.push({ index: k, vocabShare: shares![k], vocab: budget.vocab, ffn: budget.ffn, removedRatio, heldOutBitsPerByte: metrics.bitsPerByte });
      } finally {
        rmSync(dir, { recursive: true, force: true });
        release();
      }
      o.onProgress?.('search', k + 1, budgets.length);
    }
    candidates.sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index);
    chosen = candidates[0].index;
    auto = { heldOutChars: calibration!.heldOut.length, candidates: candidates.map(({ index: _index, ...c }) => c) };
  }
  const search = clock.lap();
  const plan = planFor(chosen);
  const usedScores = scoresOf(chosen);
  if (o.scoresOut && usedScores) writeFileSync(o.scoresOut, jsonText(usedScores));

  // ── write ──
  return writeDirAtomic(output, { force: o.force, inputs: [input] }, async (tmp) => {
    const leftOut = await writeCheckpointFiles(src, tmp, plan, (d, t) => o.onProgress?.('write', d, t));
    const gguf = o.gguf ? await writeGgufInto(tmp, output, o.gguf) : null;
    const after = countParams(openCheckpoint(tmp));
    const report: PruneReport = {
      input,
      output,
      method: o.method,
      vocab: { before: spec.vocabSize, after: plan.keep.length, alwaysKept: src.alwaysKept },
      ffn: { before: spec.intermediateSize, after: plan.budget.ffn },
      layers: { before: spec.numLayers, after: spec.numLayers - plan.dropped.size, dropped: [...plan.dropped] },
      parameters: { before: src.before, after, removedRatio: 1 - after.total / src.before.total },
      calibration: calibration && {
        sha256: calibration.sha256,
        files: calibration.files,
        samples: o.samples,
        seqLen: o.seqLen,
        seed: o.seed,
        corpusTokens: calibration.corpusTokens,
      },
      criterion: plan.channels ? usedScores!.criterion : null,
      weighting: plan.channels || plan.dropped.size ? usedScores!.weighting : null,
      auto,
      leftOut,
      gguf,
      seconds: { read, calibrate, score, search, write: clock.lap(), total: clock.total() },
    };
    // Card and manifest hold no timings, so the same inputs give byte-identical files; the
    // pruning time goes to its own file, the only one that differs between runs.
    const { seconds, ...reproducible } = report;
    writeFileSync(join(tmp, 'README.md'), modelCard(report, o));
    const manifest = { tool: 'compact', version: o.version, command: o.commandLine, ...reproducible, old2new: plan.surgery ? Array.from(plan.surgery.old2new) : null, channels: plan.channels };
    writeFileSync(join(tmp, MANIFEST_FILE), jsonText(manifest));
    const timing: PruneTiming = { seconds, threads: o.threads ?? cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
    writeFileSync(join(tmp, TIMING_FILE), JSON.stringify(timing, null, 2) + '\n');
    return report;
  });
}

export const MANIFEST_FILE = 'compact.json';
/** Wall time of the prune that wrote the directory (not reproducible, so kept out of the manifest). */
export const TIMING_FILE = 'compact-timing.json';

export interface PruneTiming {
  seconds: PruneReport['seconds'];
  threads: number;
  cpu: string;
  node: string;
}

function stopwatch(): { lap: () => number; total: () => number } {
  const start = performance.now();
  let last = start;
  return {
    lap() {
      const now = performance.now();
      const seconds = (now - last) / 1000;
      last = now;
      return seconds;
    },
    total: () => (performance.now() - start) / 1000,
  };
}

function openSource(input: string, o: PruneOptions): Source {
  const ckpt = openCheckpoint(input);
  // Without tokenizer.json the vocabulary cannot be pruned (nor text calibrated), but FFN
  // pruning by magnitude or from a scores file still works.
  const { files, floatPaths } = readTokenizerFiles(input);
  const alwaysKept = files.tokenizer != null ? selectKeepSet(files, { size: ckpt.spec.vocabSize, keepList: o.keepList }).alwaysKept : ckpt.spec.vocabSize;
  return { input, ckpt, before: countParams(ckpt), files, floatPaths, alwaysKept };
}

/** The (V′, I′) to write: one, or one per --auto vocabulary share (shares listed for the report). */
function planBudgets(src: Source, o: PruneOptions): { budgets: Budget[]; shares: number[] | null } {
  const spec = src.ckpt.spec;
  const full = { vocab: spec.vocabSize, ffn: spec.intermediateSize };
  const roundTo = o.roundTo ?? defaultRoundTo(spec.intermediateSize);
  const solve = (vocabShare: number | undefined) => solveBudget(spec, { ratio: o.ratio!, vocabShare, total: src.before.total, minVocab: src.alwaysKept, roundTo });
  let budgets: Budget[];
  let shares: number[] | null = null;
  if (o.method === 'shortgpt') {
    check(o.vocab == null && o.ffn == null, '--method shortgpt takes --ratio only');
    budgets = [full];
  } else if (o.auto) {
    check(o.method === 'compact' && o.ratio != null && o.vocabShare == null && o.vocab == null && o.ffn == null, '--auto searches the vocabulary share of --ratio r for --method compact; drop --vocab, --ffn and --vocab-share');
    // Shares outside [min, max] are unreachable: the vocabulary (or the FFN) cannot give that much.
    const target = o.ratio * src.before.total;
    const maxShare = Math.min(1, ((spec.vocabSize - src.alwaysKept) * vocabRowParams(spec)) / target);
    const minShare = Math.max(0, 1 - ((spec.intermediateSize - roundTo) * channelParams(spec)) / target);
    check(minShare <= maxShare, `--ratio ${o.ratio} is unreachable: vocabulary and FFN together can give at most ${(((maxShare * target) + (spec.intermediateSize - roundTo) * channelParams(spec)) / src.before.total).toFixed(3)} of the parameters`);
    shares = [...new Set(AUTO_SHARES.map((s) => Math.min(maxShare, Math.max(minShare, s))))];
    budgets = shares.map((s) => solve(s));
  } else if (o.ratio != null) {
    check(o.vocab == null && o.ffn == null, 'give either --ratio or --vocab/--ffn, not both');
    budgets = [solve(o.method === 'vocab-only' ? 1 : o.method === 'ffn-only' ? 0 : o.vocabShare)];
  } else {
    check(o.vocab != null || o.ffn != null, 'give a budget: --ratio r, or --vocab V′ and/or --ffn I′');
    budgets = [{ vocab: o.vocab ?? spec.vocabSize, ffn: o.ffn ?? spec.intermediateSize }];
    check(o.method !== 'vocab-only' || budgets[0].ffn === spec.intermediateSize, '--method vocab-only does not take --ffn');
    check(o.method !== 'ffn-only' || budgets[0].vocab === spec.vocabSize, '--method ffn-only does not take --vocab');
  }
  for (const b of budgets) {
    check(Number.isSafeInteger(b.vocab) && b.vocab >= src.alwaysKept && b.vocab <= spec.vocabSize, `--vocab must be an integer in [${src.alwaysKept}, ${spec.vocabSize}] (${src.alwaysKept} tokens are always kept), got ${b.vocab}`);
    check(Number.isSafeInteger(b.ffn) && b.ffn >= 1 && b.ffn <= spec.intermediateSize, `--ffn must be an integer in [1, ${spec.intermediateSize}], got ${b.ffn}`);
  }
  return { budgets, shares };
}

/** ShortGPT: how many whole layers --ratio removes. */
function layersForRatio(src: Source, ratio: number | undefined): number {
  check(ratio != null, '--method shortgpt needs --ratio');
  const { ckpt, before } = src;
  const perLayer = [...ckpt.tensors.values()].filter((t) => t.name.startsWith(layerPrefix(0))).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const drop = Math.round((ratio * before.total) / perLayer);
  const L = ckpt.spec.numLayers;
  check(drop >= 1 && drop < L, `--ratio ${ratio} means dropping ${drop} of ${L} layers (${perLayer} parameters each); reachable: ${(perLayer / 2 / before.total).toFixed(3)} ≤ ratio < ${(((L - 0.5) * perLayer) / before.total).toFixed(3)}`);
  return drop;
}

/** Old ids kept for V′ (all of them without a tokenizer). */
function keepFor(src: Source, vocab: number, o: PruneOptions, counts: Float64Array | undefined): number[] {
  if (src.files.tokenizer == null) return [...Array(src.ckpt.spec.vocabSize).keys()];
  return selectKeepSet(src.files, { size: vocab, mode: o.vocabMode, counts, keepList: o.keepList }).keep;
}

const keepHash = (keep: number[]): string => createHash('sha256').update(Int32Array.from(keep)).digest('hex');

/**
 * Common act² for every candidate vocabulary in one pass. Tokens are grouped by the set of
 * candidates that keep them; the graph sums h² per group, and candidate k's score is the sum
 * over the groups that it keeps (binary), weighted by token frequency (frequency), or plain act² (none).
 */
async function activationScoresFor(src: Source, calibration: Calibration, keeps: number[][], weighting: Weighting, o: PruneOptions): Promise<ChannelScores[]> {
  const V = src.ckpt.spec.vocabSize;
  const membership = new Int32Array(V); // bit k: candidate k keeps the token
  keeps.forEach((keep, k) => keep.forEach((id) => (membership[id] |= 1 << k)));
  const masks = weighting === 'none' ? [0] : [...new Set(calibration.windows.flat().map((id) => membership[id]))].sort((a, b) => a - b);
  const group = new Map(masks.map((m, g) => [m, g]));
  const G = masks.length;
  const frequency = new Float64Array(V);
  if (weighting === 'frequency') for (const id of calibration.windows.flat()) frequency[id] += 1 / (calibration.windows.length * o.seqLen);
  const statWeights = calibration.windows.map((w) => {
    const weights = new Float32Array(w.length * G); // [T, G]
    w.forEach((id, t) => (weights[t * G + (weighting === 'none' ? 0 : group.get(membership[id])!)] = weighting === 'frequency' ? frequency[id] : 1));
    return weights;
  });
  const engine = new Engine(src.ckpt, { threads: o.threads });
  const pass = await activationScores(engine, calibration.windows, statWeights, G, (l, n) => o.onProgress?.('calibrate', l, n));
  await engine.release();
  const I = src.ckpt.spec.intermediateSize;
  return keeps.map((keep, k) => {
    const included = masks.map((m) => weighting === 'none' || (m & (1 << k)) !== 0);
    const layers = pass.act2.map((a) => Array.from({ length: I }, (_, j) => masks.reduce((sum, _m, g) => (included[g] ? sum + a[g * I + j] : sum), 0)));
    check(layers.some((l) => l.some((v) => v > 0)), `no calibration token is kept in a vocabulary of ${keep.length}, so common act² has nothing to count; keep more vocabulary or use --weighting none`);
    return scoresRecord(src, 'act2', weighting, weighting === 'none' ? null : keepHash(keep), calibration, { layers, influence: pass.influence, weightTotal: pass.weightTotal });
  });
}

function scoresRecord(
  src: Source,
  criterion: Criterion,
  weighting: Weighting | null,
  keptVocabSha256: string | null,
  calibration: Calibration | null,
  values: Pick<ChannelScores, 'layers' | 'influence' | 'weightTotal'>,
): ChannelScores {
  const { spec } = src.ckpt;
  return {
    format: SCORES_FORMAT,
    model: { fingerprint: fingerprint(src.ckpt), numLayers: spec.numLayers, intermediateSize: spec.intermediateSize },
    criterion,
    weighting,
    keptVocabSha256,
    calibrations: calibration ? [{ sha256: calibration.sha256, samples: calibration.options.samples, seqLen: calibration.options.seqLen, seed: calibration.options.seed }] : [],
    ...values,
  };
}

export const ggufFileName = (type: OutputType): string => `model.${type}.gguf`;

/** prune --gguf: the GGUF of the checkpoint being written, inside it (so the whole output stays atomic). */
async function writeGgufInto(tmp: string, output: string, type: OutputType): Promise<PruneReport['gguf']> {
  const file = ggufFileName(type);
  const r = await exportGguf(tmp, join(tmp, file), { type, name: basename(resolve(output)), intoCheckpoint: true });
  return { file, architecture: r.architecture, type, bytes: r.bytes };
}

/**
 * Weights, config.json, tokenizer files and the rest of the source's files, for one plan; returns
 * what was left out. With a pruned vocabulary every tokenizer file is either rewritten for the
 * kept ids or left out: none is copied with the old ids.
 */
async function writeCheckpointFiles(src: Source, dir: string, plan: Plan, onTensor?: (done: number, total: number) => void): Promise<LeftOut[]> {
  const spec = src.ckpt.spec;
  await writeWeights(src.ckpt, dir, tensorEdit(src.ckpt, plan), onTensor);
  // Surgery's config.json has the vocabulary fields (vocab_size, bos/eos/pad ids) remapped.
  const config: JsonObject = { ...((plan.surgery?.files.config as JsonObject | undefined) ?? spec.raw), intermediate_size: plan.budget.ffn, ...layerDropFields(spec, plan.dropped) };
  writeFileSync(join(dir, 'config.json'), jsonText(config, src.floatPaths.config));
  const rewritten = new Set(['config.json', 'README.md', MANIFEST_FILE, TIMING_FILE]);
  for (const [key, file] of Object.entries(TOKENIZER_FILES) as [keyof TokenizerFiles, string][]) {
    const value = plan.surgery?.files[key];
    if (value == null || key === 'config') continue;
    writeFileSync(join(dir, file), jsonText(value, src.floatPaths[key]));
    rewritten.add(file);
  }
  for (const [file, bytes] of plan.slowFiles ?? []) {
    writeFileSync(join(dir, file), bytes);
    rewritten.add(file);
  }
  return copyOtherFiles(src.ckpt, dir, rewritten, plan.surgery ? staleTokenizerFile : undefined);
}

const TOKENIZER_FILES: Record<keyof TokenizerFiles, string> = {
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  config: 'config.json',
  generationConfig: 'generation_config.json',
  specialTokensMap: 'special_tokens_map.json',
};

/** The tokenizer and config files, parsed, with their float-literal paths (see util/json-text.ts). */
function readTokenizerFiles(dir: string): Pick<Source, 'files' | 'floatPaths'> {
  const files: TokenizerFiles = {};
  const floatPaths: Source['floatPaths'] = {};
  for (const [key, file] of Object.entries(TOKENIZER_FILES) as [keyof TokenizerFiles, string][]) {
    if (!existsSync(join(dir, file))) continue;
    const doc = readJsonDocument(join(dir, file), { within: dir });
    (files as Record<string, unknown>)[key] = doc.value;
    floatPaths[key] = doc.floatPaths;
  }
  return { files, floatPaths };
}

/** The input's slow-tokenizer files (tokenizer.model, vocab.json, …), parsed and checked against tokenizer.json. */
function readSlowFiles(src: Source): SlowTokenizerFiles {
  const raw: Partial<Record<SlowTokenizerFile, Uint8Array>> = {};
  for (const file of SLOW_TOKENIZER_FILES) {
    const path = join(src.input, file);
    if (!existsSync(path)) continue;
    raw[file] = readUserBytes(path, { within: src.input, maxBytes: MAX_JSON_BYTES });
  }
  return readSlowTokenizerFiles(raw, src.files, src.input);
}

/** Old row index of each new id: the inverse of old2new. */
function embeddingRows(old2new: Int32Array): Int32Array {
  const rows: number[] = [];
  old2new.forEach((n, old) => {
    if (n >= 0) rows[n] = old;
  });
  return Int32Array.from(rows);
}

function tensorEdit(ckpt: Checkpoint, plan: Plan): TensorEdit {
  const L = ckpt.spec.numLayers;
  const rows = plan.surgery ? embeddingRows(plan.surgery.old2new) : null;
  return (info) => {
    const name = renumberLayerTensor(info.name, plan.dropped, L);
    if (name == null) return null;
    if (rows && (info.name === EMBED || info.name === LM_HEAD)) {
      return { name, shape: [rows.length, info.shape[1]], bytes: () => keptRowChunks(info, rows) };
    }
    const layer = /^model\.layers\.(\d+)\.mlp\./.exec(info.name);
    if (plan.channels && layer) {
      const keep = plan.channels[Number(layer[1])];
      const suffix = info.name.slice(info.name.indexOf('mlp.'));
      if (suffix === LAYER_TENSORS.down) return { name, shape: [info.shape[0], keep.length], bytes: () => keptColumnChunks(info, keep) };
      if (suffix !== LAYER_TENSORS.downBias) return { name, shape: [keep.length, ...info.shape.slice(1)], bytes: () => keptRowChunks(info, keep) };
    }
    return { name, shape: info.shape, bytes: () => tensorChunks(info) };
  };
}

function checkScoresFit(s: ChannelScores, file: string, ckpt: Checkpoint, criterion: Criterion | null, weighting: Weighting, keptVocabSha256: string): void {
  const spec = ckpt.spec;
  check(
    s.model.numLayers === spec.numLayers && s.model.intermediateSize === spec.intermediateSize && s.layers.length === spec.numLayers && s.layers.every((l) => l.length === spec.intermediateSize),
    `${file}: scores are for ${s.model.numLayers} layers × ${s.model.intermediateSize} channels, the model has ${spec.numLayers} × ${spec.intermediateSize}`,
  );
  check(s.model.fingerprint === fingerprint(ckpt), `${file}: scores were computed on another checkpoint (fingerprint mismatch)`);
  if (criterion) check(s.criterion === criterion, `${file}: scores use criterion ${s.criterion}, but --criterion is ${criterion}`);
  if (s.weighting) check(s.weighting === weighting, `${file}: scores use weighting ${s.weighting}, but --weighting is ${weighting}`);
  if (s.keptVocabSha256) check(s.keptVocabSha256 === keptVocabSha256, `${file}: scores were weighted with another kept vocabulary; use the same --vocab/--vocab-mode or recompute`);
}
