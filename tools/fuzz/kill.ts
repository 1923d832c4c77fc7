/**
 * `npm run killtest [-- --trials N --seed S --commit REF | --cli src]`: SIGKILL / SIGINT / SIGTERM
 * at a random moment of `prune`, `prune --auto`, `prune --force` (over an existing output),
 * `compare` and `export`, then checks: the output is absent or complete (for --force: the old one
 * or the new one, never neither, never a mix), the input is untouched, an interrupt (INT/TERM) that
 * the CLI handled leaves nothing behind, and after the next run (the same command, --force) no
 * temp dir or file of the killed run is left. Scenario, signal and moment come from the seed; what
 * the process had reached when the signal came depends on the machine's speed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCommit } from './build.js';
import { MODEL, type Runner } from './fuzz-case.js';
import { removeOnStop } from './fuzz.js';
import { caseSeed, Rng } from './rng.js';
import { type CliFlavour, cliArgv, DEFAULT_LIMITS, getBuildRoot, ROOT, runCompact, type RunResult, setBuildRoot } from './run-cli.js';
import { snapshot } from './snapshot.js';

interface Paths {
  model: string;
  calib: string;
  text: string;
  out: string;
}

interface Scenario {
  name: string;
  args: (p: Paths) => string[];
  /** What a complete output is: a checkpoint (loads with inspect), a report directory, or a GGUF file. */
  output: 'checkpoint' | 'report' | 'gguf';
  /** The output exists before the run (an older result), and the run replaces it. */
  replaces?: boolean;
}

/** Runs that are not killed get a generous limit: a loaded machine is slow, not hung. */
const LIMITS = { ...DEFAULT_LIMITS, timeoutMs: 300_000 };
const failed = (what: string, r: RunResult) =>
  new Error(`${what} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}${r.timedOut ? ', timed out' : ''}): ${r.stderr}`);

const SMALL = (p: Paths) => ['--samples', '2', '--seq-len', '64', '--calib', p.calib, '--threads', '1'];
export const SCENARIOS: Scenario[] = [
  {
    name: 'prune',
    output: 'checkpoint',
    args: (p) => ['prune', p.model, '-o', p.out, '--ratio', '0.3', '--vocab-share', '0.1', ...SMALL(p)],
  },
  { name: 'prune-auto', output: 'checkpoint', args: (p) => ['prune', p.model, '-o', p.out, '--ratio', '0.3', '--auto', ...SMALL(p)] },
  {
    name: 'prune-force',
    output: 'checkpoint',
    replaces: true,
    args: (p) => ['prune', p.model, '-o', p.out, '--ratio', '0.3', '--vocab-share', '0.1', '--force', ...SMALL(p)],
  },
  {
    name: 'compare',
    output: 'report',
    args: (p) => [
      'compare',
      p.model,
      '-o',
      p.out,
      '--eval-text',
      p.text,
      '--ratios',
      '0.3',
      '--methods',
      'compact,compact-auto',
      '--no-agreement',
      ...SMALL(p),
    ],
  },
  { name: 'export', output: 'gguf', args: (p) => ['export', p.model, '-o', p.out, '--type', 'f16'] },
];
const SIGNALS: [NodeJS.Signals, number][] = [
  ['SIGKILL', 5],
  ['SIGINT', 3],
  ['SIGTERM', 2],
];

export const KILL_CLASSES = [
  'ok',
  'partial-output',
  'lost-output',
  'input-modified',
  'stray-after-interrupt',
  'stray-after-next-run',
  'next-run-failed',
  'hang',
] as const;
export type KillClass = (typeof KILL_CLASSES)[number];

export interface TrialResult {
  id: string;
  scenario: string;
  signal: NodeJS.Signals;
  delayMs: number;
  /** How the killed run ended: exit code, or the signal that ended it. */
  ended: string;
  /** The output after the killed run: absent, complete (new), old (for --force), or broken. */
  output: 'absent' | 'new' | 'old' | 'broken';
  cls: KillClass;
  detail: string;
}

