/**
 * `npm run fuzz [-- --cases N --seed S --time-limit 30m --parallel 2 --cli dist|src --mode warm|spawn --commands LIST --build DIR | --commit REF]`: mutated
 * checkpoint directories run through the CLI, counted by class, per mutation kind and per command.
 * The non-clean cases are written to <out>/failures-<seed>.txt; `--replay SEED:INDEX` runs one again
 * verbosely (and `--keep` leaves its directory for a look); `--summarize FILE.jsonl` counts a run's results.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CLASSES, GOOD, type RunClass } from './classify.js';
import { type CaseResult, runCase, type Runner, type Texts } from './fuzz-case.js';
import { buildCommit } from './build.js';
import { caseSeed } from './rng.js';
import { type CliFlavour, DEFAULT_LIMITS, ROOT, runCompact, type RunLimits, setBuildRoot, getBuildRoot } from './run-cli.js';
import { WarmWorker } from './warm-pool.js';

/** spawn: a fresh `node bin/compact.js` per command; warm: a warm worker per parallel slot, every non-clean case confirmed in a fresh process. */
export type FuzzMode = 'spawn' | 'warm';

function spawnRunner(flavour: CliFlavour, limits: RunLimits): Runner {
  return (args, env) => runCompact(args, { flavour, limits, env });
}

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Seconds after which no new case starts. */
  timeLimit?: number;
  parallel: number;
  flavour: CliFlavour;
  mode: FuzzMode;
  /** Commands drawn from (default: inspect, eval, prune, prune-auto, prune-vocab; `export` on request). */
  commands?: string[];
  timeoutMs?: number;
  onCase?: (r: CaseResult, done: number) => void;
}

/** Small evaluation and calibration texts cut from the bundled TinyStories files. */
function writeTexts(root: string): Texts {
  const held = readFileSync(`${ROOT}data/tinystories/heldout_10pct.txt`, 'utf8');
  const calib = readFileSync(`${ROOT}data/tinystories/calibration_90pct.txt`, 'utf8');
  const texts = { text: join(root, 'eval.txt'), calib: join(root, 'calib.txt') };
  writeFileSync(texts.text, held.slice(0, 400));
  writeFileSync(texts.calib, calib.slice(0, 6000)); // 2 windows of 64 tokens, and 10 % held out for --auto
  return texts;
}

/** Ctrl-C or a TERM of the fuzzer removes its case directories (warm workers leave with it). */
export function removeOnStop(root: string): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(root, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export async function fuzz(o: FuzzOptions): Promise<CaseResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'compact-fuzz-'));
  const stop = removeOnStop(root);
  const texts = writeTexts(root);
  const limits = { ...DEFAULT_LIMITS, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) };
  const results: CaseResult[] = [];
  const deadline = o.timeLimit == null ? Infinity : Date.now() + o.timeLimit * 1000;
  let next = 0;
  const fresh = spawnRunner(o.flavour, limits);
  const warm: WarmWorker[] = [];
  const slot = async () => {
    const w = o.mode === 'warm' ? new WarmWorker(o.flavour, limits) : null;
    if (w) warm.push(w);
    const run: Runner = w ? (args, env) => w.run(args, env) : fresh;
    while (next < o.cases && Date.now() < deadline) {
      const index = next++;
      const id = `${o.seed}:${index}`;
      let r = await runCase(id, caseSeed(o.seed, index), { root, texts, run, commands: o.commands });
      if (w && !GOOD.includes(r.cls)) {
        // what a user would see: the same case in a fresh process decides
        const confirmed = await runCase(id, caseSeed(o.seed, index), { root, texts, run: fresh, commands: o.commands });
        r = { ...confirmed, warmClass: r.cls };
      }
      results.push(r);
      o.onCase?.(r, results.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.parallel) }, slot));
  } finally {
    for (const w of warm) w.stop();
    rmSync(root, { recursive: true, force: true });
    stop();
  }
  return results.sort((a, b) => Number(a.id.split(':')[1]) - Number(b.id.split(':')[1]));
}

/** Counts per class, then per mutation kind and per command (non-zero classes only). */
export function summary(results: CaseResult[]): string {
  const count = (rs: CaseResult[]) => {
    const c = new Map<RunClass, number>();
    for (const r of rs) c.set(r.cls, (c.get(r.cls) ?? 0) + 1);
    return c;
  };
  const total = count(results);
  const used = CLASSES.filter((k) => total.has(k));
  const table = (label: string, key: (r: CaseResult) => string) => {
    const groups = [...new Set(results.map(key))].sort();
    const w = Math.max(label.length, ...groups.map((g) => g.length));
    const head = `${label.padEnd(w)}  ${used.map((k) => k.padStart(Math.max(k.length, 5))).join('  ')}  ${'total'.padStart(6)}`;
    const rows = groups.map((g) => {
      const rs = results.filter((r) => key(r) === g);
      const c = count(rs);
      return `${g.padEnd(w)}  ${used.map((k) => String(c.get(k) ?? 0).padStart(Math.max(k.length, 5))).join('  ')}  ${String(rs.length).padStart(6)}`;
    });
    return [head, ...rows].join('\n');
  };
  const bad = results.filter((r) => !GOOD.includes(r.cls)).length;
  return [
    `${results.length} cases: ${used.map((k) => `${k} ${total.get(k)}`).join(', ')}; not clean: ${bad}`,
    '',
    table('mutation kind', (r) => r.kind),
    '',
    table('command', (r) => r.command),
  ].join('\n');
}

