/**
 * `compact prune`: the whole pipeline. Budget → kept vocabulary → channel scores (one layer-wise
 * pass, or a scores file) → kept channels per layer → a standard checkpoint written atomically
 * (weights sliced in their stored dtype, tokenizer surgery, config, model card, manifest).
 */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/engine.js';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.js';
import { copyOtherFiles, writeWeights, type TensorEdit } from '../model/checkpoint-writer.js';
import { jsonText, readJsonDocument } from '../util/json-text.js';
import { fingerprint } from '../model/fingerprint.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { readTensorBytes } from '../model/safetensors.js';
import { sliceColumns, sliceRows } from '../model/slice.js';
import { EMBED, LM_HEAD, LAYER_TENSORS, layerPrefix } from '../model/tensor-names.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { writeDirAtomic } from '../util/atomic-dir.js';
import { check } from '../util/errors.js';
import { countTokens } from '../vocab/count-tokens.js';
import { selectKeepSet, type KeepMode } from '../vocab/keep-set.js';
import { pruneTokenizerFiles } from '../vocab/surgery.js';
import type { JsonObject, TokenizerFiles } from '../vocab/tokenizer-json.js';
import { type Budget, defaultRoundTo, solveBudget } from './budget.js';
import { buildCalibration, readDocuments, type Calibration } from './calibration.js';
import { blockInfluence, layerDropFields, layersToDrop, renumberLayerTensor } from './layer-drop.js';
import { modelCard } from './model-card.js';
import {
  activationScores,
  type ChannelScores,
  type Criterion,
  magnitudeScores,
  positionWeights,
  randomScores,
  readScores,
  SCORES_FORMAT,
  sumScores,
  topChannels,
  type Weighting,
} from './scores.js';

export const METHODS = ['compact', 'vocab-only', 'ffn-only', 'shortgpt'] as const;
export type Method = (typeof METHODS)[number];

export interface PruneOptions {
  method: Method;
  vocab?: number;
  ffn?: number;
  ratio?: number;
  vocabShare?: number;
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
  onProgress?: (stage: 'calibrate' | 'write', done: number, total: number) => void;
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
  seconds: { read: number; calibrate: number; score: number; write: number; total: number };
}

