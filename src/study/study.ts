/**
 * A grid of methods × ratios on one model and calibration set: each cell is pruned with the same
 * pipeline, measured in bits per byte on each evaluation text and in agreement with the dense
 * model, then deleted (only numbers stay).
 * An unreachable cell (e.g. a vocabulary that cannot give that much) is recorded with the reason.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { measureAgreement, openAgreementSide, prepareReference, type AgreementOptions, type AgreementSide } from '../eval/agreement.js';
import { evaluateText } from '../eval/text-metrics.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { encode } from '../model/tokenizer.js';
import { type PruneSettings, withPruneDefaults } from '../defaults.js';
import { prune } from '../prune/prune.js';
import { removeOnInterrupt } from '../util/atomic-dir.js';
import { CompactError } from '../util/errors.js';
import { createScratchDir } from '../util/scratch-dir.js';
import { STUDY_METHODS } from './methods.js';

export interface StudyOptions {
  methods: string[];
  ratios: number[];
  /** Texts measured in bits per byte (name → contents). */
  evalTexts: { name: string; text: string }[];
  /** Agreement with the dense model, measured on the first evaluation text (none: not measured). */
  agreement?: Pick<AgreementOptions, 'paragraphs' | 'continuationChars' | 'window'>;
  /** Prune options shared by every cell (calibration, seed, threads…); the rest are compact prune's defaults. */
  base: Omit<PruneSettings, 'method' | 'ratio' | 'commandLine'> & { threads?: number };
  version: string;
  /** Scratch space for the pruned checkpoints (each removed after measuring). */
  workDir: string;
  /**
   * Progress by stage: 'dense model' (the reference continuations, then the dense model's own
   * numbers), then 'cells' (`note` names the cell being worked on; `done` counts finished cells).
   */
  onProgress?: (stage: 'dense model' | 'cells', done: number, total: number, note?: string) => void;
}

export interface StudyRow {
  method: string;
  /** Target ratio (0 for the dense model). */
  ratio: number;
  removedRatio: number | null;
  vocab: number | null;
  ffn: number | null;
  layers: number | null;
  parameters: ParamCount | null;
  bitsPerByte: Record<string, number>;
  /** Against the dense model on the first evaluation text (docs/agreement.md). */
  agreement: { greedy: number; top1: number; kl: number; comparedShare: number } | null;
  pruneSeconds: number | null;
  /** Why the cell could not be produced (unreachable budget…). */
  error: string | null;
}

/** The row of a cell whose target could not be reached: every measurement null, the reason in `error`. */
export function failedRow(method: string, ratio: number, error: string): StudyRow {
  return {
    method,
    ratio,
    removedRatio: null,
    vocab: null,
    ffn: null,
    layers: null,
    parameters: null,
    bitsPerByte: {},
    agreement: null,
    pruneSeconds: null,
    error,
  };
}

export async function runStudy(dir: string, o: StudyOptions): Promise<StudyRow[]> {
  const side = (modelDir: string) => openAgreementSide(modelDir, o.base.threads);
  const agreementOptions = o.agreement && { ...o.agreement, threads: o.base.threads };
  const denseSide = side(dir);
  const denseSteps = agreementOptions ? 2 : 1;
  o.onProgress?.('dense model', 0, denseSteps);
  const reference = agreementOptions && (await prepareReference(denseSide, o.evalTexts[0].text, agreementOptions));
  if (reference) o.onProgress?.('dense model', 1, denseSteps);
  const measure = async (model: AgreementSide): Promise<Pick<StudyRow, 'bitsPerByte' | 'agreement'>> => {
    const bitsPerByte: Record<string, number> = {};
    for (const { name, text } of o.evalTexts)
      bitsPerByte[name] = (await evaluateText(model.engine, encode(model.tokenizer, text), Buffer.byteLength(text, 'utf8'))).bitsPerByte;
    let agreement: StudyRow['agreement'] = null;
    if (reference && agreementOptions) {
      const a = await measureAgreement(reference, model, agreementOptions);
      agreement = {
        greedy: a.greedy.meanAgreement,
        top1: a.kl.top1Agreement,
        kl: a.kl.meanKl,
        comparedShare: a.kl.comparedPositions / a.kl.referencePositions,
      };
    }
    return { bitsPerByte, agreement };
  };
  const ckpt = denseSide.ckpt;
  const dense: StudyRow = {
    method: 'dense',
    ratio: 0,
    removedRatio: 0,
    vocab: ckpt.spec.vocabSize,
    ffn: ckpt.spec.intermediateSize,
    layers: ckpt.spec.numLayers,
    parameters: countParams(ckpt),
    ...(await measure(denseSide)),
    pruneSeconds: null,
    error: null,
  };
  o.onProgress?.('dense model', denseSteps, denseSteps);
  const rows: StudyRow[] = [dense];
  // a random name with an owner file; what killed runs left is swept first (util/scratch-dir.ts)
  const scratch = createScratchDir(o.workDir, '.compact-study-');
  const release = removeOnInterrupt(scratch); // Ctrl-C left it behind
  const cells = o.methods.flatMap((m) => o.ratios.map((r) => [m, r] as const));
  try {
    for (const [index, [name, ratio]] of cells.entries()) {
      const method = STUDY_METHODS.find((m) => m.name === name)!;
      const out = join(scratch, `${name}-${ratio}`);
      o.onProgress?.('cells', index, cells.length, `${name} @ ${ratio}`);
      try {
        const options = withPruneDefaults({ ...o.base, ...method.options, ratio });
        const report = await prune(dir, out, { ...options, commandLine: `compact compare (${name}, ratio ${ratio})`, version: o.version });
        const model = side(out);
        rows.push({
          method: name,
          ratio,
          removedRatio: report.parameters.removedRatio,
          vocab: report.vocab.after,
          ffn: report.ffn.after,
          layers: report.layers.after,
          parameters: report.parameters.after,
          ...(await measure(model)),
          pruneSeconds: report.seconds.total,
          error: null,
        });
        await model.engine.release();
      } catch (e) {
        if (!(e instanceof CompactError)) throw e;
        rows.push(failedRow(name, ratio, e.message));
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
    o.onProgress?.('cells', cells.length, cells.length);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    release();
    await denseSide.engine.release();
  }
  return rows;
}
