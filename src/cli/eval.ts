import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Engine } from '../engine/engine.js';
import { modelMaxLength } from '../eval/loglikelihood.js';
import type { MeanWithStderr } from '../eval/multiple-choice.js';
import { resolveTask, TASK_NAMES, type Task, type TaskDoc } from '../eval/tasks/definitions.js';
import { evaluateText, type TextMetrics } from '../eval/text-metrics.js';
import { evaluateTask, type TaskReport } from '../eval/zero-shot.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { CompactError } from '../util/errors.js';
import { readUserJson, readUserText } from '../util/files.js';
import { integer, table } from './format.js';
import { progressBar } from './progress.js';

interface EvalOptions {
  text?: string;
  tasks?: string;
  dataDir?: string;
  limit?: string;
  window: string;
  stride?: string;
  threads?: string;
  json?: boolean;
}

/** Where the benchmark files are looked for without --data-dir (relative to the current directory). */
export const DEFAULT_DATA_DIR = '../shared/data';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('score a text (tokens, UTF-8 bytes, total NLL, perplexity, bits per byte) and/or zero-shot tasks with LM-Evaluation-Harness semantics')
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .option('--text <file>', 'UTF-8 text file, encoded whole with the model tokenizer')
    .option('--tasks <list>', `comma-separated zero-shot tasks: ${TASK_NAMES.join(', ')}, or mc:FILE.jsonl (your own multiple choice: {"context", "choices", "gold"} per line)`)
    .option('--data-dir <dir>', `folder of the benchmark files (arc/, piqa/, … as in shared/data; default: ${DEFAULT_DATA_DIR} if it exists)`)
    .option('--limit <n>', 'evaluate only the first n documents of each task')
    .option('--window <n>', 'inputs per window: window w scores ids[s+1 .. s+w] from ids[s .. s+w-1]', '512')
    .option('--stride <n>', 'tokens between window starts (default: the window, i.e. no overlap); predictions are never scored twice')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: EvalOptions) => {
      // Every check on the user's input comes first: a mistake stops before any evaluation or output.
      const window = positiveInt(opts.window, '--window');
      const stride = opts.stride == null ? window : positiveInt(opts.stride, '--stride');
      const threads = opts.threads ? positiveInt(opts.threads, '--threads') : undefined;
      const limit = opts.limit == null ? undefined : positiveInt(opts.limit, '--limit');
      if (opts.text == null && opts.tasks == null) throw new CompactError('nothing to evaluate: give --text FILE and/or --tasks LIST');
      const text = opts.text == null ? undefined : readTextFile(opts.text);
      const tasks = opts.tasks == null ? [] : loadTasks(opts.tasks, opts.dataDir, limit);
      const ckpt = openCheckpoint(dir);
      const tokenizer = loadTokenizer(dir);
      const engine = new Engine(ckpt, { threads });
      const started = performance.now();

      let textMetrics: TextMetrics | undefined;
      if (text != null) {
        const ids = encode(tokenizer, text);
        const bar = progressBar('eval', !opts.json);
        textMetrics = await evaluateText(engine, ids, Buffer.byteLength(text, 'utf8'), { window, stride, onProgress: (d, t) => bar.update(d, t) });
        bar.stop();
      }
      const textSeconds = (performance.now() - started) / 1000;
      const reports: TaskReport[] = [];
      if (tasks.length > 0) {
        const configFile = join(dir, 'tokenizer_config.json');
        const maxLength = modelMaxLength(ckpt.spec.raw, existsSync(configFile) ? (readUserJson(configFile) as Record<string, unknown>) : {});
        for (const { task, docs } of tasks) {
          const bar = progressBar(task.name, !opts.json);
          reports.push(await evaluateTask(engine, (s) => encode(tokenizer, s), task, docs, { maxLength, onProgress: (d, t) => bar.update(d, t) }));
          bar.stop();
        }
      }
      await engine.release();
      const seconds = (performance.now() - started) / 1000;

      if (opts.json) {
        const out: Record<string, unknown> = { dir };
        if (textMetrics) Object.assign(out, { text: opts.text, ...textMetrics });
        if (reports.length > 0) out.tasks = reports.map(({ docs: _, ...summary }) => summary);
        out.seconds = seconds;
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      if (textMetrics) {
        const m = textMetrics;
        console.log(
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
            ],
            [false, false],
          ),
        );
      }
      if (reports.length > 0) {
        if (textMetrics) console.log('');
        console.log(taskTable(reports));
        const truncated = reports.filter((r) => r.truncated > 0).map((r) => `${r.task} ${r.truncated}`);
        if (truncated.length > 0) console.log(`inputs cut from the left to the model's maximum length: ${truncated.join(', ')}`);
        console.log(`zero-shot, LM-Evaluation-Harness definitions; ± is the standard error; ${(seconds - textSeconds).toFixed(1)} s`);
      }
    });
}

const fixed = (m: MeanWithStderr | undefined): [string, string] => (m ? [m.value.toFixed(4), m.stderr == null ? '—' : `± ${m.stderr.toFixed(4)}`] : ['—', '']);

export function taskTable(reports: TaskReport[]): string {
  const rows = [['task', 'split', 'n', 'acc', '', 'acc_norm', '', 'perplexity']];
  for (const r of reports) {
    rows.push([r.task, r.split, integer(r.n), ...fixed(r.metrics.acc), ...fixed(r.metrics.acc_norm), r.metrics.perplexity == null ? '—' : r.metrics.perplexity.toFixed(2)]);
  }
  return table(rows, [false, false, true, true, false, true, false, true]);
}

/** Resolves the task names and reads every task's documents (so a bad file stops before any evaluation). */
export function loadTasks(list: string, dataDir: string | undefined, limit: number | undefined): { task: Task; docs: TaskDoc[] }[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new CompactError('--tasks is empty; known tasks: ' + TASK_NAMES.join(', '));
  const tasks = names.map(resolveTask);
  let dir = dataDir;
  if (tasks.some((t) => !t.name.startsWith('mc:'))) {
    if (dir == null) {
      dir = DEFAULT_DATA_DIR;
      if (!existsSync(dir)) throw new CompactError(`no benchmark data: --data-dir was not given and ${resolve(dir)} does not exist (give --data-dir, a folder with arc/, piqa/, hellaswag/, winogrande/, boolq/, openbookqa/, lambada/; see docs/eval-tasks.md)`);
    } else if (!existsSync(dir)) throw new CompactError(`--data-dir ${dir} does not exist`);
  }
  return tasks.map((task) => {
    const docs = task.load(dir ?? '.');
    return { task, docs: limit == null ? docs : docs.slice(0, limit) };
  });
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CompactError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function readTextFile(file: string): string {
  const text = readUserText(file);
  if (text.length === 0) throw new CompactError(`${file}: the text is empty`);
  return text;
}