export async function prune(input: string, output: string, o: PruneOptions): Promise<PruneReport> {
  const started = performance.now();
  let clock = started;
  const lap = () => {
    const now = performance.now();
    const s = (now - clock) / 1000;
    clock = now;
    return s;
  };
  const ckpt = openCheckpoint(input);
  const spec = ckpt.spec;
  const before = countParams(ckpt);
  // Without tokenizer.json the vocabulary cannot be pruned (nor text calibrated), but FFN
  // pruning by magnitude or from a scores file still works.
  const { files, floatPaths } = readTokenizerFiles(input);
  const hasTokenizer = files.tokenizer != null;
  const alwaysKept = hasTokenizer ? selectKeepSet(files, { size: spec.vocabSize, keepList: o.keepList }).alwaysKept : spec.vocabSize;
  const read = lap();

  // ── budget ──
  const roundTo = o.roundTo ?? defaultRoundTo(spec.intermediateSize);
  let budget: Budget = { vocab: spec.vocabSize, ffn: spec.intermediateSize };
  let dropLayers = 0;
  if (o.method === 'shortgpt') {
    check(o.ratio != null, '--method shortgpt needs --ratio');
    const perLayer = [...ckpt.tensors.values()].filter((t) => t.name.startsWith(layerPrefix(0))).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    dropLayers = Math.round((o.ratio * before.total) / perLayer);
    check(dropLayers >= 1 && dropLayers < spec.numLayers, `--ratio ${o.ratio} means dropping ${dropLayers} of ${spec.numLayers} layers (${perLayer} parameters each); reachable: ${(perLayer / 2 / before.total).toFixed(3)} ≤ ratio < ${(((spec.numLayers - 0.5) * perLayer) / before.total).toFixed(3)}`);
  } else if (o.ratio != null) {
    check(o.vocab == null && o.ffn == null, 'give either --ratio or --vocab/--ffn, not both');
    const vocabShare = o.method === 'vocab-only' ? 1 : o.method === 'ffn-only' ? 0 : o.vocabShare;
    budget = solveBudget(spec, { ratio: o.ratio, vocabShare, total: before.total, minVocab: alwaysKept, roundTo });
  } else {
    check(o.vocab != null || o.ffn != null, 'give a budget: --ratio r, or --vocab V′ and/or --ffn I′');
    budget = { vocab: o.vocab ?? spec.vocabSize, ffn: o.ffn ?? spec.intermediateSize };
    check(o.method !== 'vocab-only' || budget.ffn === spec.intermediateSize, '--method vocab-only does not take --ffn');
    check(o.method !== 'ffn-only' || budget.vocab === spec.vocabSize, '--method ffn-only does not take --vocab');
  }
  check(Number.isSafeInteger(budget.vocab) && budget.vocab >= alwaysKept && budget.vocab <= spec.vocabSize, `--vocab must be an integer in [${alwaysKept}, ${spec.vocabSize}] (${alwaysKept} tokens are always kept), got ${budget.vocab}`);
  check(Number.isSafeInteger(budget.ffn) && budget.ffn >= 1 && budget.ffn <= spec.intermediateSize, `--ffn must be an integer in [1, ${spec.intermediateSize}], got ${budget.ffn}`);

  // ── vocabulary ──
  const tokenizer = () => loadTokenizer(input);
  const counts = o.vocabMode === 'frequency' ? countTokens(tokenizer(), (o.vocabCorpus ?? o.calib).flatMap((f) => readDocuments(f, o.calibField))) : undefined;
  const keep = hasTokenizer ? selectKeepSet(files, { size: budget.vocab, mode: o.vocabMode, counts, keepList: o.keepList }).keep : [...Array(spec.vocabSize).keys()];
  const surgery = keep.length < spec.vocabSize ? pruneTokenizerFiles(files, keep) : null;
  const rows = surgery ? embeddingRows(surgery.old2new) : null;
  const kept = new Uint8Array(spec.vocabSize);
  for (const id of keep) kept[id] = 1;
  const keptVocabSha256 = createHash('sha256').update(Int32Array.from(keep)).digest('hex');

  // ── scores ──
  const needsActivations = o.method === 'shortgpt' || (budget.ffn < spec.intermediateSize && o.criterion === 'act2');
  const weighting: Weighting = o.method === 'shortgpt' ? 'none' : o.weighting;
  let calibration: Calibration | null = null;
  let scores: ChannelScores | null = null;
  let calibrate = 0;
  if (o.scoresIn?.length) {
    scores = sumScores(o.scoresIn, o.scoresIn.map(readScores));
    checkScoresFit(scores, o.scoresIn[0], ckpt, o.method === 'shortgpt' ? null : o.criterion, weighting, keptVocabSha256);
  } else if (needsActivations || budget.ffn < spec.intermediateSize) {
    let layers: number[][];
    let influence: number[] | null = null;
    let weightTotal = 0;
    if (needsActivations) {
      calibration = buildCalibration(tokenizer(), o.calib, { samples: o.samples, seqLen: o.seqLen, seed: o.seed, field: o.calibField });
      const engine = new Engine(ckpt, { threads: o.threads });
      const result = await activationScores(engine, calibration.windows, positionWeights(calibration.windows, kept, weighting), (l, n) => o.onProgress?.('calibrate', l, n));
      await engine.release();
      ({ layers, influence, weightTotal } = result);
    } else {
      layers = o.criterion === 'magnitude' ? magnitudeScores(ckpt) : randomScores(spec.numLayers, spec.intermediateSize, o.seed);
    }
    calibrate = lap();
    scores = {
      format: SCORES_FORMAT,
      model: { fingerprint: fingerprint(ckpt), numLayers: spec.numLayers, intermediateSize: spec.intermediateSize },
      criterion: o.method === 'shortgpt' ? 'act2' : o.criterion,
      weighting: needsActivations ? weighting : null,
      keptVocabSha256: needsActivations && weighting !== 'none' ? keptVocabSha256 : null,
      calibrations: calibration ? [{ sha256: calibration.sha256, samples: o.samples, seqLen: o.seqLen, seed: o.seed }] : [],
      layers,
      influence,
      weightTotal,
    };
    if (o.scoresOut) writeFileSync(o.scoresOut, jsonText(scores));
  }
  const channels = budget.ffn < spec.intermediateSize ? scores!.layers.map((s) => topChannels(s, budget.ffn)) : null;
  const dropped = o.method === 'shortgpt' ? new Set(layersToDrop(blockInfluence(scores!.influence!, scores!.weightTotal), dropLayers)) : new Set<number>();
  const score = lap();

  // ── write ──
  const edit = tensorEdit(ckpt, rows, channels, dropped);
  return writeDirAtomic(output, { force: o.force, inputs: [input] }, async (tmp) => {
    await writeWeights(ckpt, tmp, edit, (d, t) => o.onProgress?.('write', d, t));
    // Surgery's config.json has the vocabulary fields (vocab_size, bos/eos/pad ids) remapped.
    const config: JsonObject = { ...((surgery?.files.config as JsonObject | undefined) ?? spec.raw), intermediate_size: budget.ffn, ...layerDropFields(spec, dropped) };
    writeFileSync(join(tmp, 'config.json'), jsonText(config, floatPaths.config));
    const rewritten = new Set(['config.json', 'README.md', 'compact.json']);
    if (surgery) {
      for (const [key, file] of Object.entries(TOKENIZER_FILES)) {
        const value = surgery.files[key as keyof TokenizerFiles];
        if (value == null || key === 'config') continue;
        writeFileSync(join(tmp, file), jsonText(value, floatPaths[key as keyof TokenizerFiles]));
        rewritten.add(file);
      }
    }
    copyOtherFiles(ckpt, tmp, rewritten);
    const after = countParams(openCheckpoint(tmp));
    const report: PruneReport = {
      input,
      output,
      method: o.method,
      vocab: { before: spec.vocabSize, after: surgery ? surgery.vocabSize : spec.vocabSize, alwaysKept },
      ffn: { before: spec.intermediateSize, after: budget.ffn },
      layers: { before: spec.numLayers, after: spec.numLayers - dropped.size, dropped: [...dropped] },
      parameters: { before, after, removedRatio: 1 - after.total / before.total },
      calibration: calibration && {
        sha256: calibration.sha256,
        files: calibration.files,
        samples: o.samples,
        seqLen: o.seqLen,
        seed: o.seed,
        corpusTokens: calibration.corpusTokens,
      },
      criterion: channels ? scores!.criterion : null,
      weighting: channels || dropped.size ? scores!.weighting : null,
      seconds: { read, calibrate, score, write: lap(), total: (performance.now() - started) / 1000 },
    };
    // Card and manifest hold no timings, so the same inputs give byte-identical directories.
    const { seconds: _timings, ...reproducible } = report;
    writeFileSync(join(tmp, 'README.md'), modelCard(report, o));
    writeFileSync(join(tmp, 'compact.json'), jsonText({ tool: 'compact', version: o.version, command: o.commandLine, ...reproducible, old2new: surgery ? Array.from(surgery.old2new) : null, channels }));
    return report;
  });
}

