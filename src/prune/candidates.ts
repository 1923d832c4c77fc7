/**
 * The splits a prune may write: one (a fixed budget), or for --auto a grid of vocabulary shares
 * × vocabulary modes of the same --ratio, and the refining splits near the grid's best. Every
 * budget is checked here, before any long work.
 */
import { check } from '../util/errors.js';
import type { KeepMode } from '../vocab/keep-set.js';
import { type Budget, channelParams, defaultRoundTo, solveBudget, vocabRowParams } from './budget.js';
import { METHOD_TRAITS } from './methods.js';
import type { BudgetOptions, SearchOptions, VocabularyOptions } from './options.js';
import type { AutoCandidate } from './report.js';
import type { Source } from './source.js';

/** Vocabulary shares --auto tries (clipped to what the vocabulary can give). */
export const AUTO_SHARES = [0, 0.1, 0.25, 0.5, 0.75, 1];

/** One vocabulary/FFN split to write: its budget, vocabulary mode and (for --auto) its share. */
export interface Candidate {
  budget: Budget;
  mode: KeepMode;
  share: number | null;
  pass: 'grid' | 'refine';
}

/** The splits to write: one, or for --auto one per vocabulary share × vocabulary mode (the first pass's grid). */
export function planCandidates(src: Source, o: BudgetOptions & VocabularyOptions & SearchOptions): Candidate[] {
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
    // Both shape a --ratio budget; with V′ and I′ given they were silently ignored.
    check(o.vocabShare == null, '--vocab-share splits the budget of --ratio r; with --vocab/--ffn the split is given (drop --vocab-share)');
    check(o.roundTo == null, '--round-to rounds the I′ that --ratio r solves for; with --ffn give I′ itself (drop --round-to)');
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

/**
 * The second pass of --auto: shares halfway between the best grid split and its neighbours
 * (same mode), skipping any that solves to a (V′, I′) already tried.
 */
export function refineCandidates(
  src: Source,
  o: BudgetOptions,
  tried: Candidate[],
  best: Pick<AutoCandidate, 'vocabShare' | 'vocabMode'>,
): Candidate[] {
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

function roundToOf(src: Source, o: BudgetOptions): number {
  const I = src.ckpt.spec.intermediateSize;
  // Larger, it made the reachable ratio negative ("can give at most -368.509 of the parameters").
  check(o.roundTo == null || o.roundTo <= I, `--round-to must be at most the FFN width I = ${I}, got ${o.roundTo}`);
  return o.roundTo ?? defaultRoundTo(I);
}

/** The (V′, I′) that removes --ratio of the parameters with `vocabShare` of them taken from the vocabulary. */
function solveShare(src: Source, o: BudgetOptions, vocabShare: number | undefined): Budget {
  return solveBudget(src.ckpt.spec, {
    ratio: o.ratio!,
    vocabShare,
    total: src.before.total,
    minVocab: src.alwaysKept,
    roundTo: roundToOf(src, o),
  });
}

/** Vocabulary shares --ratio can take: the vocabulary (or the FFN) cannot give more than it has. */
function shareRange(src: Source, o: BudgetOptions): { min: number; max: number } {
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
function autoModes(src: Source, o: VocabularyOptions & SearchOptions): KeepMode[] {
  const modes = o.autoModes ?? [o.vocabMode];
  check(modes.length > 0, '--auto needs at least one vocabulary mode');
  return src.files.tokenizer == null ? ['rank'] : [...new Set(modes)];
}
