/**
 * Writes one output file atomically: the bytes go to a hidden temp file beside it, renamed over the
 * requested name only when complete (so replacing an existing file never loses both). A failure or
 * an interrupt removes the temp file.
 */
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { checkOutputParent, sweepStale } from './atomic-dir.js';
import { check } from './errors.js';

export interface AtomicFileOptions {
  force?: boolean;
  /** Directories the output must not be inside of: the inputs. */
  inputs?: string[];
}

/** writeFileAtomic's refusals of an existing `outFile`, for a caller to make before long work. */
export function checkOutputFile(outFile: string, force: boolean | undefined): void {
  checkOutputParent(outFile);
  const out = resolve(outFile);
  check(!existsSync(out) || statSync(out).isFile(), `output ${outFile} exists and is not a regular file`);
  check(!existsSync(out) || force, `output ${outFile} already exists; pass --force to replace it`);
}

export async function writeFileAtomic<T>(outFile: string, options: AtomicFileOptions, write: (fd: number) => Promise<T> | T): Promise<T> {
  const out = resolve(outFile);
  checkOutputFile(outFile, options.force);
  mkdirSync(dirname(out), { recursive: true });
  const outReal = join(realpathSync(dirname(out)), basename(out));
  for (const input of options.inputs ?? []) {
    const inp = existsSync(input) ? realpathSync(input) : resolve(input);
    check(!outReal.startsWith(inp + sep), `output ${outFile} is inside the input ${input}; choose a path outside it`);
  }
  sweepStale(out); // temp files of runs killed outright (no handler ran)
  const tmp = join(dirname(out), `.${basename(out)}.compact-tmp-${process.pid}`);
  const cleanup = () => rmSync(tmp, { force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    const result = await write(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, out);
    return result;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    cleanup();
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
