/**
 * Scoring: every candidate split's kept vocabulary and FFN channel scores, from one source —
 * scores files (--scores-in), a calibration pass (statistics.ts; with compensation it also solves
 * each candidate's down_proj), or the weights alone (magnitude, random). --auto adds its refining
 * splits later; each batch is scored by one pass.
 */
import { check } from '../util/errors.js';
import type { KeepMode } from '../vocab/keep-set.js';
import type { Calibration } from './calibration.js';
import type { Candidate } from './candidates.js';
import type { CompensationPass } from './compensation.js';
import { METHOD_TRAITS } from './methods.js';
import type { PruneOptions } from './options.js';
import type { CompensationReport } from './report.js';
import { checkScoresFit, scoresRecord } from './scores-file.js';
import { type ChannelScores, type ExactScores, magnitudeScores, randomScores, readScores, sumScores, type Weighting } from './scores.js';
import type { Source } from './source.js';
import { activationScoresFor } from './statistics.js';
import { keepFor, keepHash, sameOnWindows, type TokenFrequencies } from './vocabulary.js';

/** How the candidates' channels are scored, decided once per prune. */
export interface ScoringSetup {
  calibration: Calibration | null;
  /** Whether a calibration pass runs (ShortGPT, or channels pruned by act² without --scores-in). */
  needsActivations: boolean;
  ffnPruned: boolean;
  weighting: Weighting;
  /** What frequency vocabularies are chosen by. */
  frequencies: TokenFrequencies | undefined;
  compensation: CompensationPass | null;
}

/** The candidates scored so far; index k is the same candidate in every array. */
export class ScoredCandidates {
  readonly candidates: Candidate[] = [];
  /** Kept old ids per candidate. */
  readonly keeps: number[][] = [];
  /** Scores per candidate (one set shared by all when they come from a file or the weights; none when no channel is pruned). */
  readonly scores: ChannelScores[] = [];
  /** Kept channels per candidate and layer where compensation chose them (null: the top scores). */
  readonly channels: (number[][] | null)[] = [];
  /** Compensation per candidate (null: not compensated). */
  readonly compensation: (CompensationReport | null)[] = [];
  /** Per candidate: its exact sums, when calibrated here. */
  private readonly exactOf: ((() => ExactScores) | null)[] = [];

  constructor(
    private readonly src: Source,
    private readonly o: PruneOptions,
    private readonly setup: ScoringSetup,
  ) {}

  async add(batch: Candidate[]): Promise<void> {
    const { src, o, setup } = this;
    const first = this.candidates.length;
    this.candidates.push(...batch);
    let batchKeeps = batch.map((c) => this.keepOf(c.budget.vocab, c.mode));
    let batchScores: ChannelScores[];
    if (o.scoresIn?.length) {
      check(!o.auto, '--auto computes its own scores; drop --scores-in');
      const summed = sumScores(o.scoresIn, o.scoresIn.map(readScores));
      const criterion = METHOD_TRAITS[o.method].dropsLayers ? null : o.criterion;
      checkScoresFit(summed, o.scoresIn[0], src.ckpt, criterion, setup.weighting, keepHash(batchKeeps[0]));
      batchScores = [summed];
    } else if (setup.needsActivations) {
      const comp = setup.compensation;
      const calibration = setup.calibration!;
      const runPass = (keeps: number[][], expected?: Float64Array) =>
        activationScoresFor(
          src,
          calibration,
          batch,
          keeps,
          setup.weighting,
          o,
          comp ? { store: comp.store, gemm: comp.gemm, first } : null,
          expected,
        );
      // Frequency vocabularies whose expected counts this pass sums: their keep sets until then fill by id.
      const frequencies = setup.frequencies;
      const expected = frequencies && !frequencies.expected ? new Float64Array(src.ckpt.spec.vocabSize) : undefined;
      let pass = await runPass(batchKeeps, expected);
      if (expected) {
        frequencies!.expected = expected;
        const final = batch.map((c) => this.keepOf(c.budget.vocab, c.mode));
        // Almost always the windows' tokens are kept alike; else the statistics are counted again.
        if (!sameOnWindows(batchKeeps, final, calibration.windows, src.ckpt.spec.vocabSize)) pass = await runPass(final);
        else pass.scores = pass.scores.map((s, k) => (s.keptVocabSha256 ? { ...s, keptVocabSha256: keepHash(final[k]) } : s));
        batchKeeps = final;
      }
      batchScores = pass.scores;
      this.exactOf.push(...pass.exact);
      this.compensation.push(...pass.compensation);
      this.channels.push(...pass.channels);
    } else if (setup.ffnPruned) {
      const spec = src.ckpt.spec;
      const layers = o.criterion === 'magnitude' ? magnitudeScores(src.ckpt) : randomScores(spec.numLayers, spec.intermediateSize, o.seed);
      batchScores = [scoresRecord(src, o.criterion, null, null, null, { layers, influence: null, weightTotal: 0, exact: null })];
    } else batchScores = [];
    this.keeps.push(...batchKeeps);
    // One set per candidate, or one set shared by all.
    batch.forEach((_, i) => this.scores.push(batchScores[Math.min(i, batchScores.length - 1)]));
    while (this.exactOf.length < this.scores.length) this.exactOf.push(null);
    while (this.compensation.length < this.candidates.length) this.compensation.push(null);
    while (this.channels.length < this.candidates.length) this.channels.push(null);
  }

  /** Candidate k's scores with their exact sums, as a scores file holds them. */
  withExact(k: number): ChannelScores {
    const f = this.exactOf[k];
    return f && this.scores[k].exact === null ? { ...this.scores[k], exact: f() } : this.scores[k];
  }

  private keepOf(vocab: number, mode: KeepMode): number[] {
    return keepFor(this.src, vocab, mode, this.o, this.setup.frequencies);
  }
}