function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text);
  if (!m) throw new Error(`--time-limit: expected e.g. 90, 90s, 30m or 1h, got ${text}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

async function cli(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '200' },
      seed: { type: 'string', default: '1' },
      'time-limit': { type: 'string' },
      parallel: { type: 'string', default: '2' },
      cli: { type: 'string', default: 'dist' },
      mode: { type: 'string', default: 'warm' },
      build: { type: 'string' },
      commit: { type: 'string' },
      commands: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string', default: `${ROOT}.tmp/fuzz` },
      replay: { type: 'string' },
      summarize: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  if (values.summarize) {
    // the counts of a run from its results-SEED.jsonl (e.g. one stopped before its end)
    const results = readFileSync(values.summarize, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as CaseResult);
    console.log(summary(results));
    return 0;
  }
  const flavour = values.cli as CliFlavour;
  if (flavour !== 'dist' && flavour !== 'src') throw new Error('--cli must be dist or src');
  if (values.build) setBuildRoot(resolve(values.build));
  if (values.commit) setBuildRoot(buildCommit(values.commit));
  const mode = values.mode as FuzzMode;
  if (mode !== 'spawn' && mode !== 'warm') throw new Error('--mode must be spawn or warm');
  const commands = values.commands?.split(',');
  const timeoutMs = values.timeout ? seconds(values.timeout) * 1000 : undefined;
  if (values.replay) {
    const [seed, index] = values.replay.split(':').map(Number);
    const root = mkdtempSync(join(tmpdir(), 'compact-fuzz-replay-'));
    const r = await runCase(values.replay, caseSeed(seed, index), {
      root,
      texts: writeTexts(root),
      run: spawnRunner(flavour, { ...DEFAULT_LIMITS, ...(timeoutMs ? { timeoutMs } : {}) }),
      commands,
      keep: values.keep,
      verbose: true,
    });
    if (values.keep) console.log(`case directory kept: ${root}`);
    else rmSync(root, { recursive: true, force: true });
    return GOOD.includes(r.cls) ? 0 : 1;
  }
  const seed = Number(values.seed);
  const cases = Number(values.cases);
  const started = Date.now();
  console.log(
    `fuzz: up to ${cases} cases, seed ${seed}, ${values.parallel} in parallel, CLI from ${flavour === 'dist' ? getBuildRoot() : 'src'}, ${mode} processes${values['time-limit'] ? `, time limit ${values['time-limit']}` : ''} (${new Date().toISOString()})`,
  );
  mkdirSync(values.out, { recursive: true });
  const progress = join(values.out, `results-${seed}.jsonl`);
  writeFileSync(progress, '');
  const results = await fuzz({
    cases,
    seed,
    parallel: Number(values.parallel),
    flavour,
    mode,
    commands,
    timeoutMs,
    timeLimit: values['time-limit'] ? seconds(values['time-limit']) : undefined,
    onCase: (r, done) => {
      appendFileSync(progress, `${JSON.stringify(r)}\n`); // readable while the run goes on
      if (!GOOD.includes(r.cls) || r.warmClass)
        console.log(
          `  ${r.id} ${r.cls}${r.warmClass ? ` (warm: ${r.warmClass})` : ''} [${r.kind}/${r.command}] ${r.description} | ${r.excerpt}`,
        );
      if (done % 100 === 0) console.log(`  … ${done} cases, ${Math.round((Date.now() - started) / 1000)} s`);
    },
  });
  console.log(`\n${summary(results)}\n\n${Math.round((Date.now() - started) / 1000)} s (finished ${new Date().toISOString()})`);
  mkdirSync(values.out, { recursive: true });
  const failures = results.filter((r) => !GOOD.includes(r.cls));
  writeFileSync(
    join(values.out, `failures-${seed}.txt`),
    failures.map((r) => `${r.id}\t${r.cls}\t${r.kind}/${r.command}\t${r.description}\t${r.excerpt}\n`).join(''),
  );
  writeFileSync(join(values.out, `results-${seed}.json`), JSON.stringify(results, null, 1));
  console.log(`failing cases: ${join(values.out, `failures-${seed}.txt`)} (replay one: npm run fuzz -- --replay ID)`);
  return failures.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await cli();
