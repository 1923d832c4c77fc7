import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { DEFAULT_DATA_DIR, EVAL_DEFAULTS } from '../defaults.js';
import { Engine } from '../engine/engine.js';
import { PRECISIONS, type Precision } from '../engine/precision.js';
import type { MeanWithStderr } from '../eval/multiple-choice.js';
import { TASK_NAMES } from '../eval/tasks/definitions.js';
import {
  agreementPrompts,
  checkSharedTokens,
  measureAgreement,
  openAgreementSide,
  prepareReference,
  type AgreementMetrics,
  type AgreementSide,
} from '../eval/agreement.js';
import { measureSpeed, peakRssBytes, staticEfficiency, type Efficiency } from '../eval/efficiency.js';
import { evaluateText, type TextMetrics } from '../eval/text-metrics.js';
import { readTokenTable } from '../eval/token-table.js';
import { type GroupReport, sampleRecord, type TaskReport } from '../eval/zero-shot.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { readConfig } from '../model/spec.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { CompactError } from '../util/errors.js';
import { addAgreementOptions, type AgreementFlags, agreementOptions } from './agreement-options.js';
import { jsonOption, threads as parseThreads, threadsOption } from './common-options.js';
import { bytes, integer, percent, table } from './format.js';
import { nonNegativeInt, positiveInt, readTextFile } from './parse.js';
import { parameterTable } from './inspect.js';
import { progressBar } from './progress.js';
import { loadTasks, runTasks } from '../api-tasks.js';

interface EvalOptions extends AgreementFlags {
  text?: string;
  tasks?: string;
  dataDir?: string;
  limit?: string;
  numFewshot?: string;
  logSamples?: boolean;
  batchSize: string;
  window: string;
  stride?: string;
  reference?: string;
  speed?: boolean;
  promptTokens?: string;
  newTokens: string;
  repeats: string;
  threads?: string;
  precision: Precision;
  json?: boolean;
}

