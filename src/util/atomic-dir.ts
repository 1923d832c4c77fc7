/**
 * Writes an output directory atomically: everything goes to a hidden sibling temp dir that is
 * renamed into place only when complete. A failure or an interrupt removes the temp dir, so no
 * half-written output ever exists under the requested name.
 */
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { check } from './errors.js';

export interface AtomicDirOptions {
  /** Replace an existing output directory. */
  force?: boolean;
  /** Directories the output must not be inside of (nor contain): the inputs. */
  inputs?: string[];
}

export async function writeDirAtomic<T>(outDir: string, options: AtomicDirOptions, write: (tmpDir: string) => Promise<T> | T): Promise<T> {
  const out = resolve(outDir);
  for (const input of options.inputs ?? []) {
    const inp = existsSync(input) ? realpathSync(input) : resolve(input);
    const outReal = join(existsSync(dirname(out)) ? realpathSync(dirname(out)) : dirname(out), basename(out));
    check(outReal !== inp && !outReal.startsWith(inp + sep), `output ${outDir} is inside the input ${input}; choose a directory outside it`);
    check(!inp.startsWith(outReal + sep), `output ${outDir} contains the input ${input}; choose another directory`);
  }
  check(!existsSync(out) || options.force, `output ${outDir} already exists; pass --force to replace it`);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.compact-tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await write(tmp);
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return result;
  } catch (e) {
    cleanup();
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
