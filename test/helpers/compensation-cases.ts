/**
 * The compensation cases of test/fixtures/compensation/cases.json, pruned exactly as the oracle's
 * inputs were (tools/reference/write_compensation_cases.ts) and as the tests repeat them.
 * Calibration: windows of the held-out TinyStories text for models with a tokenizer, seeded
 * random ids for the tokenizer-less family fixtures.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { buildCalibration } from '../../src/prune/calibration.js';
import { prune, type PruneOptions, type PruneReport } from '../../src/prune/prune.js';
import { seededRandom } from '../../src/prune/random.js';
import { BLOCK } from '../../src/prune/compensate.js';
import type { Selection } from '../../src/prune/greedy-removal.js';
import { GRAM_BLOCK } from '../../src/engine/gram-layout.js';
import { HELDOUT_TEXT, ROOT } from './fixtures.js';

// Small blocks, so these small layers go through the blocked paths: the Gram's upper block triangle
// in the layer graph (I = 48 and 172: 3 and 11 blocks) and the Cholesky's panel, trailing update and
// solves on ONNX Runtime. Set here, so the tests and the oracle's inputs (write_compensation_cases.ts)
// round alike: a bf16 checkpoint written with other blocks differs in a few last bits.
BLOCK.size = 32;
GRAM_BLOCK.size = 16;

export interface CompensationCase {
  name: string;
  source: string;
  vocab?: number;
  ffn: number;
  samples: number;
  seqLen: number;
  damp?: number;
  /** How compensation chooses the removed channels (default: the library's, act2). */
  selection?: Selection;
}

const sourceOf = (c: CompensationCase): string => (isAbsolute(c.source) ? c.source : join(ROOT, c.source));

export function caseWindows(c: CompensationCase): number[][] {
  const source = sourceOf(c);
  if (existsSync(join(source, 'tokenizer.json'))) {
    return buildCalibration(loadTokenizer(source), [HELDOUT_TEXT], { samples: c.samples, seqLen: c.seqLen, seed: 0, field: 'text' })
      .windows;
  }
  const V = openCheckpoint(source).spec.vocabSize;
  const random = seededRandom(7);
  return Array.from({ length: c.samples }, () => Array.from({ length: c.seqLen }, () => Math.floor(random() * V)));
}

export async function pruneCompensationCase(
  c: CompensationCase,
  out: string,
  compensate = true,
  extra: Partial<PruneOptions> = {},
): Promise<{ report: PruneReport; windows: number[][] }> {
  const windows = caseWindows(c);
  const report = await prune(sourceOf(c), out, {
    method: 'compact',
    vocab: c.vocab,
    ffn: c.ffn,
    vocabMode: 'rank',
    weighting: 'binary',
    criterion: 'act2',
    calib: [],
    calibWindows: windows,
    calibField: 'text',
    samples: c.samples,
    seqLen: c.seqLen,
    seed: 0,
    compensate,
    damp: c.damp,
    selection: c.selection,
    force: true,
    threads: 2,
    commandLine: `compensation case ${c.name}`,
    version: 'test',
    ...extra,
  });
  return { report, windows };
}