export function registerEval(program: Command): void {
  const command = program
    .command('eval')
    .description(
      'measure a checkpoint: bits per byte and perplexity of a text, agreement with a reference model, zero-shot tasks ' +
        '(LM-Evaluation-Harness semantics), and efficiency (parameters, weight bytes, peak RSS, prefill and per-token speed, pruning time)',
    )
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .option('--text <file>', 'UTF-8 text file, encoded whole with the model tokenizer')
    .option(
      '--tasks <list>',
      `comma-separated tasks: ${TASK_NAMES.join(', ')}, or mc:FILE.jsonl (your own multiple choice: {"context", "choices", "gold"} per line)`,
    )
    .option(
      '--num-fewshot <k>',
      "shots per context for every task, drawn as lm-eval draws them (default: each task's own, 5 for gsm8k, 0 otherwise)",
    )
    .option('--log-samples', 'with --json: per-document records (prompt hash, target, prediction, generated text)')
    .option(
      '--batch-size <n>',
      'generation tasks: sequences decoded together (key/value cache, one layer call per step for all)',
      String(EVAL_DEFAULTS.batchSize),
    )
    .option(
      '--data-dir <dir>',
      `folder of the benchmark files (arc/, piqa/, … as in shared/data; default: ${DEFAULT_DATA_DIR} if it exists, else the bundled slices in test/fixtures/tasks)`,
    )
    .option('--limit <n>', 'evaluate only the first n documents of each task')
    .option('--window <n>', 'inputs per window: window w scores ids[s+1 .. s+w] from ids[s .. s+w-1]', String(EVAL_DEFAULTS.window))
    .option('--stride <n>', 'tokens between window starts (default: the window, i.e. no overlap); predictions are never scored twice')
    .option(
      '--reference <dir>',
      'the dense model this one was pruned from: greedy agreement, top-1 and KL on paragraphs of --text (docs/agreement.md)',
    );
  addAgreementOptions(command, '--text')
    .option('--speed', 'measure prefill throughput and per-token decoding latency (resident weights, key/value cache, one sequence)')
    .option(
      '--prompt-tokens <n>',
      'prefill length for --speed (default: 512, or less so that prompt + new tokens fit in max_position_embeddings)',
    )
    .option('--new-tokens <n>', 'tokens decoded for --speed', String(EVAL_DEFAULTS.newTokens))
    .option('--repeats <n>', 'repetitions for --speed (medians are reported)', String(EVAL_DEFAULTS.repeats))
    .addOption(threadsOption())
    .addOption(
      new Option(
        '--precision <p>',
        'layer MatMuls for --text and the log-likelihood tasks: fp32 (reference) | int8 (faster, approximate; generation and --speed stay fp32)',
      )
        .choices(PRECISIONS)
        .default('fp32'),
    )
    .addOption(jsonOption())
    .action(async (dir: string, opts: EvalOptions, command: Command) => {
      // Every check on the user's input comes first: a mistake stops before any evaluation or output.
      const window = positiveInt(opts.window, '--window');
      const stride = opts.stride == null ? window : positiveInt(opts.stride, '--stride');
      const threads = parseThreads(opts.threads);
      const limit = opts.limit == null ? undefined : positiveInt(opts.limit, '--limit');
      const numFewshot = opts.numFewshot == null ? undefined : nonNegativeInt(opts.numFewshot, '--num-fewshot');
      if (opts.numFewshot != null && opts.tasks == null) throw new CompactError('--num-fewshot needs --tasks');
      if (opts.logSamples && !opts.json) throw new CompactError('--log-samples needs --json (the records go into the JSON report)');
      const generationBatch = positiveInt(opts.batchSize, '--batch-size');
      const agreementSettings = { ...agreementOptions(opts), window, threads };
      const newTokens = positiveInt(opts.newTokens, '--new-tokens');
      const promptTokens = opts.promptTokens == null ? undefined : positiveInt(opts.promptTokens, '--prompt-tokens');
      const repeats = positiveInt(opts.repeats, '--repeats');
      if (opts.reference != null && opts.text == null)
        throw new CompactError('--reference needs --text: agreement is measured on paragraphs of that text');
      if (opts.text == null && opts.tasks == null && !opts.speed)
        throw new CompactError('nothing to evaluate: give --text FILE, --tasks LIST and/or --speed');
      const text = opts.text == null ? undefined : readTextFile(opts.text);
      if (opts.reference != null) agreementPrompts(text!, agreementSettings.paragraphs, opts.text);
      const loaded =
        opts.tasks == null ? { tasks: [], groups: [], bundledData: false } : loadTasks(opts.tasks, opts.dataDir, limit, numFewshot);
      const { tasks, groups } = loaded;
      if (loaded.bundledData)
        process.stderr.write(
          `compact: note: ${resolve(DEFAULT_DATA_DIR)} does not exist; using the bundled slices in test/fixtures/tasks (the first documents of each benchmark; give --data-dir for the full ones)\n`,
        );
      const requested = new Set((opts.tasks ?? '').split(',').map((s) => s.trim())); // tasks named on the command line (shown even inside a group)
      const ckpt = openCheckpoint(dir);
      const context = ckpt.spec.raw.max_position_embeddings;
      if (command.getOptionValueSource('window') === 'cli' && typeof context === 'number' && window > context) {
        throw new CompactError(
          `--window ${window} is longer than the model's context (max_position_embeddings ${context}): positions past it were never trained, so the result would mean nothing`,
        );
      }
      const efficiency = staticEfficiency(ckpt);
      const speedOptions = opts.speed ? { ...speedLengths(ckpt.spec.raw, promptTokens, newTokens), repeats, threads } : undefined;
      const tokenizer = opts.text != null || opts.tasks != null ? loadTokenizer(dir) : undefined;
      const engine = new Engine(ckpt, { threads, precision: opts.precision });
      const model = opts.reference == null ? undefined : { ckpt, engine, tokenizer: tokenizer!, table: readTokenTable(dir) };
      const reference = opts.reference == null ? undefined : openReference(opts.reference, model!, threads);
      const started = performance.now();

      let textMetrics: TextMetrics | undefined;
      if (text != null) {
        const ids = encode(tokenizer!, text);
        const bar = progressBar('eval', !opts.json);
        textMetrics = await evaluateText(engine, ids, Buffer.byteLength(text, 'utf8'), {
          window,
          stride,
          onProgress: (d, t) => bar.update(d, t),
        });
        bar.stop();
      }
      const textSeconds = (performance.now() - started) / 1000;

      let agreement: AgreementMetrics | undefined;
      if (reference && model) {
        const bars = {
          reference: progressBar('reference continuations', !opts.json),
          greedy: progressBar('continuations', !opts.json),
          kl: progressBar('KL', !opts.json),
        };
        // One bar per phase, each closed when its phase completes (the phases run one after another).
        const onProgress = (phase: keyof typeof bars, done: number, total: number) => {
          bars[phase].update(done, total);
          if (done === total) bars[phase].stop();
        };
        const prepared = await prepareReference(reference, text!, { ...agreementSettings, onProgress });
        agreement = await measureAgreement(prepared, model, { ...agreementSettings, onProgress });
        await reference.engine.release();
      }

      const tasksStarted = performance.now();
      const bar = progressBar('tasks', !opts.json && tasks.length > 0);
      const { tasks: reports, groups: groupReports } =
        tasks.length > 0
          ? await runTasks(ckpt, engine, tokenizer!, loaded, {
              batchSize: generationBatch,
              threads,
              onProgress: (task, d, t) => bar.update(d, t, task),
            })
          : { tasks: [], groups: [] };
      bar.stop();
      const taskSeconds = (performance.now() - tasksStarted) / 1000;
      await engine.release();

      if (speedOptions) efficiency.speed = await measureSpeed(ckpt, speedOptions);
      const peakRss = peakRssBytes();
      const seconds = (performance.now() - started) / 1000;

      if (opts.json) {
        const out: Record<string, unknown> = { dir, precision: opts.precision };
        if (textMetrics) Object.assign(out, { text: opts.text, ...textMetrics });
        if (agreement) out.agreement = { reference: opts.reference, ...agreement };
        if (reports.length > 0) {
          out.tasks = reports.map(({ docs, ...summary }, i) =>
            opts.logSamples ? { ...summary, samples: docs.map((d, j) => sampleRecord(tasks[i].docs[j], d)) } : summary,
          );
        }
        if (groupReports.length > 0) out.groups = groupReports;
        out.efficiency = { ...efficiency, peakRssBytes: peakRss };
        out.seconds = seconds;
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      const sections: string[] = [];
      if (textMetrics) {
        const m = textMetrics;
        sections.push(
          table(
            [
              ['tokens', integer(m.tokens)],
              ['UTF-8 bytes', integer(m.bytes)],
              ['predictions scored', `${integer(m.predictions)} in ${m.windows} windows of ${window} (stride ${stride})`],
              ['total NLL (nats)', m.totalNll.toFixed(3)],
              ['mean NLL', m.meanNll.toFixed(5)],
              ['perplexity', m.perplexity.toFixed(4)],
              ['bits per byte', m.bitsPerByte.toFixed(5)],
              ['time', `${textSeconds.toFixed(1)} s (${integer(Math.round(m.predictions / textSeconds))} tokens/s)`],
              ...(opts.precision === 'fp32' ? [] : [['precision', `${opts.precision} (approximate; fp32 is the reference)`]]),
            ],
            [false, false],
          ),
        );
      }
      if (agreement) sections.push(agreementTable(agreement, opts.reference!));
      if (reports.length > 0) {
        const lines: string[] = [];
        // Tasks inside a requested group (mmlu's 57 subjects) are shown through the group's rows (all of them in --json).
        const grouped = new Set(groups.flatMap((g) => g.tasks).filter((t) => !requested.has(t)));
        const choiceReports = reports.filter((r) => !r.metrics.exact_match && !grouped.has(r.task));
        if (choiceReports.length > 0 || groupReports.length > 0) lines.push(taskTable(choiceReports, groupReports));
        const generationReports = reports.filter((r) => r.metrics.exact_match);
        if (generationReports.length > 0) lines.push(generationTable(generationReports));
        // Per task, or per outermost group for the tasks of a requested group (mmlu: one sum, not 57 entries).
        const outer = groups.filter(
          (g) => !groups.some((o) => o !== g && o.tasks.length > g.tasks.length && g.tasks.every((t) => o.tasks.includes(t))),
        );
        const truncatedIn = (names: string[]) => reports.filter((r) => names.includes(r.task)).reduce((a, r) => a + r.truncated, 0);
        const truncated = [
          ...reports.filter((r) => r.truncated > 0 && !grouped.has(r.task)).map((r) => `${r.task} ${r.truncated}`),
          ...outer.filter((g) => truncatedIn(g.tasks) > 0).map((g) => `${g.name} ${truncatedIn(g.tasks)}`),
        ];
        if (truncated.length > 0) lines.push(`inputs cut from the left to the model's maximum length: ${truncated.join(', ')}`);
        const shots = [...new Set(reports.map((r) => r.numFewshot))];
        const shotText =
          shots.length === 1
            ? shots[0] === 0
              ? 'zero-shot'
              : `${shots[0]}-shot`
            : `shots: ${reports.map((r) => `${r.task} ${r.numFewshot}`).join(', ')}`;
        lines.push(`${shotText}, LM-Evaluation-Harness definitions; ± is the standard error; ${taskSeconds.toFixed(1)} s`);
        sections.push(lines.join('\n\n'));
      }
      sections.push(efficiencyTable(efficiency, peakRss));
      console.log(sections.join('\n\n'));
    });
}

/** Prompt and decoded lengths for --speed, within the model's positions (max_position_embeddings) when it states them. */
function speedLengths(
  config: Record<string, unknown>,
  prompt: number | undefined,
  newTokens: number,
): { promptTokens: number; newTokens: number } {
  const max = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : Infinity;
  const promptTokens = prompt ?? Math.min(512, max - newTokens);
  if (promptTokens < 1 || promptTokens + newTokens > max) {
    throw new CompactError(
      `--speed: ${prompt ?? 'a prompt'} + ${newTokens} new tokens do not fit in max_position_embeddings ${max}; lower --prompt-tokens or --new-tokens`,
    );
  }
  return { promptTokens, newTokens };
}

/** Opens the reference model and checks that agreement with it is defined (same family, shared tokens). */
function openReference(dir: string, model: AgreementSide, threads: number | undefined): AgreementSide {
  const family = readConfig(dir).modelType;
  if (family !== model.ckpt.spec.modelType) {
    throw new CompactError(
      `--reference ${dir} is a ${family} model but ${model.ckpt.dir} is ${model.ckpt.spec.modelType}: agreement needs the dense model this one was pruned from`,
    );
  }
  const side = openAgreementSide(dir, threads);
  checkSharedTokens(side, model);
  return side;
}

function agreementTable(a: AgreementMetrics, reference: string): string {
  const g = a.greedy;
  return [
    `agreement with ${reference} on ${a.paragraphs} paragraphs`,
    table(
      [
        [
          'greedy agreement',
          `${g.meanAgreement.toFixed(4)} (mean common prefix / ${g.continuationChars} characters, ${g.prompts} prompts)`,
        ],
        ['identical continuations', `${g.exact} of ${g.prompts}`],
        [
          'mean KL(reference ‖ model)',
          `${a.kl.meanKl.toFixed(5)} nats over ${integer(a.kl.comparedPositions)} positions (${percent(a.kl.comparedPositions, a.kl.referencePositions)} of the reference's)`,
        ],
        ['same most likely token', `${percent(a.kl.top1Agreement, 1)} of those positions`],
        ['reference mass on removed tokens', a.kl.meanReferenceMassOutside.toExponential(3)],
      ],
      [false, false],
    ),
  ].join('\n');
}

function efficiencyTable(e: Efficiency, peakRss: number): string {
  const rows = [
    ['weights on disk', bytes(e.parameters.storedBytes)],
    ['peak RSS (this evaluation)', bytes(peakRss)],
  ];
  if (e.speed) {
    const s = e.speed;
    rows.push([
      'prefill',
      `${integer(Math.round(s.prefillTokensPerSecond))} tokens/s (${s.promptTokens} tokens in ${(s.prefillSeconds * 1000).toFixed(1)} ms, median of ${s.repeats})`,
    ]);
    rows.push([
      'decoding',
      `${s.msPerToken.toFixed(2)} ms/token (${s.newTokens} tokens after the prompt, median of ${s.repeats}; one sequence, key/value cache)`,
    ]);
  }
  if (e.pruning) {
    const { total, ...phases } = e.pruning.seconds;
    const breakdown = Object.entries(phases)
      .map(([phase, s]) => `${phase} ${s.toFixed(1)}`)
      .join(', ');
    rows.push(['pruning time', `${total.toFixed(1)} s (${breakdown}; ${e.pruning.threads} threads, ${e.pruning.cpu})`]);
  }
  return [parameterTable(e.parameters), table(rows, [false, false])].join('\n');
}

const fixed = (m: MeanWithStderr | undefined): [string, string] =>
  m ? [m.value.toFixed(4), m.stderr == null ? '—' : `± ${m.stderr.toFixed(4)}`] : ['—', ''];

export function taskTable(reports: TaskReport[], groups: GroupReport[] = []): string {
  const rows = [['task', 'split', 'n', 'acc', '', 'acc_norm', '', 'perplexity']];
  for (const r of reports) {
    rows.push([
      r.task,
      r.split,
      integer(r.n),
      ...fixed(r.metrics.acc),
      ...fixed(r.metrics.acc_norm),
      r.metrics.perplexity == null ? '—' : r.metrics.perplexity.toFixed(2),
    ]);
  }
  for (const g of groups) {
    // mmlu, then its categories indented (lm-eval's table shows them the same way).
    const name =
      g.group === 'mmlu' || !g.group.startsWith('mmlu_') || !groups.some((o) => o.group === 'mmlu') ? g.group : ` - ${g.group.slice(5)}`;
    rows.push([name, `${g.tasks} subjects, weighted by size`, integer(g.n), ...fixed(g.acc), '—', '', '—']);
  }
  return table(rows, [false, false, true, true, false, true, false, true]);
}

export function generationTable(reports: TaskReport[]): string {
  const filters = [...new Set(reports.flatMap((r) => Object.keys(r.metrics.exact_match!)))];
  const rows = [['task', 'split', 'n', ...filters.flatMap((f) => [`exact_match ${f}`, ''])]];
  for (const r of reports) rows.push([r.task, r.split, integer(r.n), ...filters.flatMap((f) => fixed(r.metrics.exact_match![f]))]);
  return table(rows, [false, false, true, ...filters.flatMap(() => [true, false])]);
}
