/** Paths of the assets bundled in the repo, and readers for golden files. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const STORIES = `${ROOT}models/stories260K/`;
export const CALIBRATION_TEXT = `${ROOT}data/tinystories/calibration_90pct.txt`;
export const HELDOUT_TEXT = `${ROOT}data/tinystories/heldout_10pct.txt`;

/** shared/data/tinystories/tinystories_validation_head.txt, rebuilt from its two bundled parts. */
export function tinyStoriesValidationHead(): string {
  return `${readFileSync(CALIBRATION_TEXT, 'utf8')}\n\n${readFileSync(HELDOUT_TEXT, 'utf8')}`;
}
export const FAMILY_FIXTURES = `${ROOT}test/fixtures/families/`;

export function readF32(file: string): Float32Array {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
