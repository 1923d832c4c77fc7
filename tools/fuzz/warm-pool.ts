/**
 * Runs CLI commands in a warm worker process (warm-worker.ts), bounded like a fresh process would
 * be: a timeout, a V8 heap limit and a resident-size limit; a worker that hangs, blows up or dies
 * is killed and replaced, and the command counted as what happened to it. Workers are recycled
 * every `recycleEvery` commands so that leaks of one command cannot reach many others.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type CliFlavour, getBuildRoot, type RunLimits, type RunResult } from './run-cli.js';

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export class WarmWorker {
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private used = 0;
  private fatal = '';

  constructor(
    private readonly flavour: CliFlavour,
    private readonly limits: RunLimits,
    private readonly recycleEvery = 100,
  ) {}

  private start(): Promise<void> {
    const child = fork(new URL('./warm-worker.ts', import.meta.url).pathname, [this.flavour, getBuildRoot()], {
      execArgv: [`--max-old-space-size=${this.limits.heapMiB}`, '--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.stdout!.on('data', (d: Buffer) => (this.fatal += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (this.fatal += d.toString('utf8')));
    this.child = child;
    this.used = 0;
    return new Promise((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`warm worker failed to start (exit ${code}): ${this.fatal}`)));
    });
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
    this.ready = null;
  }

  async run(args: string[], env: Record<string, string>): Promise<RunResult> {
    if (!this.child || this.used >= this.recycleEvery) {
      this.stop();
      this.ready = this.start();
    }
    await this.ready;
    const child = this.child!;
    this.used++;
    this.fatal = '';
    const started = performance.now();
    const baseline = rssMiB(child.pid!);
    return new Promise((resolve) => {
      let timedOut = false;
      let overMemory = false;
      let peak = baseline;
      const finish = (r: Pick<RunResult, 'code' | 'signal' | 'stdout' | 'stderr'>) => {
        clearTimeout(timer);
        clearInterval(poll);
        child.removeAllListeners('message');
        child.removeAllListeners('exit');
        resolve({ ...r, timedOut, overMemory, peakRssMiB: Math.round(peak), ms: Math.round(performance.now() - started) });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.limits.timeoutMs);
      const poll = setInterval(() => {
        peak = Math.max(peak, rssMiB(child.pid!));
        // the limit is on what the command adds to the warm process
        if (peak - baseline > this.limits.maxRssMiB && !overMemory) {
          overMemory = true;
          child.kill('SIGKILL');
        }
      }, 100);
      child.once('message', (m: { code: number; stdout: string; stderr: string }) => {
        if (this.fatal) m.stderr += this.fatal;
        // a command that left the worker bloated gets a fresh one next time
        if (rssMiB(child.pid!) > baseline + 400) this.used = this.recycleEvery;
        finish({ code: m.code, signal: null, stdout: m.stdout, stderr: m.stderr });
      });
      child.once('exit', (code, signal) => {
        this.child = null;
        // give the pipes a moment to deliver V8's last words (e.g. "FATAL ERROR: … heap out of memory")
        setTimeout(() => finish({ code, signal, stdout: '', stderr: this.fatal }), 50);
      });
      child.send({ args, env });
    });
  }
}
