/**
 * One fuzz case: a mutated copy of the model, one CLI command on it (inspect, eval --text or a
 * small prune), and what happened, classified. Everything is derived from the case seed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { classify, type RunClass } from './classify.js';
import { copyModel, MUTATIONS } from './mutations.js';
import { Rng } from './rng.js';
import { ROOT, type RunResult } from './run-cli.js';
import { snapshot } from './snapshot.js';

export const MODEL = `${ROOT}models/stories260K/hf`;

/** The commands a case may run ({dir}, {out}, {text}, {calib} filled in), and how often each is drawn. */
const SMALL = ['--samples', '2', '--seq-len', '64', '--calib', '{calib}', '--threads', '1'];
// prune: a fixed split (with the default compensation); prune-auto: the split search (--ratio alone,
// several candidates written and measured: the costliest); prune-vocab: explicit sizes, no compensation.
const COMMANDS: [string, string[], number][] = [
  ['inspect', ['inspect', '{dir}'], 3],
  ['eval', ['eval', '{dir}', '--text', '{text}', '--threads', '1'], 4],
  ['prune', ['prune', '{dir}', '-o', '{out}', '--ratio', '0.3', '--vocab-share', '0.1', ...SMALL], 3],
  ['prune-auto', ['prune', '{dir}', '-o', '{out}', '--ratio', '0.3', '--auto', ...SMALL], 0.5],
  ['prune-vocab', ['prune', '{dir}', '-o', '{out}', '--vocab', '400', '--ffn', '128', '--no-compensate', ...SMALL], 1],
];
/** Drawn only when asked for (`--commands`): a different set of commands draws different cases from the same seed. */
const EXTRA_COMMANDS: [string, string[], number][] = [['export', ['export', '{dir}', '-o', '{out}', '--type', 'f16'], 1]];
export const DEFAULT_COMMANDS = COMMANDS.map(([name]) => name);

function commandTable(names: string[] | undefined): [string, string[], number][] {
  if (!names) return COMMANDS;
  const all = [...COMMANDS, ...EXTRA_COMMANDS];
  const unknown = names.filter((n) => !all.some(([name]) => name === n));
  if (unknown.length) throw new Error(`unknown command(s) ${unknown.join(', ')}; known: ${all.map(([n]) => n).join(', ')}`);
  return all.filter(([name]) => names.includes(name));
}

/** Small shared inputs of every case: an evaluation text and a calibration text. */
export interface Texts {
  text: string;
  calib: string;
}

export interface CaseResult {
  id: string;
  kind: string;
  command: string;
  description: string;
  cls: RunClass;
  /** In warm mode, the class the warm worker saw when a fresh process (cls) was needed to confirm it. */
  warmClass?: RunClass;
  code: number | null;
  signal: string | null;
  ms: number;
  peakRssMiB: number;
  /** Milliseconds preparing the case, running the command, checking the result. */
  timing: { prepare: number; run: number; check: number };
  /** First stderr line (or the stack's first frames), for the report. */
  excerpt: string;
}

/** Runs `compact <args>` with extra environment variables: a fresh process, or a warm worker. */
export type Runner = (args: string[], env: Record<string, string>) => Promise<RunResult>;

export interface CaseOptions {
  root: string;
  texts: Texts;
  run: Runner;
  /** Commands drawn from (default: DEFAULT_COMMANDS). */
  commands?: string[];
  keep?: boolean;
  verbose?: boolean;
}

/** The case's kind, command and mutated directory, from its seed alone. */
export function prepareCase(
  seed: number,
  caseRoot: string,
  commands?: string[],
): { kind: string; command: string; args: string[]; description: string } {
  const rng = new Rng(seed);
  const mutation = rng.weighted(MUTATIONS.map((m) => [m, m.weight] as const));
  const [command, args] = rng.weighted(commandTable(commands).map(([name, a, w]) => [[name, a] as const, w] as const));
  const dir = join(caseRoot, 'model');
  const outside = join(caseRoot, 'outside');
  copyModel(MODEL, dir);
  mkdirSync(outside);
  writeFileSync(join(outside, 'unrelated.txt'), 'not part of the model\n');
  mkdirSync(join(caseRoot, 'tmp'));
  const description = mutation.apply({ dir, outside, rng });
  return { kind: mutation.kind, command, args: [...args], description };
}

