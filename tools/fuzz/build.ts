/**
 * A private build of one commit (`git archive` of src/, bin/, package.json and tsconfig.json, then
 * tsc) under .tmp/, so a long run tests exactly that commit: not the working tree's unfinished
 * edits, and not a dist/ that someone rebuilds halfway through.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { ROOT } from './run-cli.js';

export function buildCommit(ref: string): string {
  const sha = execFileSync('git', ['rev-parse', '--short=12', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = `${ROOT}.tmp/fuzz-build-${sha}/`;
  if (existsSync(`${dir}dist/cli/main.js`)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['archive', sha, 'src', 'bin', 'package.json', 'tsconfig.json'], { cwd: ROOT, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  try {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  } catch (e) {
    // tsc emits despite type errors; a commit with some is still tested (the errors were printed above)
    if (!existsSync(`${dir}dist/cli/main.js`)) throw e;
  }
  return dir;
}
