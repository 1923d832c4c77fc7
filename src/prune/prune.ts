/**
 * `compact prune`: the whole pipeline. Budget → kept vocabulary → channel scores (one layer-wise
 * pass, or a scores file) → kept channels per layer → a standard checkpoint written atomically
 * (weights sliced in their stored dtype, tokenizer surgery, config, model card, manifest).
 * With --auto, several vocabulary/FFN splits (and vocabulary modes) of the same ratio are scored in
 * that one pass, each is written and measured (bits per byte on held-out calibration text), a
 * second pass tries splits between the best and its neighbours, and the best is kept.
 * With compensation, each layer's down_proj is re-fitted by least squares on the kept channels
 * (compensate.ts) right after that layer's statistics arrive.
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Engine } from '../engine/engine.js';
import type { Precision } from '../engine/precision.js';
import { gramLayout, PackedGram } from '../engine/gram-layout.js';
import { checkExportable, exportGguf } from '../gguf/export.js';
import type { OutputType } from '../gguf/tensor-plan.js';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.js';
import { copyOtherFiles, type LeftOut, writeWeights, type TensorEdit } from '../model/checkpoint-writer.js';
import { fingerprint } from '../model/fingerprint.js';
import { MANIFEST_FILE, type PruneSeconds, type PruneTiming, TIMING_FILE } from '../model/prune-files.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { keptColumnChunks, keptRowChunks, tensorChunks } from '../model/slice.js';
import { EMBED, LM_HEAD, LAYER_TENSORS, layerPrefix } from '../model/tensor-names.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { removeOnInterrupt, scratchPath, writeDirAtomic } from '../util/atomic-dir.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { check } from '../util/errors.js';
import { checkReadable, MAX_JSON_BYTES, readUserBytes } from '../util/files.js';
import { jsonText, readJsonDocument } from '../util/json-text.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import {
  pruneSlowTokenizerFiles,
  readSlowTokenizerFiles,
  SLOW_TOKENIZER_FILES,
  type SlowTokenizerFile,
  type SlowTokenizerFiles,
  staleTokenizerFile,
} from '../vocab/slow-tokenizer-files.js';
import { pruneTokenizerFiles, type SurgeryResult } from '../vocab/surgery.js';
import type { JsonObject, TokenizerFiles } from '../vocab/tokenizer-json.js';
import { type Budget, channelParams, defaultRoundTo, solveBudget, vocabRowParams } from './budget.js';
import { buildCalibration, checkCalibrationLoss, lossTargets, readDocuments, type Calibration } from './calibration.js';
import { blockInfluence, layerDropFields, layersToDrop, renumberLayerTensor } from './layer-drop.js';
import { METHOD_TRAITS, type Method } from './methods.js';
import type { PruneOptions } from './options.js';
import { modelCard } from './model-card.js';
import { compensateLayer, DEFAULT_DAMP, Gemm } from './compensate.js';
import { CompensatedStore } from './compensated-store.js';
import { type CalibShard, checkCalibShard, ExactStats, shardWindows } from './calib-shard.js';
import { formatExact, scaledToNumber } from './exact-sum.js';
import { encode as encodeAs } from '../gguf/quantize.js';
import { loadF32 } from '../model/checkpoint.js';
import {
  type ChannelScores,
  type Criterion,
  type ExactScores,
  magnitudeScores,
  randomScores,
  readScores,
  SCORES_FORMAT,
  sumScores,
  topChannels,
  type Weighting,
} from './scores.js';

/** Vocabulary shares tried by --auto (clipped to what the vocabulary can give). */
export const AUTO_SHARES = [0, 0.1, 0.25, 0.5, 0.75, 1];
/** Held-out text for --auto: the last 10 % of the calibration text, at most this many characters. */
export const AUTO_HOLDOUT_CHARS = 65536;
/** Below this many held-out characters the search's choice is reported as weakly supported. */
export const AUTO_FEW_CHARS = 20000;

export type { PruneOptions } from './options.js';

export interface AutoCandidate {
  vocabShare: number;
  vocabMode: KeepMode;
  /** 'grid' (first pass) or 'refine' (second pass, near the best of the grid). */
  pass: 'grid' | 'refine';
  vocab: number;
  ffn: number;
  removedRatio: number;
  heldOutBitsPerByte: number;
}

export interface PruneReport {
  input: string;
  output: string;
  method: Method;
  /** mode: how the kept vocabulary was chosen (rank or frequency). */
  vocab: { before: number; after: number; alwaysKept: number; mode: KeepMode };
  ffn: { before: number; after: number };
  layers: { before: number; after: number; dropped: number[] };
  parameters: { before: ParamCount; after: ParamCount; removedRatio: number };
  calibration: {
    sha256: string;
    files: string[];
    samples: number;
    seqLen: number;
    seed: number;
    corpusTokens: number;
    /** Precision of the calibration forward pass. */
    precision: Precision;
  } | null;
  criterion: Criterion | null;
  weighting: Weighting | null;
  /** What --auto tried (held-out bits per byte per split), the chosen one first. */
  auto: { heldOutChars: number; heldOutTokens: number; candidates: AutoCandidate[]; warnings: string[] } | null;
  /** Least-squares compensation of down_proj, per layer (null: not applied). */
  compensation: CompensationReport | null;
  /** Files and directories of the input not copied to the output (stale weights or token ids, links), by name. */
  leftOut: LeftOut[];
  /** The GGUF written with --gguf: its file name in the output, llama.cpp architecture, type, bytes of tensor data. */
  gguf: { file: string; architecture: string; type: OutputType; bytes: number } | null;
  seconds: PruneSeconds;
}

