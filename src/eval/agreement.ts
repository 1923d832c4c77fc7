/**
 * Agreement of a (pruned) model with a reference (its dense original) on one text; definitions
 * in docs/agreement.md.
 *
 * - Greedy agreement: on prompts cut from the text's paragraphs, each model continues greedily;
 *   the two continuations are compared as text over their first C characters.
 * - KL and top-1 agreement: at every position where both tokenizations of a paragraph coincide
 *   (same text before, same next token), KL(P_ref ‖ P_model) between the two next-token
 *   distributions over the tokens both vocabularies share, the reference renormalised over them,
 *   and whether their most likely tokens are the same; the reference's probability mass on tokens
 *   the model lacks is reported beside them.
 */
import type { Tokenizer } from '@huggingface/tokenizers';
import { Decoder } from '../engine/decoder.js';
import { Engine } from '../engine/engine.js';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { CompactError } from '../util/errors.js';
import { modelContext } from './text-metrics.js';
import { cumulativeBytes, mapIds, readTokenTable, type TokenTable } from './token-table.js';

/** One model as agreement sees it. */
export interface AgreementSide {
  ckpt: Checkpoint;
  engine: Engine;
  tokenizer: Tokenizer;
  table: TokenTable;
}

export function openAgreementSide(dir: string, threads?: number): AgreementSide {
  const ckpt = openCheckpoint(dir);
  return { ckpt, engine: new Engine(ckpt, { threads }), tokenizer: loadTokenizer(dir), table: readTokenTable(dir) };
}

export interface AgreementOptions {
  /** Paragraphs of the text used (the first ones; paragraphs are separated by blank lines). */
  paragraphs: number;
  /** Characters of each greedy continuation compared. */
  continuationChars: number;
  /** Tokens of a paragraph scored for KL (longer paragraphs are cut). */
  window: number;
  threads?: number;
  onProgress?: (phase: 'reference' | 'greedy' | 'kl', done: number, total: number) => void;
}

export interface GreedyPair {
  prompt: string;
  reference: string;
  model: string;
}

export interface AgreementMetrics {
  paragraphs: number;
  greedy: {
    prompts: number;
    continuationChars: number;
    /** Mean over prompts of (common prefix of the two continuations, in characters) / C; 1 when they are equal. */
    meanAgreement: number;
    /** Prompts whose continuations are identical over C characters. */
    exact: number;
    pairs: GreedyPair[];
  };
  kl: {
    /** Next-token predictions of the reference considered (positions with a non-empty context). */
    referencePositions: number;
    /** Of those, positions where both tokenizations coincide. */
    comparedPositions: number;
    /** Mean KL(P_ref ‖ P_model) in nats over the compared positions. */
    meanKl: number;
    /** Share of the compared positions where both models' most likely next token is the same. */
    top1Agreement: number;
    /** Mean probability the reference gives to tokens the model's vocabulary lacks. */
    meanReferenceMassOutside: number;
  };
}

/** Non-empty paragraphs (separated by blank lines), trimmed, the first `count`. */
export function paragraphsOf(text: string, count: number): string[] {
  return text
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .slice(0, count);
}

/** The prompt of a paragraph: its words up to the last space within the first min(128, half) characters (none if there is no such space). */
export function promptOf(paragraph: string): string | undefined {
  const cut = paragraph.lastIndexOf(' ', Math.min(128, Math.floor(paragraph.length / 2)));
  return cut > 0 ? paragraph.slice(0, cut) : undefined;
}

/** The reference side with what does not depend on the model: its greedy continuations. */
export interface AgreementReference {
  side: AgreementSide;
  paragraphs: string[];
  prompts: string[];
  continuations: string[];
}

/**
 * The paragraphs agreement is measured on and their prompts. A text that gives no prompt is refused
 * (callers check it before any model runs: it failed only after bits per byte, as a NaN agreement).
 */
export function agreementPrompts(text: string, count: number, source = 'the text'): { paragraphs: string[]; prompts: string[] } {
  const paragraphs = paragraphsOf(text, count);
  const prompts = paragraphs.map(promptOf).filter((p): p is string => p !== undefined);
  if (prompts.length === 0)
    throw new CompactError(
      `${source}: no paragraph to measure agreement on (paragraphs are separated by blank lines; a prompt ends at a space in the first half of one)`,
    );
  return { paragraphs, prompts };
}

export async function prepareReference(side: AgreementSide, text: string, options: AgreementOptions): Promise<AgreementReference> {
  const { paragraphs, prompts } = agreementPrompts(text, options.paragraphs);
  const continuations = await greedyContinuations(side, prompts, options, (d, t) => options.onProgress?.('reference', d, t));
  return { side, paragraphs, prompts, continuations };
}