const TOKENIZER_FILES: Record<keyof TokenizerFiles, string> = {
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  config: 'config.json',
  generationConfig: 'generation_config.json',
  specialTokensMap: 'special_tokens_map.json',
};

/** The tokenizer and config files, parsed, with their float-literal paths (see util/json-text.ts). */
function readTokenizerFiles(dir: string): { files: TokenizerFiles; floatPaths: Partial<Record<keyof TokenizerFiles, Set<string>>> } {
  const files: TokenizerFiles = {};
  const floatPaths: Partial<Record<keyof TokenizerFiles, Set<string>>> = {};
  for (const [key, file] of Object.entries(TOKENIZER_FILES) as [keyof TokenizerFiles, string][]) {
    if (!existsSync(join(dir, file))) continue;
    const doc = readJsonDocument(join(dir, file));
    (files as Record<string, unknown>)[key] = doc.value;
    floatPaths[key] = doc.floatPaths;
  }
  return { files, floatPaths };
}

/** Old row index of each new id: the inverse of old2new. */
function embeddingRows(old2new: Int32Array): Int32Array {
  const rows: number[] = [];
  old2new.forEach((n, old) => {
    if (n >= 0) rows[n] = old;
  });
  return Int32Array.from(rows);
}

function tensorEdit(ckpt: Checkpoint, rows: Int32Array | null, channels: number[][] | null, dropped: Set<number>): TensorEdit {
  const L = ckpt.spec.numLayers;
  return (info) => {
    const name = renumberLayerTensor(info.name, dropped, L);
    if (name == null) return null;
    if (rows && (info.name === EMBED || info.name === LM_HEAD)) {
      return { name, shape: [rows.length, info.shape[1]], bytes: () => sliceRows(readTensorBytes(info), info.shape, rows) };
    }
    const layer = /^model\.layers\.(\d+)\.mlp\./.exec(info.name);
    if (channels && layer) {
      const keep = channels[Number(layer[1])];
      const suffix = info.name.slice(info.name.indexOf('mlp.'));
      if (suffix === LAYER_TENSORS.down) return { name, shape: [info.shape[0], keep.length], bytes: () => sliceColumns(readTensorBytes(info), info.shape, info.dtype, keep) };
      if (suffix !== LAYER_TENSORS.downBias) return { name, shape: [keep.length, ...info.shape.slice(1)], bytes: () => sliceRows(readTensorBytes(info), info.shape, keep) };
    }
    return { name, shape: info.shape, bytes: () => readTensorBytes(info) };
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