/** What `calibrateShard` did: which windows of the calibration it ran, and where the scores went. */
export interface ShardReport {
  input: string;
  scoresOut: string;
  shard: CalibShard;
  /** Indices of the windows it ran, in the order a single run draws them. */
  windows: number[];
  calibration: NonNullable<PruneReport['calibration']>;
  criterion: Criterion;
  weighting: Weighting;
  seconds: { read: number; calibrate: number; total: number };
}

export interface CompensationReport {
  damp: number;
  /** Per layer: λ, kept channels that never fired on a weighted token (held by damping alone), whether the layer had no statistics at all. */
  layers: { lambda: number; silentKept: number; noStatistics: boolean }[];
}

/** One vocabulary/FFN split to write: its budget, vocabulary mode and (for --auto) its share. */
interface Candidate {
  budget: Budget;
  mode: KeepMode;
  share: number | null;
  pass: 'grid' | 'refine';
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
  /** Compensated down_proj [D, I′] of a layer (f32), when compensation applies. */
  compensated: ((layer: number) => Float32Array) | null;
}

export async function prune(input: string, output: string, o: PruneOptions): Promise<PruneReport> {
  check(!o.calibShard, 'a calibration shard writes only its scores, no model: use calibrateShard (compact prune --calib-shard), not prune');
  return (await pruneOrShard(input, output, o)) as PruneReport;
}

/** `prune --calib-shard i/n --scores-out F`: one shard's statistics, written atomically to F; no model. */
export async function calibrateShard(input: string, o: PruneOptions & { calibShard: CalibShard }): Promise<ShardReport> {
  check(o.scoresOut, "--calib-shard writes the shard's scores to --scores-out FILE (and no model); give --scores-out");
  return (await pruneOrShard(input, o.scoresOut, o)) as ShardReport;
}

