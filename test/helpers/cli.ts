/** Runs the CLI from source in a child process, as a user would run `compact …`. */
import { spawnSync } from 'node:child_process';
import { ROOT } from './fixtures.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${ROOT}test/helpers/cli-entry.ts`, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