function inputState(caseRoot: string): string {
  return `${snapshot(join(caseRoot, 'model'))} ${snapshot(join(caseRoot, 'outside'))}`;
}

/** Entries a run may leave: the input, the links' targets, the temp folder, and the output after a success. */
const EXPECTED = new Set(['model', 'outside', 'tmp', 'out']);

export async function runCase(id: string, seed: number, o: CaseOptions): Promise<CaseResult> {
  const caseRoot = join(o.root, id.replace(/[^\w-]/g, '_'));
  rmSync(caseRoot, { recursive: true, force: true });
  mkdirSync(caseRoot, { recursive: true });
  try {
    let clock = performance.now();
    const lap = () => Math.round(-clock + (clock = performance.now()));
    const c = prepareCase(seed, caseRoot, o.commands);
    const out = join(caseRoot, 'out');
    const fill = (a: string) =>
      a.replace('{dir}', join(caseRoot, 'model')).replace('{out}', out).replace('{text}', o.texts.text).replace('{calib}', o.texts.calib);
    const args = c.args.map(fill);
    const before = inputState(caseRoot);
    // The child's temp folder is the case's own: anything it leaves there is seen.
    const env = { TMPDIR: join(caseRoot, 'tmp') };
    const prepare = lap();
    const run = await o.run(args, env);
    const ran = lap();
    const inputChanged = inputState(caseRoot) !== before;
    const outputExists = existsSync(out);
    let outputLoads: boolean | null = null;
    if (run.code === 0 && c.command.startsWith('prune')) {
      // the output must load and give a finite bits per byte (a checkpoint pruned from NaN statistics loads fine)
      const check = await o.run(['eval', out, '--text', o.texts.text, '--threads', '1'], env);
      outputLoads = outputExists && check.code === 0 && !/NaN|Infinity/.test(check.stdout);
    }
    if (run.code === 0 && c.command === 'export')
      outputLoads = outputExists && readFileSync(out).subarray(0, 4).toString('latin1') === 'GGUF';
    const strays = [
      ...readdirSync(caseRoot).filter((e) => !EXPECTED.has(e)),
      // tsx's compile cache (a fresh process from the sources) is not compact's
      ...readdirSync(join(caseRoot, 'tmp'))
        .filter((e) => !/^tsx-\d+$/.test(e))
        .map((e) => `tmp/${e}`),
    ];
    const timing = { prepare, run: ran, check: lap() };
    const cls = classify({ run, inputChanged, outputExists, outputLoads, strays });
    if (o.verbose) printRun(c.description, args, run, cls, strays);
    return {
      id,
      kind: c.kind,
      command: c.command,
      description: c.description,
      cls,
      code: run.code,
      signal: run.signal,
      ms: run.ms,
      peakRssMiB: run.peakRssMiB,
      timing,
      excerpt: excerpt(run, strays),
    };
  } finally {
    if (!o.keep) rmSync(caseRoot, { recursive: true, force: true });
  }
}

function excerpt(run: RunResult, strays: string[]): string {
  const lines = run.stderr.split('\n').filter((l) => l.trim());
  const firstFrame = lines.find((l) => /^\s+at /.test(l));
  const text = [lines[0] ?? '', firstFrame ?? '', strays.length ? `strays: ${strays.join(' ')}` : ''].filter(Boolean).join(' | ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function printRun(description: string, args: string[], run: RunResult, cls: RunClass, strays: string[]): void {
  console.log(`mutation: ${description}`);
  console.log(`command:  compact ${args.join(' ')}`);
  console.log(
    `exit ${run.code}${run.signal ? ` (signal ${run.signal})` : ''}, ${run.ms} ms, peak RSS ${run.peakRssMiB} MiB${run.timedOut ? ', timed out' : ''}${run.overMemory ? ', over the memory limit' : ''}`,
  );
  console.log(`--- stdout ---\n${run.stdout.slice(0, 4000)}\n--- stderr ---\n${run.stderr.slice(0, 8000)}`);
  if (strays.length) console.log(`strays: ${strays.join(' ')}`);
  console.log(`class: ${cls}`);
}
