/**
 * Private scratch directories (compare's pruned cells): a unique random name (never the pid, which
 * the next process may reuse), with an owner file naming the process and its start time. A run
 * killed outright cannot remove its own, so every new one first sweeps those whose owner is gone.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OWNER = 'compact-owner.json';

/** The kernel's start time of `pid` (clock ticks since boot), where /proc has it: tells a reused pid apart. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether `pid` runs (or runs as another user); with `start` (its startTime when recorded), whether it is still that process. */
export function alive(pid: number, start: string | null = null): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(pid);
  return start == null || now == null || now === start;
}

/** Removes `parent/<prefix>*` scratch dirs whose owner process has ended (or that never got an owner file and are over a minute old). */
export function sweepStaleScratch(parent: string, prefix: string): void {
  if (!existsSync(parent)) return;
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const dir = join(parent, entry);
    let stale: boolean;
    try {
      const owner = JSON.parse(readFileSync(join(dir, OWNER), 'utf8')) as { pid: number; start: string | null };
      stale = !alive(owner.pid, owner.start);
    } catch {
      try {
        stale = Date.now() - statSync(dir).mtimeMs > 60_000; // killed between creating it and writing the owner
      } catch {
        continue;
      }
    }
    if (stale) rmSync(dir, { recursive: true, force: true });
  }
}

/** A new scratch dir `parent/<prefix><random>` owned by this process, after sweeping stale ones. */
export function createScratchDir(parent: string, prefix: string): string {
  mkdirSync(parent, { recursive: true });
  sweepStaleScratch(parent, prefix);
  const dir = mkdtempSync(join(parent, prefix));
  writeFileSync(join(dir, OWNER), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
  return dir;
}
