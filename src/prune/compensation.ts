/**
 * Whether a prune compensates down_proj (compensate.ts solves it), and what the compensating
 * pass holds while it runs: the solver's sessions and the store of solved weights.
 */
import { removeOnInterrupt, scratchPath } from '../util/atomic-dir.js';
import { check } from '../util/errors.js';
import type { Candidate } from './candidates.js';
import { Gemm } from './compensate.js';
import { CompensatedStore } from './compensated-store.js';
import { METHOD_TRAITS } from './methods.js';
import type { BudgetOptions, CompensationOptions, ScoringOptions } from './options.js';
import type { Source } from './source.js';

/**
 * Whether down_proj is compensated: --compensate is refused where it cannot apply, 'auto' applies
 * wherever it can; --selection greedy (channels chosen for compensation) is refused without it.
 */
export function compensationApplies(
  src: Source,
  o: Pick<BudgetOptions, 'method'> & CompensationOptions & ScoringOptions,
  candidates: Candidate[],
): boolean {
  if (!o.compensate) {
    check(
      o.selection !== 'greedy',
      '--selection greedy chooses the channels that compensation refits, and compensation is off (--no-compensate)',
    );
    return false;
  }
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
  check(o.selection !== 'greedy', `--selection greedy needs compensation: ${why}`);
  return false;
}

/** The compensated weights of every candidate (a scratch file beside the output past 16 MiB) and the solver. */
export interface CompensationPass {
  store: CompensatedStore;
  gemm: Gemm;
  /** Removes the scratch file and releases the solver. */
  close(): Promise<void>;
}

export function openCompensation(output: string, threads: number | undefined): CompensationPass {
  const store = new CompensatedStore(scratchPath(output, 'auto', 'compensated'));
  const releaseStore = removeOnInterrupt(scratchPath(output, 'auto', 'compensated'));
  const gemm = new Gemm(threads);
  return {
    store,
    gemm,
    async close() {
      store.close();
      releaseStore();
      await gemm.release();
    },
  };
}
