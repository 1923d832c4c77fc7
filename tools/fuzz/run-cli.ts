/**
 * Runs the CLI as a user would, in a child process bounded in time and memory: a V8 heap limit,
 * and the resident size polled from /proc (native allocations are not under the heap limit).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunLimits {
  timeoutMs: number;
  /** Resident set size at which the run is killed and counted as a memory blow-up. */
  maxRssMiB: number;
  /** V8 heap limit (--max-old-space-size). */
  heapMiB: number;
}

/** A hang is a run past 2 minutes: a normal one takes seconds, but a loaded machine at nice 10 stretches them many times over. */
export const DEFAULT_LIMITS: RunLimits = { timeoutMs: 120_000, maxRssMiB: 1536, heapMiB: 1024 };

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  overMemory: boolean;
  peakRssMiB: number;
  ms: number;
}

/** `dist`: the built CLI (`node bin/compact.js`); `src`: the TypeScript sources through tsx. */
export type CliFlavour = 'dist' | 'src';

/**
 * Where the built CLI is: the repository, or a private build (`tsc --outDir B/dist` plus B/bin and
 * B/package.json) so that a long run is not changed under it by someone rebuilding dist/.
 */
let buildRoot = ROOT;
export function setBuildRoot(dir: string): void {
  buildRoot = dir.endsWith('/') ? dir : `${dir}/`;
}
export function getBuildRoot(): string {
  return buildRoot;
}

export function cliArgv(flavour: CliFlavour, heapMiB: number): string[] {
  const heap = `--max-old-space-size=${heapMiB}`;
  return flavour === 'dist' ? [heap, `${buildRoot}bin/compact.js`] : [heap, '--import', 'tsx', `${ROOT}test/helpers/cli-entry.ts`];
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const MAX_CAPTURE = 64 * 1024;

export function runCompact(
  args: string[],
  o: { flavour: CliFlavour; limits: RunLimits; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cliArgv(o.flavour, o.limits.heapMiB), ...args], {
      cwd: o.cwd ?? ROOT,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString('utf8')).slice(0, MAX_CAPTURE)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(0, MAX_CAPTURE)));
    let timedOut = false;
    let overMemory = false;
    let peak = 0;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.limits.timeoutMs);
    const poll = setInterval(() => {
      if (child.pid == null) return;
      peak = Math.max(peak, rssMiB(child.pid));
      if (peak > o.limits.maxRssMiB && !overMemory) {
        overMemory = true;
        child.kill('SIGKILL');
      }
    }, 100);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        timedOut,
        overMemory,
        peakRssMiB: Math.round(peak),
        ms: Math.round(performance.now() - started),
      });
    });
  });
}