function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Entries of `dir` (the trial's folder) a run may leave: its output and the temp folder; plus what is in the temp folder. */
function strays(dir: string, out: string): string[] {
  return [...readdirSync(dir).filter((e) => e !== 'tmp' && join(dir, e) !== out), ...readdirSync(join(dir, 'tmp')).map((e) => `tmp/${e}`)];
}

interface Reference {
  ms: number;
  /** Checkpoint: sorted file names; report: file names; gguf: content hash. */
  signature: string;
}

/** What the output at `out` is, against the reference of a complete run and (for --force) the old one. */
async function outputState(s: Scenario, out: string, ref: Reference, old: string | null, run: Runner): Promise<TrialResult['output']> {
  if (!existsSync(out)) return 'absent';
  if (s.output === 'gguf')
    return statSync(out).isFile() && fileHash(out) === ref.signature ? 'new' : old != null && fileHash(out) === old ? 'old' : 'broken';
  if (old != null && snapshot(out) === old) return 'old';
  if (signature(s, out) !== ref.signature) return 'broken';
  if (s.output === 'checkpoint') {
    const r = await run(['inspect', out], {});
    return r.code === 0 ? 'new' : 'broken';
  }
  try {
    JSON.parse(readFileSync(join(out, 'study.json'), 'utf8'));
    return 'new';
  } catch {
    return 'broken';
  }
}

function signature(s: Scenario, out: string): string {
  if (s.output === 'gguf') return fileHash(out);
  return readdirSync(out).sort().join(' ');
}

/** Runs `compact <args>` and sends `signal` after `delayMs`; resolves when it has ended. */
function runAndKill(
  args: string[],
  flavour: CliFlavour,
  env: Record<string, string>,
  signal: NodeJS.Signals,
  delayMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; hung: boolean }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...cliArgv(flavour, DEFAULT_LIMITS.heapMiB), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let hung = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const kill = setTimeout(() => child.kill(signal), delayMs);
    const limit = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, delayMs + LIMITS.timeoutMs);
    child.on('close', (code, sig) => {
      clearTimeout(kill);
      clearTimeout(limit);
      done({ code, signal: sig, stderr, hung });
    });
  });
}

export interface KillOptions {
  trials: number;
  seed: number;
  flavour: CliFlavour;
  /** Scenarios to draw from (default: all). */
  scenarios?: string[];
  onTrial?: (r: TrialResult, done: number) => void;
  /**
   * How runs that are not killed (references, next runs, inspect checks) are made: a fresh
   * process by default; the short test passes a warm worker (startup once), with `startupMs` (a
   * fresh process's start-up, which the killed run still pays) added to the kill-moment range.
   */
  run?: Runner;
  startupMs?: number;
}

export async function killCampaign(o: KillOptions): Promise<TrialResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'compact-kill-'));
  const stop = removeOnStop(root);
  const run: Runner = o.run ?? ((args, env) => runCompact(args, { flavour: o.flavour, limits: LIMITS, env }));
  try {
    const paths = (dir: string, s: Scenario): Paths => ({
      model: join(root, 'model'),
      calib: join(root, 'calib.txt'),
      text: join(root, 'text.txt'),
      out: join(dir, s.output === 'gguf' ? 'out.gguf' : 'out'),
    });
    cpSync(MODEL, join(root, 'model'), { recursive: true });
    writeFileSync(join(root, 'calib.txt'), readFileSync(`${ROOT}data/tinystories/calibration_90pct.txt`, 'utf8').slice(0, 6000));
    writeFileSync(join(root, 'text.txt'), readFileSync(`${ROOT}data/tinystories/heldout_10pct.txt`, 'utf8').slice(0, 400));
    const inputBefore = snapshot(join(root, 'model'));
    const scenarios = SCENARIOS.filter((s) => !o.scenarios || o.scenarios.includes(s.name));

    // References: each scenario run once to the end (its duration bounds the kill moments), and
    // the older output that --force replaces (a prune at another ratio, another GGUF type).
    const refs = new Map<string, Reference>();
    const olds = new Map<string, string>(); // scenario → directory holding the older output
    for (const s of scenarios) {
      const dir = join(root, `ref-${s.name}`);
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      const p = paths(dir, s);
      if (s.replaces) {
        const old = join(root, `old-${s.name}`);
        const r = await run(['prune', p.model, '-o', old, '--ratio', '0.2', '--vocab-share', '0', ...SMALL(p)], {});
        if (r.code !== 0) throw failed('the older output for --force', r);
        olds.set(s.name, old);
        cpSync(old, p.out, { recursive: true });
      }
      const r = await run(s.args(p), o.flavour === 'dist' ? { TMPDIR: join(dir, 'tmp') } : {});
      if (r.code !== 0) throw failed(`the reference run of ${s.name}`, r);
      refs.set(s.name, { ms: r.ms + (o.startupMs ?? 0), signature: signature(s, p.out) });
    }

    const results: TrialResult[] = [];
    for (let i = 0; i < o.trials; i++) {
      const rng = new Rng(caseSeed(o.seed, i));
      const s = rng.pick(scenarios);
      const signal = rng.weighted(SIGNALS);
      const ref = refs.get(s.name)!;
      const delayMs = Math.round(rng.next() * 1.2 * ref.ms);
      const dir = join(root, `trial-${i}`);
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      const p = paths(dir, s);
      const oldDir = olds.get(s.name);
      if (oldDir) cpSync(oldDir, p.out, { recursive: true });
      const oldSignature = oldDir ? snapshot(p.out) : null;
      // The run's temp folder is the trial's own, so what it leaves there is seen (not from the sources:
      // tsx keeps its compile cache in the temp folder, and a cold one costs seconds per run).
      const env: Record<string, string> = o.flavour === 'dist' ? { TMPDIR: join(dir, 'tmp') } : {};

      const killed = await runAndKill(s.args(p), o.flavour, env, signal, delayMs);
      const ended = killed.signal ? `killed by ${killed.signal}` : `exit ${killed.code}`;
      const output = await outputState(s, p.out, ref, oldSignature, run);
      const handled = killed.code === 130 || killed.code === 143; // the CLI's own interrupt handler ran
      const left = strays(dir, p.out);
      let cls: KillClass = 'ok';
      let detail = killed.stderr.trim().split('\n').pop() ?? '';
      if (killed.hung) cls = 'hang';
      else if (snapshot(join(root, 'model')) !== inputBefore) cls = 'input-modified';
      else if (output === 'broken') cls = 'partial-output';
      else if (output === 'absent' && oldDir) cls = 'lost-output';
      else if (handled && left.length) ((cls = 'stray-after-interrupt'), (detail = left.join(' ')));
      else {
        // the next run writing the same output must finish and sweep what the killed one left
        const next = await run([...s.args(p), ...(s.replaces ? [] : ['--force'])], env);
        const after = strays(dir, p.out);
        if (next.code !== 0) ((cls = 'next-run-failed'), (detail = next.stderr.trim().split('\n')[0] ?? ''));
        else if (after.length) ((cls = 'stray-after-next-run'), (detail = after.join(' ')));
        else if ((await outputState(s, p.out, ref, null, run)) !== 'new') ((cls = 'partial-output'), (detail = 'after the next run'));
        else if (snapshot(join(root, 'model')) !== inputBefore) cls = 'input-modified';
      }
      const r: TrialResult = { id: `${o.seed}:${i}`, scenario: s.name, signal, delayMs, ended, output, cls, detail };
      results.push(r);
      o.onTrial?.(r, results.length);
      rmSync(dir, { recursive: true, force: true });
    }
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
    stop();
  }
}