async function pruneOrShard(input: string, output: string, o: PruneOptions): Promise<PruneReport | ShardReport> {
  const clock = stopwatch();
  const src = openSource(input, o);
  const spec = src.ckpt.spec;
  if (o.gguf) checkExportable(src.ckpt);
  const read = clock.lap();

  const grid = planCandidates(src, o);
  const traits = METHOD_TRAITS[o.method];
  const dropLayers = traits.dropsLayers ? layersForRatio(src, o.ratio) : 0;
  const compensate = compensationApplies(src, o, grid);
  check(!o.sequential || (compensate && grid.length === 1), 'sequential statistics need compensation and one fixed split (not --auto)');
  // Slow-tokenizer files are checked now, so a bad one is refused before any long work.
  const slow = grid.some((c) => c.budget.vocab < spec.vocabSize) ? readSlowFiles(src) : null;
  if (!o.scoresIn?.length && !o.calibWindows) checkReadable(o.calib); // a missing calibration file stops here, before any long work
  if (o.calibShard) checkShardRun(o, o.calibShard);
  check(!(o.calibWindows && o.auto), '--auto measures on held-out calibration text; pre-tokenized calibration windows have none');

  // ── calibration text (held-out tail for --auto) and token counts for frequency vocabularies ──
  const ffnPruned = grid.some((c) => c.budget.ffn < spec.intermediateSize);
  const needsActivations = traits.dropsLayers || (ffnPruned && o.criterion === 'act2' && !o.scoresIn?.length);
  const weighting: Weighting = traits.dropsLayers ? 'none' : o.weighting; // Block Influence counts every token
  check(
    !o.calibShard || needsActivations,
    '--calib-shard splits the calibration pass, and this prune has none (no FFN channel is scored by calibrated act², e.g. --method vocab-only or --criterion magnitude)',
  );
  const calibration: Calibration | null =
    o.calibWindows && needsActivations
      ? windowsCalibration(o.calibWindows, o)
      : needsActivations || o.auto
        ? buildCalibration(loadTokenizer(input), o.calib, {
            samples: o.samples,
            seqLen: o.seqLen,
            seed: o.seed,
            field: o.calibField,
            holdOutChars: o.auto ? AUTO_HOLDOUT_CHARS : undefined,
          })
        : null;
  const wantsCounts = grid.some((c) => c.mode === 'frequency');
  // --auto measures on the held-out tail, so a frequency vocabulary must not have counted it.
  const countText = (): string[] =>
    o.vocabCorpus
      ? o.vocabCorpus.flatMap((f) => readDocuments(f, o.calibField))
      : o.auto
        ? calibration!.documents
        : o.calib.flatMap((f) => readDocuments(f, o.calibField));
  const counts = wantsCounts ? countTokens(loadTokenizer(input), countText()) : undefined;
  const keepOf = (c: Candidate) => keepFor(src, c.budget.vocab, c.mode, o, counts);

  // ── scores (and compensated down_proj): one layer-wise pass serves every candidate split ──
  const store = compensate ? new CompensatedStore(scratchPath(output, 'auto', 'compensated')) : null;
  const releaseStore = store ? removeOnInterrupt(scratchPath(output, 'auto', 'compensated')) : () => {};
  const gemm = compensate ? new Gemm(o.threads) : null;
  try {
    const candidates: Candidate[] = [];
    const keeps: number[][] = [];
    const scores: ChannelScores[] = []; // per candidate
    const exactOf: ((() => ExactScores) | null)[] = []; // per candidate: its exact sums, when calibrated here
    const compensation: (CompensationReport | null)[] = [];
    const scoreCandidates = async (batch: Candidate[]) => {
      const first = candidates.length;
      candidates.push(...batch);
      const batchKeeps = batch.map(keepOf);
      keeps.push(...batchKeeps);
      let batchScores: ChannelScores[];
      if (o.scoresIn?.length) {
        check(!o.auto, '--auto computes its own scores; drop --scores-in');
        const summed = sumScores(o.scoresIn, o.scoresIn.map(readScores));
        checkScoresFit(summed, o.scoresIn[0], src.ckpt, traits.dropsLayers ? null : o.criterion, weighting, keepHash(batchKeeps[0]));
        batchScores = [summed];
      } else if (needsActivations) {
        const pass = await activationScoresFor(
          src,
          calibration!,
          batch,
          batchKeeps,
          weighting,
          o,
          compensate ? { store: store!, gemm: gemm!, first } : null,
        );
        batchScores = pass.scores;
        exactOf.push(...pass.exact);
        compensation.push(...pass.compensation);
      } else if (ffnPruned) {
        const layers =
          o.criterion === 'magnitude' ? magnitudeScores(src.ckpt) : randomScores(spec.numLayers, spec.intermediateSize, o.seed);
        batchScores = [scoresRecord(src, o.criterion, null, null, null, { layers, influence: null, weightTotal: 0, exact: null })];
      } else batchScores = [];
      // One set per candidate, or one set shared by all.
      batch.forEach((_, i) => scores.push(batchScores[Math.min(i, batchScores.length - 1)]));
      while (exactOf.length < scores.length) exactOf.push(null);
      while (compensation.length < candidates.length) compensation.push(null);
    };
    await scoreCandidates(grid);
    const calibrate = clock.lap();
    const withExact = (k: number): ChannelScores => {
      const f = exactOf[k];
      return f && scores[k].exact === null ? { ...scores[k], exact: f() } : scores[k];
    };
    if (o.calibShard) {
      const shard = o.calibShard;
      await writeFileAtomic(output, { force: o.force, inputs: [input] }, (fd) => writeSync(fd, jsonText(withExact(0))));
      const report: ShardReport = {
        input,
        scoresOut: output,
        shard,
        windows: shardWindows(calibration!.windows.length, shard),
        calibration: calibrationReport(calibration!, o),
        criterion: scores[0].criterion,
        weighting: scores[0].weighting!,
        seconds: { read, calibrate, total: clock.total() },
      };
      return report;
    }

    const planFor = (k: number): Plan => {
      const s = scores[k];
      const { budget } = candidates[k];
      const surgery = keeps[k].length < spec.vocabSize ? pruneTokenizerFiles(src.files, keeps[k]) : null;
      const slowFiles = surgery && slow ? pruneSlowTokenizerFiles(slow, surgery) : null;
      const channels = budget.ffn < spec.intermediateSize ? s.layers.map((l) => topChannels(l, budget.ffn)) : null;
      const dropped = dropLayers ? new Set(layersToDrop(blockInfluence(s.influence!, s.weightTotal), dropLayers)) : new Set<number>();
      const compensated = store && channels ? (layer: number) => store.get(k, layer)! : null;
      return { budget, keep: keeps[k], surgery, slowFiles, channels, dropped, compensated };
    };
    const score = clock.lap();

    // ── --auto: write and measure each split, refine near the best, keep the best ──
    let chosen = 0;
    let auto: PruneReport['auto'] = null;
    if (o.auto) {
      const measureText = o.measureText;
      check(measureText != null, 'the split search needs measureText (compact prune and the library pass bits per byte from eval)');
      const measured: (AutoCandidate & { index: number })[] = [];
      const measure = async (k: number) => {
        const dir = scratchPath(output, 'auto', k);
        const release = removeOnInterrupt(dir); // the search runs outside writeDirAtomic: an interrupt must not leave a candidate
        try {
          await writeDirAtomic(dir, { force: true, inputs: [input] }, (tmp) => writeCheckpointFiles(src, tmp, planFor(k)));
          const candidate = openCheckpoint(dir);
          const heldOutBitsPerByte = await measureText(dir, calibration!.heldOut);
          const removedRatio = 1 - countParams(candidate).total / src.before.total;
          const c = candidates[k];
          measured.push({
            index: k,
            vocabShare: c.share!,
            vocabMode: c.mode,
            pass: c.pass,
            vocab: c.budget.vocab,
            ffn: c.budget.ffn,
            removedRatio,
            heldOutBitsPerByte,
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
          release();
        }
      };
      const best = () => [...measured].sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index)[0];
      for (let k = 0; k < candidates.length; k++) {
        await measure(k);
        o.onProgress?.('search', k + 1, candidates.length);
      }
      if (o.autoRefine ?? true) {
        const refined = refineCandidates(src, o, candidates, best());
        if (refined.length) {
          const from = candidates.length;
          await scoreCandidates(refined);
          for (let k = from; k < candidates.length; k++) {
            await measure(k);
            o.onProgress?.('search', k + 1, candidates.length);
          }
        }
      }
      measured.sort((a, b) => a.heldOutBitsPerByte - b.heldOutBitsPerByte || a.index - b.index);
      chosen = measured[0].index;
      const heldOutTokens = encode(loadTokenizer(input), calibration!.heldOut).length;
      auto = {
        heldOutChars: calibration!.heldOut.length,
        heldOutTokens,
        candidates: measured.map(({ index: _index, ...c }) => c),
        warnings: autoWarnings(calibration!.heldOut.length, measured, candidates[chosen]),
      };
    }
    const search = clock.lap();
    const plan = planFor(chosen);
    const usedScores = scores[chosen];
    if (o.scoresOut && usedScores)
      await writeFileAtomic(o.scoresOut, { force: true, inputs: [input] }, (fd) => writeSync(fd, jsonText(withExact(chosen))));

    // ── write ──
    return await writeDirAtomic(output, { force: o.force, inputs: [input] }, async (tmp) => {
      const leftOut = await writeCheckpointFiles(src, tmp, plan, (d, t) => o.onProgress?.('write', d, t));
      const gguf = o.gguf ? await writeGgufInto(tmp, output, o.gguf) : null;
      const after = countParams(openCheckpoint(tmp));
      const report: PruneReport = {
        input,
        output,
        method: o.method,
        vocab: { before: spec.vocabSize, after: plan.keep.length, alwaysKept: src.alwaysKept, mode: candidates[chosen].mode },
        ffn: { before: spec.intermediateSize, after: plan.budget.ffn },
        layers: { before: spec.numLayers, after: spec.numLayers - plan.dropped.size, dropped: [...plan.dropped] },
        parameters: { before: src.before, after, removedRatio: 1 - after.total / src.before.total },
        calibration: calibration && calibrationReport(calibration, o),
        criterion: plan.channels ? usedScores!.criterion : null,
        weighting: plan.channels || plan.dropped.size ? usedScores!.weighting : null,
        auto,
        compensation: plan.compensated ? compensation[chosen] : null,
        leftOut,
        gguf,
        seconds: { read, calibrate, score, search, write: clock.lap(), total: clock.total() },
      };
      // Card and manifest hold no timings, so the same inputs give byte-identical files; the
      // pruning time goes to its own file, the only one that differs between runs.
      const { seconds, ...reproducible } = report;
      writeFileSync(join(tmp, 'README.md'), modelCard(report, o));
      const manifest = {
        tool: 'compact',
        version: o.version,
        command: o.commandLine,
        ...reproducible,
        old2new: plan.surgery ? Array.from(plan.surgery.old2new) : null,
        channels: plan.channels,
      };
      writeFileSync(join(tmp, MANIFEST_FILE), jsonText(manifest));
      const timing: PruneTiming = {
        seconds,
        threads: o.threads ?? cpus().length,
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
      };
      writeFileSync(join(tmp, TIMING_FILE), JSON.stringify(timing, null, 2) + '\n');
      return report;
    });
  } finally {
    store?.close();
    releaseStore();
    await gemm?.release();
  }
}

function calibrationReport(calibration: Calibration, o: PruneOptions): NonNullable<PruneReport['calibration']> {
  return {
    sha256: calibration.sha256,
    files: calibration.files,
    samples: calibration.options.samples,
    seqLen: calibration.options.seqLen,
    seed: o.seed,
    corpusTokens: calibration.corpusTokens,
    precision: o.precision ?? 'fp32',
  };
}

/** What a calibration shard needs, checked before any long work. */
function checkShardRun(o: PruneOptions, shard: CalibShard): void {
  checkCalibShard(shard);
  check(
    !o.scoresIn?.length,
    '--calib-shard computes scores; sum the shards with --scores-in in the run that prunes, without --calib-shard',
  );
  check(
    !o.auto,
    '--calib-shard: the split search (--auto) measures pruned candidates, which needs the whole calibration; fix the split (--vocab-share s, --no-auto, or --vocab/--ffn)',
  );
  shardWindows(o.calibWindows?.length ?? o.samples, shard); // enough windows for n non-empty shards
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
  const alwaysKept =
    files.tokenizer != null ? selectKeepSet(files, { size: ckpt.spec.vocabSize, keepList: o.keepList }).alwaysKept : ckpt.spec.vocabSize;
  return { input, ckpt, before: countParams(ckpt), files, floatPaths, alwaysKept };
}

/** The splits to write: one, or for --auto one per vocabulary share × vocabulary mode (the first pass's grid). */
function planCandidates(src: Source, o: PruneOptions): Candidate[] {
  const spec = src.ckpt.spec;
  const full = { vocab: spec.vocabSize, ffn: spec.intermediateSize };
  const one = (budget: Budget): Candidate[] => [{ budget, mode: o.vocabMode, share: null, pass: 'grid' }];
  const traits = METHOD_TRAITS[o.method];
  let candidates: Candidate[];
  if (traits.dropsLayers) {
    check(o.vocab == null && o.ffn == null, `--method ${o.method} takes --ratio only`);
    candidates = one(full);
  } else if (o.auto) {
    check(o.ratio == null || (o.ratio > 0 && o.ratio < 1), `--ratio must be in (0, 1), got ${o.ratio}`);
    check(
      traits.vocabShare === 'chosen' && o.ratio != null && o.vocabShare == null && o.vocab == null && o.ffn == null,
      '--auto searches the vocabulary share of --ratio r for --method compact; drop --vocab, --ffn and --vocab-share',
    );
    const { min, max } = shareRange(src, o);
    const shares = [...new Set(AUTO_SHARES.map((s) => Math.min(max, Math.max(min, s))))];
    const modes = autoModes(src, o);
    candidates = modes.flatMap((mode) =>
      shares.map((share) => ({ budget: solveShare(src, o, share), mode, share, pass: 'grid' as const })),
    );
  } else if (o.ratio != null) {
    check(o.vocab == null && o.ffn == null, 'give either --ratio or --vocab/--ffn, not both');
    candidates = one(solveShare(src, o, traits.vocabShare === 'chosen' ? o.vocabShare : traits.vocabShare));
  } else {
    check(o.vocab != null || o.ffn != null, 'give a budget: --ratio r, or --vocab V′ and/or --ffn I′');
    candidates = one({ vocab: o.vocab ?? spec.vocabSize, ffn: o.ffn ?? spec.intermediateSize });
    check(traits.takesFfn || candidates[0].budget.ffn === spec.intermediateSize, `--method ${o.method} does not take --ffn`);
    check(traits.takesVocab || candidates[0].budget.vocab === spec.vocabSize, `--method ${o.method} does not take --vocab`);
  }
  for (const { budget: b } of candidates) {
    check(
      Number.isSafeInteger(b.vocab) && b.vocab >= src.alwaysKept && b.vocab <= spec.vocabSize,
      `--vocab must be an integer in [${src.alwaysKept}, ${spec.vocabSize}] (${src.alwaysKept} tokens are always kept), got ${b.vocab}`,
    );
    check(
      Number.isSafeInteger(b.ffn) && b.ffn >= 1 && b.ffn <= spec.intermediateSize,
      `--ffn must be an integer in [1, ${spec.intermediateSize}], got ${b.ffn}`,
    );
  }
  return candidates;
}

const roundToOf = (src: Source, o: PruneOptions): number => o.roundTo ?? defaultRoundTo(src.ckpt.spec.intermediateSize);

function solveShare(src: Source, o: PruneOptions, vocabShare: number | undefined): Budget {
  return solveBudget(src.ckpt.spec, {
    ratio: o.ratio!,
    vocabShare,
    total: src.before.total,
    minVocab: src.alwaysKept,
    roundTo: roundToOf(src, o),
  });
}

/** Vocabulary shares --ratio can take: the vocabulary (or the FFN) cannot give more than it has. */
function shareRange(src: Source, o: PruneOptions): { min: number; max: number } {
  const spec = src.ckpt.spec;
  const roundTo = roundToOf(src, o);
  const target = o.ratio! * src.before.total;
  const max = Math.min(1, ((spec.vocabSize - src.alwaysKept) * vocabRowParams(spec)) / target);
  const min = Math.max(0, 1 - ((spec.intermediateSize - roundTo) * channelParams(spec)) / target);
  check(
    min <= max,
    `--ratio ${o.ratio} is unreachable: vocabulary and FFN together can give at most ${((max * target + (spec.intermediateSize - roundTo) * channelParams(spec)) / src.before.total).toFixed(3)} of the parameters`,
  );
  return { min, max };
}

/** Modes --auto tries: frequency needs a tokenizer to count with (without one, rank only). */
function autoModes(src: Source, o: PruneOptions): KeepMode[] {
  const modes = o.autoModes ?? [o.vocabMode];
  check(modes.length > 0, '--auto needs at least one vocabulary mode');
  return src.files.tokenizer == null ? ['rank'] : [...new Set(modes)];
}

/**
 * The second pass of --auto: shares halfway between the best grid split and its neighbours
 * (same mode), skipping any that solves to a (V′, I′) already tried.
 */
function refineCandidates(src: Source, o: PruneOptions, tried: Candidate[], best: AutoCandidate): Candidate[] {
  const shares = [...new Set(tried.filter((c) => c.mode === best.vocabMode).map((c) => c.share!))].sort((a, b) => a - b);
  const at = shares.indexOf(best.vocabShare);
  const seen = new Set(tried.filter((c) => c.mode === best.vocabMode).map((c) => `${c.budget.vocab}:${c.budget.ffn}`));
  const out: Candidate[] = [];
  for (const neighbour of [shares[at - 1], shares[at + 1]]) {
    if (neighbour == null) continue;
    const share = (neighbour + best.vocabShare) / 2;
    const budget = solveShare(src, o, share);
    const key = `${budget.vocab}:${budget.ffn}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ budget, mode: best.vocabMode, share, pass: 'refine' });
  }
  return out;
}

/** What the report must say about how --auto's choice was made. */
function autoWarnings(heldOutChars: number, measured: AutoCandidate[], chosen: Candidate): string[] {
  const warnings: string[] = [];
  if (heldOutChars < AUTO_FEW_CHARS)
    warnings.push(
      `only ${heldOutChars} held-out characters decided the split (fewer than ${AUTO_FEW_CHARS}): the choice is noisy; give more calibration text`,
    );
  if (chosen.mode === 'frequency' && chosen.budget.vocab < Math.max(...measured.map((m) => m.vocab))) {
    warnings.push(
      'the vocabulary was chosen by token frequency on the calibration text: it is tuned to that domain, and text of another domain may lose more (check with --eval-text on general text)',
    );
  }
  return warnings;
}

/** Whether down_proj is compensated: --compensate is refused where it cannot apply, 'auto' applies wherever it can. */
function compensationApplies(src: Source, o: PruneOptions, candidates: Candidate[]): boolean {
  if (!o.compensate) return false;
  const ffnPruned = candidates.some((c) => c.budget.ffn < src.ckpt.spec.intermediateSize);
  const why = !METHOD_TRAITS[o.method].takesFfn
    ? `--method ${o.method} removes no FFN channel, so there is nothing to compensate`
    : o.criterion !== 'act2'
      ? `compensation needs calibration statistics, and --criterion ${o.criterion} uses none; use --criterion act2 or --no-compensate`
      : o.scoresIn?.length
        ? 'compensation needs a calibration pass, and --scores-in skips it; drop --scores-in or use --no-compensate'
        : o.calibShard
          ? 'a calibration shard writes only its scores (the Gram is not summed over shards); use --no-compensate'
          : !ffnPruned
            ? 'no FFN channel is removed (give --ffn or --ratio), so there is nothing to compensate'
            : null;
  if (why == null) return true;
  check(o.compensate === 'auto', `--compensate: ${why}`);
  return false;
}

/** ShortGPT: how many whole layers --ratio removes. */
function layersForRatio(src: Source, ratio: number | undefined): number {
  check(ratio != null, '--method shortgpt needs --ratio');
  const { ckpt, before } = src;
  const perLayer = [...ckpt.tensors.values()]
    .filter((t) => t.name.startsWith(layerPrefix(0)))
    .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const drop = Math.round((ratio * before.total) / perLayer);
  const L = ckpt.spec.numLayers;
  check(
    drop >= 1 && drop < L,
    `--ratio ${ratio} means dropping ${drop} of ${L} layers (${perLayer} parameters each); reachable: ${(perLayer / 2 / before.total).toFixed(3)} ≤ ratio < ${(((L - 0.5) * perLayer) / before.total).toFixed(3)}`,
  );
  return drop;
}

/** Old ids kept for V′ (all of them without a tokenizer). */
function keepFor(src: Source, vocab: number, mode: KeepMode, o: PruneOptions, counts: Float64Array | undefined): number[] {
  if (src.files.tokenizer == null) return [...Array(src.ckpt.spec.vocabSize).keys()];
  return selectKeepSet(src.files, { size: vocab, mode, counts, keepList: o.keepList }).keep;
}

const keepHash = (keep: number[]): string => createHash('sha256').update(Int32Array.from(keep)).digest('hex');

/**
 * Common act² for every candidate vocabulary in one pass. Tokens are grouped by the set of
 * candidates that keep them; the graph sums h² per group, and candidate k's score is the sum
 * over the groups that it keeps (binary), weighted by token frequency (frequency), or plain act² (none).
 * With compensation the graph also sums the Gram hᵀ·diag(w)·h per group (only groups some candidate
 * counts); as each layer arrives, candidate k's Gram is the sum of its groups', its channels are
 * chosen from its scores, and its compensated down_proj is solved and stored; the Grams are dropped.
 * The graph returns each window's act² and influence on its own, and they are summed exactly
 * (calib-shard.ts ExactStats), so a shard (o.calibShard: a subset of the windows, weighted as in
 * the whole calibration) sums with the others to this pass's scores bit for bit.
 */
async function activationScoresFor(
  src: Source,
  calibration: Calibration,
  candidates: Candidate[],
  keeps: number[][],
  weighting: Weighting,
  o: PruneOptions,
  comp: { store: CompensatedStore; gemm: Gemm; first: number } | null,
): Promise<{ scores: ChannelScores[]; compensation: (CompensationReport | null)[]; exact: (() => ExactScores)[] }> {
  const V = src.ckpt.spec.vocabSize;
  const I = src.ckpt.spec.intermediateSize;
  check(keeps.length <= 30, `internal: at most 30 candidate vocabularies per pass, got ${keeps.length}`);
  const membership = new Int32Array(V); // bit k: candidate k keeps the token
  keeps.forEach((keep, k) => keep.forEach((id) => (membership[id] |= 1 << k)));
  const masks = weighting === 'none' ? [0] : [...new Set(calibration.windows.flat().map((id) => membership[id]))].sort((a, b) => a - b);
  const group = new Map(masks.map((m, g) => [m, g]));
  const G = masks.length;
  const frequency = new Float64Array(V);
  if (weighting === 'frequency') for (const id of calibration.windows.flat()) frequency[id] += 1 / (calibration.windows.length * o.seqLen);
  const weightOf = (id: number) => (weighting === 'frequency' ? frequency[id] : 1);
  const statWeights = calibration.windows.map((w) => {
    const weights = new Float32Array(w.length * G); // [T, G]
    w.forEach((id, t) => (weights[t * G + (weighting === 'none' ? 0 : group.get(membership[id])!)] = weightOf(id)));
    return weights;
  });
  const included = (k: number) => masks.map((m) => weighting === 'none' || (m & (1 << k)) !== 0);
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

  // Gram groups: act² groups counted by the same pruned candidates are only ever used summed, so
  // they share one Gram (one fixed split: a single group); groups no pruned candidate counts have none.
  const pruned = candidates.map((c) => c.budget.ffn < I);
  const signatures: string[] = []; // per Gram group: which pruned candidates count it
  const gramGroupOf = masks.map((_m, g) => {
    const signature = candidates.map((_c, k) => (pruned[k] && included(k)[g] ? 1 : 0)).join('');
    if (!comp || !signature.includes('1')) return -1;
    const c = signatures.indexOf(signature);
    return c >= 0 ? c : signatures.push(signature) - 1;
  });
  const C = signatures.length;
  const gramWeights =
    comp && C > 0
      ? calibration.windows.map((w) => {
          const weights = new Float32Array(w.length * C); // [T, C]
          w.forEach((id, t) => {
            const c = gramGroupOf[weighting === 'none' ? 0 : group.get(membership[id])!];
            if (c >= 0) weights[t * C + c] = weightOf(id);
          });
          return weights;
        })
      : null;
  const reports: (CompensationReport | null)[] = candidates.map((_c, k) =>
    comp && pruned[k] ? { damp: o.damp ?? DEFAULT_DAMP, layers: [] } : null,
  );
  const keptOf: number[][] = []; // candidate 0's channels per layer (for sequential statistics)
  const layout = gramLayout(I);
  let summed: Float32Array | null = null; // candidate k's packed Gram when it spans several groups, reused across layers
  const onGram = async (layer: number, gram: Float32Array) => {
    checkFinite();
    const down = loadF32(src.ckpt, layerPrefix(layer) + LAYER_TENSORS.down); // [D, I]
    for (const [k, c] of candidates.entries()) {
      if (!pruned[k]) continue;
      const channels = topChannels(layerScores(layer, k), c.budget.ffn);
      if (k === 0) keptOf[layer] = channels;
      const parts = signatures.flatMap((sig, g) => (sig[k] === '1' ? [gram.subarray(g * layout.length, (g + 1) * layout.length)] : []));
      let gramK: Float32Array;
      if (parts.length === 1) gramK = parts[0];
      else {
        summed ??= new Float32Array(layout.length);
        summed.set(parts[0]);
        for (const part of parts.slice(1)) for (let i = 0; i < part.length; i++) summed[i] += part[i];
        gramK = summed;
      }
      const r = await compensateLayer(comp!.gemm, down, new PackedGram(layout, gramK), channels, o.damp ?? DEFAULT_DAMP);
      comp!.store.put(comp!.first + k, layer, r.weight);
      reports[k]!.layers.push({ lambda: r.lambda, silentKept: r.silentKept, noStatistics: r.noStatistics });
    }
  };
  const engine = new Engine(src.ckpt, { threads: o.threads, precision: o.precision });
  const targets = lossTargets(windows);
  const { logprobs } = await engine.forward(windows, {
    targets,
    statWeights: run.map((w) => statWeights[w]),
    statGroups: G,
    onSequenceStats: (layer, _s, act2, influence) => stats.add(layer, act2, influence),
    gram: gramWeights ? { weights: run.map((w) => gramWeights[w]), groups: C, onLayer: onGram } : undefined,
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
  return { scores, compensation: reports, exact: keeps.map((_, k) => exactOf(k)) };
}

/** [D, I′] columns placed at `kept` of a zero [D, I]. */
function scatterColumns(values: Float32Array, kept: number[], I: number): Float32Array {
  const n = kept.length;
  const D = values.length / n;
  const out = new Float32Array(D * I);
  for (let d = 0; d < D; d++) for (let c = 0; c < n; c++) out[d * I + kept[c]] = values[d * n + c];
  return out;
}

/** A calibration from pre-tokenized windows (hashed as their JSON). */
function windowsCalibration(windows: number[][], o: PruneOptions): Calibration {
  check(windows.length > 0 && windows.every((w) => w.length > 0), 'calibration windows must be non-empty');
  return {
    windows,
    sha256: createHash('sha256').update(JSON.stringify(windows)).digest('hex'),
    corpusTokens: windows.reduce((n, w) => n + w.length, 0),
    files: [],
    options: { samples: windows.length, seqLen: Math.max(...windows.map((w) => w.length)), seed: o.seed, field: o.calibField },
    heldOut: '',
    documents: [],
  };
}

function scoresRecord(
  src: Source,
  criterion: Criterion,
  weighting: Weighting | null,
  keptVocabSha256: string | null,
  calibration: Calibration | null,
  values: Pick<ChannelScores, 'layers' | 'influence' | 'weightTotal' | 'exact'>,
  shard: CalibShard | null = null,
  precision: Precision = 'fp32',
): ChannelScores {
  const { spec } = src.ckpt;
  return {
    format: SCORES_FORMAT,
    model: { fingerprint: fingerprint(src.ckpt), numLayers: spec.numLayers, intermediateSize: spec.intermediateSize },
    criterion,
    weighting,
    keptVocabSha256,
    calibrations: calibration
      ? [
          {
            sha256: calibration.sha256,
            field: calibration.options.field,
            samples: calibration.options.samples,
            seqLen: calibration.options.seqLen,
            seed: calibration.options.seed,
            shard,
            // Recorded when not fp32 (fp32 files stay as before), so sumScores refuses mixing precisions.
            ...(precision === 'fp32' ? {} : { precision }),
          },
        ]
      : [],
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
async function writeCheckpointFiles(
  src: Source,
  dir: string,
  plan: Plan,
  onTensor?: (done: number, total: number) => void,
): Promise<LeftOut[]> {
  const spec = src.ckpt.spec;
  await writeWeights(src.ckpt, dir, tensorEdit(src.ckpt, plan), onTensor);
  // Surgery's config.json has the vocabulary fields (vocab_size, bos/eos/pad ids) remapped.
  const config: JsonObject = {
    ...((plan.surgery?.files.config as JsonObject | undefined) ?? spec.raw),
    intermediate_size: plan.budget.ffn,
    ...layerDropFields(spec, plan.dropped),
  };
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
      if (suffix === LAYER_TENSORS.down && plan.compensated) {
        const compensated = plan.compensated;
        return { name, shape: [info.shape[0], keep.length], bytes: () => [storedBytes(compensated(Number(layer[1])), info.dtype, name)] };
      }
      if (suffix === LAYER_TENSORS.down) return { name, shape: [info.shape[0], keep.length], bytes: () => keptColumnChunks(info, keep) };
      if (suffix !== LAYER_TENSORS.downBias)
        return { name, shape: [keep.length, ...info.shape.slice(1)], bytes: () => keptRowChunks(info, keep) };
    }
    return { name, shape: info.shape, bytes: () => tensorChunks(info) };
  };
}

/** Largest finite magnitude of each stored float type. */
const FLOAT_MAX: Record<string, number> = { F32: 3.4028234663852886e38, F16: 65504, BF16: 3.3895313892515355e38 };

/** f32 weights in the tensor's stored dtype (round to nearest even); a value the dtype cannot hold is refused, never written. */
function storedBytes(values: Float32Array, dtype: string, name: string): Uint8Array {
  check(dtype in FLOAT_MAX, `${name}: compensation writes F32, F16 or BF16 tensors, not ${dtype}; use --no-compensate`);
  const max = FLOAT_MAX[dtype];
  for (const v of values) {
    if (!(Math.abs(v) <= max))
      check(
        false,
        `${name}: a compensated weight (${v}) does not fit ${dtype}; nothing was written — use --no-compensate or more calibration text`,
      );
  }
  return encodeAs(values, dtype as 'F32' | 'F16' | 'BF16');
}

function checkScoresFit(
  s: ChannelScores,
  file: string,
  ckpt: Checkpoint,
  criterion: Criterion | null,
  weighting: Weighting,
  keptVocabSha256: string,
): void {
  const spec = ckpt.spec;
  check(
    s.model.numLayers === spec.numLayers &&
      s.model.intermediateSize === spec.intermediateSize &&
      s.layers.length === spec.numLayers &&
      s.layers.every((l) => l.length === spec.intermediateSize),
    `${file}: scores are for ${s.model.numLayers} layers × ${s.model.intermediateSize} channels, the model has ${spec.numLayers} × ${spec.intermediateSize}`,
  );
  check(s.model.fingerprint === fingerprint(ckpt), `${file}: scores were computed on another checkpoint (fingerprint mismatch)`);
  if (criterion) check(s.criterion === criterion, `${file}: scores use criterion ${s.criterion}, but --criterion is ${criterion}`);
  if (s.weighting) check(s.weighting === weighting, `${file}: scores use weighting ${s.weighting}, but --weighting is ${weighting}`);
  if (s.keptVocabSha256)
    check(
      s.keptVocabSha256 === keptVocabSha256,
      `${file}: scores were weighted with another kept vocabulary; use the same --vocab/--vocab-mode or recompute`,
    );
}
