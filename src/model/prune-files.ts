/** The files `compact prune` adds to the checkpoints it writes, read back by `eval` (pruning time) and the tests. */

/** What was pruned and how (reproducible: same inputs, same bytes). */
export const MANIFEST_FILE = 'compact.json';
/** Wall time of the prune that wrote the directory (not reproducible, so kept out of the manifest). */
export const TIMING_FILE = 'compact-timing.json';

/** Seconds by phase of one prune. */
export interface PruneSeconds {
  read: number;
  calibrate: number;
  score: number;
  search: number;
  write: number;
  total: number;
}

export interface PruneTiming {
  seconds: PruneSeconds;
  threads: number;
  cpu: string;
  node: string;
}
