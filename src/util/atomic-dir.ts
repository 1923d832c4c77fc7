/**
 * Writes an output directory atomically: everything goes to a hidden sibling temp dir that is
 * renamed into place only when complete. A failure or an interrupt removes the temp dir, so no
 * half-written output ever exists under the requested name. Replacing an output (--force) moves
 * the old one aside, renames the new one in, and only then deletes the old one: a kill between
 * the two renames leaves the old one under a hidden name, which the next run puts back.
 * Temp dirs are named `.<out>.compact-<kind>-<pid>[-k]`, so a run killed with SIGKILL (no handler
 * runs) leaves something recognisable: the next run writing the same output sweeps what dead
 * processes left.
 */
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { check } from './errors.js';
import { alive } from './scratch-dir.js';

export interface AtomicDirOptions {
  /** Replace an existing output directory. */
  force?: boolean;
  /** Directories the output must not be inside of (nor contain): the inputs. */
  inputs?: string[];
}

/** Hidden sibling of `out` for this process: `.<name>.compact-<kind>-<pid>[-suffix]`. */
export function scratchPath(out: string, kind: 'tmp' | 'old' | 'auto', suffix?: string | number): string {
  return join(dirname(resolve(out)), `.${basename(resolve(out))}.compact-${kind}-${process.pid}${suffix == null ? '' : `-${suffix}`}`);
}

// ── removal on SIGINT / SIGTERM: one handler for every path registered, while any is ──
const pending = new Set<string>();
const onSignal = (signal: NodeJS.Signals): void => {
  for (const path of pending) rmSync(path, { recursive: true, force: true });
  process.stderr.write(`compact: interrupted (${signal}); nothing was written\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
};

/** Removes `path` if the process is interrupted before the returned function is called. */
export function removeOnInterrupt(path: string): () => void {
  if (pending.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  pending.add(path);
  return () => {
    pending.delete(path);
    if (pending.size === 0) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };
}

/**
 * Removes what killed runs left beside `out` (temp dirs, --auto candidates, and their own temp
 * dirs), and puts back an output that a killed --force left aside with nothing in its place.
 */
export function sweepStale(out: string): void {
  const parent = dirname(out);
  if (!existsSync(parent)) return;
  const name = basename(out).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^\\.\\.?${name}\\.compact-(tmp|old|auto)-(\\d+)`);
  for (const entry of readdirSync(parent).sort()) {
    const m = pattern.exec(entry);
    if (!m || Number(m[2]) === process.pid || alive(Number(m[2]))) continue;
    const path = join(parent, entry);
    if (m[1] === 'old' && !entry.startsWith('..') && !existsSync(out)) renameSync(path, out);
    else rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Refuses an empty output path, and one under a file (its nearest existing ancestor is not a
 * directory): creating it would fail with ENOTDIR only once the output is written.
 */
export function checkOutputParent(outPath: string): void {
  check(outPath.trim() !== '', 'the output path is empty');
  let dir = dirname(resolve(outPath));
  while (!existsSync(dir)) dir = dirname(dir);
  const shown = isAbsolute(outPath) ? dir : relative(process.cwd(), dir) || '.';
  check(statSync(dir).isDirectory(), `output ${outPath}: ${shown} is not a directory`);
}

/**
 * What writeDirAtomic refuses (an output under a file, inside or around an input, or an existing
 * one that is not a directory or without force), checked on its own so a long run can refuse before its work.
 */
export function checkOutputDir(outDir: string, options: AtomicDirOptions): void {
  checkOutputParent(outDir);
  const out = resolve(outDir);
  for (const input of options.inputs ?? []) {
    const inp = existsSync(input) ? realpathSync(input) : resolve(input);
    const outReal = join(existsSync(dirname(out)) ? realpathSync(dirname(out)) : dirname(out), basename(out));
    check(
      outReal !== inp && !outReal.startsWith(inp + sep),
      `output ${outDir} is inside the input ${input}; choose a directory outside it`,
    );
    check(!inp.startsWith(outReal + sep), `output ${outDir} contains the input ${input}; choose another directory`);
  }
  sweepStale(out); // may put back an output a killed --force left aside: the existence check comes after it
  check(!existsSync(out) || statSync(out).isDirectory(), `output ${outDir} exists and is not a directory`); // --force replaces directories only
  check(!existsSync(out) || options.force, `output ${outDir} already exists; pass --force to replace it`);
}

export async function writeDirAtomic<T>(outDir: string, options: AtomicDirOptions, write: (tmpDir: string) => Promise<T> | T): Promise<T> {
  checkOutputDir(outDir, options);
  const out = resolve(outDir);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = scratchPath(out, 'tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const release = removeOnInterrupt(tmp);
  try {
    const result = await write(tmp);
    if (existsSync(out)) {
      const old = scratchPath(out, 'old');
      rmSync(old, { recursive: true, force: true });
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, out);
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    release();
  }
}