/** Counts: scenario × signal → classes, and what the output was after the kill. */
export function killSummary(results: TrialResult[]): string {
  const lines: string[] = [];
  const classes = KILL_CLASSES.filter((k) => results.some((r) => r.cls === k));
  lines.push(`${results.length} trials: ${classes.map((k) => `${k} ${results.filter((r) => r.cls === k).length}`).join(', ')}`);
  lines.push(
    '',
    `${'scenario'.padEnd(12)} ${'signal'.padEnd(8)} ${'trials'.padStart(6)}  output after the kill (absent / new / old / broken)  ended by the handler  not ok`,
  );
  for (const s of SCENARIOS) {
    for (const [signal] of SIGNALS) {
      const rs = results.filter((r) => r.scenario === s.name && r.signal === signal);
      if (!rs.length) continue;
      const n = (out: string) => rs.filter((r) => r.output === out).length;
      const handled = rs.filter((r) => r.ended === 'exit 130' || r.ended === 'exit 143').length;
      lines.push(
        `${s.name.padEnd(12)} ${signal.padEnd(8)} ${String(rs.length).padStart(6)}  ${`${n('absent')} / ${n('new')} / ${n('old')} / ${n('broken')}`.padEnd(51)}  ${String(handled).padStart(20)}  ${String(rs.filter((r) => r.cls !== 'ok').length).padStart(6)}`,
      );
    }
  }
  return lines.join('\n');
}

async function cli(): Promise<number> {
  const { values } = parseArgs({
    options: {
      trials: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      cli: { type: 'string', default: 'dist' },
      commit: { type: 'string' },
      build: { type: 'string' },
      scenarios: { type: 'string' },
      out: { type: 'string', default: `${ROOT}.tmp/killtest` },
    },
  });
  const flavour = values.cli as CliFlavour;
  if (values.build) setBuildRoot(resolve(values.build));
  if (values.commit) setBuildRoot(buildCommit(values.commit));
  const started = Date.now();
  console.log(
    `killtest: ${values.trials} trials, seed ${values.seed}, CLI from ${flavour === 'dist' ? getBuildRoot() : 'src'} (${new Date().toISOString()})`,
  );
  const results = await killCampaign({
    trials: Number(values.trials),
    seed: Number(values.seed),
    flavour,
    scenarios: values.scenarios?.split(','),
    onTrial: (r, done) => {
      if (r.cls !== 'ok')
        console.log(`  ${r.id} ${r.cls}: ${r.scenario} ${r.signal} at ${r.delayMs} ms (${r.ended}, output ${r.output}) ${r.detail}`);
      if (done % 10 === 0) console.log(`  … ${done} trials, ${Math.round((Date.now() - started) / 1000)} s`);
    },
  });
  console.log(`\n${killSummary(results)}\n\n${Math.round((Date.now() - started) / 1000)} s (finished ${new Date().toISOString()})`);
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, `results-${values.seed}.json`), JSON.stringify(results, null, 1));
  return results.some((r) => r.cls !== 'ok') ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await cli();