export async function measureAgreement(
  reference: AgreementReference,
  model: AgreementSide,
  options: AgreementOptions,
): Promise<AgreementMetrics> {
  const C = options.continuationChars;
  const continuations = await greedyContinuations(model, reference.prompts, options, (d, t) => options.onProgress?.('greedy', d, t));
  const pairs = reference.prompts.map((prompt, i) => ({ prompt, reference: reference.continuations[i], model: continuations[i] }));
  let total = 0;
  let exact = 0;
  for (const { reference: a, model: b } of pairs) {
    if (a === b) {
      exact++;
      total += 1;
    } else total += commonPrefix(a, b) / C;
  }
  const metrics: AgreementMetrics = {
    paragraphs: reference.paragraphs.length,
    greedy: { prompts: pairs.length, continuationChars: C, meanAgreement: pairs.length > 0 ? total / pairs.length : NaN, exact, pairs },
    kl: await divergence(reference, model, options),
  };
  checkFiniteAgreement(metrics);
  return metrics;
}

/** A metric that is not a number (no coinciding position, NaN logits) is an error, never printed. */
export function checkFiniteAgreement(m: AgreementMetrics): void {
  const values: [string, number][] = [
    ['greedy agreement', m.greedy.meanAgreement],
    ['mean KL', m.kl.meanKl],
    ['top-1 agreement', m.kl.top1Agreement],
    ['reference mass on removed tokens', m.kl.meanReferenceMassOutside],
  ];
  for (const [name, value] of values) {
    if (Number.isFinite(value)) continue;
    // (A text without prompts never gets here: agreementPrompts refuses it.)
    const why =
      m.kl.comparedPositions === 0
        ? 'no position where both tokenizations coincide'
        : "a model's logits are not finite (its weights or config.json make the forward pass produce NaN or infinity)";
    throw new CompactError(`agreement: ${name} is ${value} (not a number): ${why}`);
  }
}

