/**
 * The project's shared assets (real models, benchmark data) for benchmarks and studies: found at
 * $COMPACT_SHARED or ../shared beside the repository. A fresh clone has none, so every use goes
 * through here and says exactly what is missing.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const SHARED_DIR = resolve(process.env.COMPACT_SHARED ?? join(ROOT, '..', 'shared'));

/** Path of `relative` inside the shared assets, or a clear error naming what is missing. */
export function sharedPath(relative: string): string {
  const path = join(SHARED_DIR, relative);
  if (!existsSync(path)) {
    throw new Error(`missing shared asset ${relative}: expected at ${path} (set COMPACT_SHARED to the folder holding models/ and data/)`);
  }
  return path;
}