/** Each prompt's greedy continuation as text, cut to C characters (it stops early at a special token). */
async function greedyContinuations(
  side: AgreementSide,
  prompts: string[],
  options: AgreementOptions,
  onProgress: (done: number, total: number) => void,
): Promise<string[]> {
  const C = options.continuationChars;
  const decoder = await Decoder.open(side.ckpt, { threads: options.threads });
  const decode = (ids: number[]) => side.tokenizer.decode(ids, { skip_special_tokens: true });
  const out: string[] = [];
  for (const prompt of prompts) {
    const ids = encode(side.tokenizer, prompt);
    const promptText = decode(ids);
    // Decode prompt + continuation together: some decoders treat a sequence's first token specially.
    const continuation = (generated: number[]) => decode([...ids, ...generated]).slice(promptText.length);
    const generated = await decoder.generate(ids, C, (g) => (side.table.bytes[g[g.length - 1]] ?? 0) === 0 || continuation(g).length >= C);
    out.push(continuation(generated).slice(0, C));
    onProgress(out.length, prompts.length);
  }
  await decoder.release();
  return out;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

async function divergence(reference: AgreementReference, model: AgreementSide, options: AgreementOptions): Promise<AgreementMetrics['kl']> {
  const ref = reference.side;
  const Vr = ref.ckpt.spec.vocabSize;
  const Vm = model.ckpt.spec.vocabSize;
  const compare = distributionComparer(checkSharedTokens(ref, model), Vr);

  let referencePositions = 0;
  let compared = 0;
  let klSum = 0;
  let outsideSum = 0;
  let sameTop1 = 0;
  // Logits of both models for a group of paragraphs: ≤ 2^25 floats (128 MB) per model. The
  // reference's are recomputed for every model compared: kept, they would be T × V floats
  // (~0.4 GB for 64 TinyStories paragraphs, ~3,000 tokens, at V = 32,000); its forward pass is cheap beside decoding.
  // Paragraphs are cut to the window, and the window to both models' context (a short-context model never sees positions it was not trained on).
  const window = Math.min(options.window, modelContext(ref.engine) ?? Infinity, modelContext(model.engine) ?? Infinity);
  const tokensPerGroup = Math.max(window, Math.floor((1 << 25) / Math.max(Vr, Vm)));
  const paragraphs = reference.paragraphs;
  for (let start = 0; start < paragraphs.length;) {
    const refIds: number[][] = [];
    const modelIds: number[][] = [];
    let tokens = 0;
    for (; start < paragraphs.length && (refIds.length === 0 || tokens < tokensPerGroup); start++) {
      refIds.push(encode(ref.tokenizer, paragraphs[start]).slice(0, window));
      modelIds.push(encode(model.tokenizer, paragraphs[start]).slice(0, window));
      tokens += Math.max(refIds[refIds.length - 1].length, modelIds[modelIds.length - 1].length);
    }
    const refLogits = (await ref.engine.forward(refIds, { logits: true })).logits!; // per paragraph [Tr, Vr]
    const modelLogits = (await model.engine.forward(modelIds, { logits: true })).logits!; // per paragraph [Tm, Vm]
    for (let p = 0; p < refIds.length; p++) {
      for (const [i, j] of coincidingPositions(ref.table, refIds[p], model.table, modelIds[p])) {
        const at = compare(refLogits[p].subarray((i - 1) * Vr, i * Vr), modelLogits[p].subarray((j - 1) * Vm, j * Vm));
        klSum += at.kl;
        outsideSum += at.outside;
        if (at.sameTop1) sameTop1++;
        compared++;
      }
      referencePositions += refIds[p].filter((id, i) => i > 0 && ref.table.bytes[id] > 0).length;
    }
    options.onProgress?.('kl', start, paragraphs.length);
  }
  return {
    referencePositions,
    comparedPositions: compared,
    meanKl: klSum / compared,
    top1Agreement: sameTop1 / compared,
    meanReferenceMassOutside: outsideSum / compared,
  };
}

/**
 * For each model id, the reference id of the same token (−1: none, or beyond the reference's
 * logits). Throws unless the reference has at least half of the model's tokens.
 */
export function checkSharedTokens(reference: AgreementSide, model: AgreementSide): Int32Array {
  const Vr = reference.ckpt.spec.vocabSize;
  const modelToRef = mapIds(model.table, reference.table, model.ckpt.spec.vocabSize).map((r) => (r < Vr ? r : -1));
  const shared = modelToRef.filter((r) => r >= 0).length;
  const modelTokens = model.table.strings.filter((s) => s !== undefined).length;
  if (shared < 0.5 * modelTokens) {
    throw new CompactError(
      `${reference.ckpt.dir}: its tokenizer has only ${shared} of the ${modelTokens} tokens of ${model.ckpt.dir}; --reference must be the model this one was pruned from`,
    );
  }
  return modelToRef;
}

/**
 * Pairs (i, j): reference token i and model token j start at the same byte of the text and are the
 * same token string, and both have a context (i, j ≥ 1). The prediction of token i comes from
 * logits row i − 1. Tokens of no text (BOS) are never predicted targets.
 */
export function coincidingPositions(
  refTable: TokenTable,
  refIds: number[],
  modelTable: TokenTable,
  modelIds: number[],
): [number, number][] {
  const cm = cumulativeBytes(modelTable, modelIds);
  const startsAt = new Map<number, number>(); // byte offset → last model token starting there
  for (let j = 0; j < modelIds.length; j++) startsAt.set(cm[j], j);
  const cr = cumulativeBytes(refTable, refIds);
  const pairs: [number, number][] = [];
  for (let i = 1; i < refIds.length; i++) {
    if (refTable.bytes[refIds[i]] === 0) continue;
    const j = startsAt.get(cr[i]);
    if (j !== undefined && j >= 1 && modelTable.strings[modelIds[j]] === refTable.strings[refIds[i]]) pairs.push([i, j]);
  }
  return pairs;
}

/** Two next-token distributions at one position compared (see distributionComparer). */
export interface PositionComparison {
  kl: number;
  /** The reference's probability on tokens the model lacks. */
  outside: number;
  /** Both put their highest probability on the same shared token. */
  sameTop1: boolean;
}

/**
 * For logits rows [Vr] and [Vm]: KL(P̃_ref ‖ P̃_model) over the tokens of the model that the
 * reference also has (each side renormalised over them), the reference's mass outside them, and
 * whether the two argmaxes over those tokens are the same token (first model id on ties).
 */
export function distributionComparer(
  modelToRef: Int32Array,
  Vr: number,
): (refRow: Float32Array, modelRow: Float32Array) => PositionComparison {
  const covered = new Uint8Array(Vr); // reference ids the model has
  for (const r of modelToRef) if (r >= 0) covered[r] = 1;
  return (refRow, modelRow) => compareAt(refRow, modelRow, modelToRef, covered);
}

function compareAt(refRow: Float32Array, modelRow: Float32Array, modelToRef: Int32Array, covered: Uint8Array): PositionComparison {
  const refLse = logSumExp(refRow);
  let modelMax = -Infinity;
  let modelTop = -1;
  let refTop = -1;
  for (let m = 0; m < modelToRef.length; m++) {
    if (modelToRef[m] < 0) continue;
    if (modelRow[m] > modelMax) [modelMax, modelTop] = [modelRow[m], m];
    if (refTop < 0 || refRow[modelToRef[m]] > refRow[modelToRef[refTop]]) refTop = m;
  }
  let inside = 0;
  let outside = 0;
  for (let r = 0; r < refRow.length; r++) {
    const p = Math.exp(refRow[r] - refLse);
    if (covered[r]) inside += p;
    else outside += p;
  }
  let modelSum = 0;
  for (let m = 0; m < modelToRef.length; m++) if (modelToRef[m] >= 0) modelSum += Math.exp(modelRow[m] - modelMax);
  const modelLse = modelMax + Math.log(modelSum);
  const logInside = Math.log(inside);
  let kl = 0;
  for (let m = 0; m < modelToRef.length; m++) {
    const r = modelToRef[m];
    if (r < 0) continue;
    const logP = refRow[r] - refLse - logInside;
    kl += Math.exp(logP) * (logP - (modelRow[m] - modelLse));
  }
  return { kl: Math.max(0, kl), outside, sameTop1: modelTop === refTop };
}

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return max + Math.log(sum);
}
