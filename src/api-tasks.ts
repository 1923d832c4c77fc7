/**
 * Benchmarks as `compact eval --tasks` and the library's `evaluate` run them: task names resolved
 * and documents read (every file checked before any evaluation), then each task scored with the
 * lm-eval semantics of src/eval (log-likelihood tasks on the Engine, generation tasks on a Decoder).
 * Nothing here prints: the CLI draws the bars and the note about the bundled data.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers';
import { BUNDLED_TASK_DATA, DEFAULT_DATA_DIR } from './defaults.js';
import { Decoder } from './engine/decoder.js';
import type { Engine } from './engine/engine.js';
import { modelMaxLength } from './eval/loglikelihood.js';
import { resolveTasks, TASK_NAMES, type Task, type TaskDoc, type TaskGroup } from './eval/tasks/definitions.js';
import { aggregateGroup, evaluateGenerationTask, evaluateTask, type GroupReport, type TaskReport } from './eval/zero-shot.js';
import type { Checkpoint } from './model/checkpoint.js';
import { encode } from './model/tokenizer.js';
import { checkPositiveInteger, CompactError } from './util/errors.js';
import { readUserJsonObject } from './util/files.js';

export interface LoadedTasks {
  tasks: { task: Task; docs: TaskDoc[]; numFewshot: number }[];
  groups: TaskGroup[];
  /** No data folder was given and DEFAULT_DATA_DIR is absent: the bundled slices (BUNDLED_TASK_DATA) were read. */
  bundledData: boolean;
}

/** Resolves the task names and reads every task's documents, few-shot contexts built (so a bad file stops before any evaluation). */
export function loadTasks(list: string, dataDir: string | undefined, limit: number | undefined, numFewshot?: number): LoadedTasks {
  // 0 gave tasks of no documents (NaN accuracy); -1 dropped the last document and ran the rest.
  if (limit != null) checkPositiveInteger(limit, '--limit');
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new CompactError('--tasks is empty; known tasks: ' + TASK_NAMES.join(', '));
  const resolved = names.map(resolveTasks);
  const tasks = resolved.flatMap((r) => r.tasks).filter((t, i, all) => all.findIndex((o) => o.name === t.name) === i);
  const groups = resolved.flatMap((r) => r.groups);
  let dir = dataDir;
  let bundledData = false;
  if (tasks.some((t) => !t.name.startsWith('mc:'))) {
    if (dir == null) {
      dir = DEFAULT_DATA_DIR;
      // A fresh clone has no ../shared/data: fall back to the benchmark slices the tests use (the CLI says so).
      if (!existsSync(dir) && existsSync(BUNDLED_TASK_DATA)) {
        dir = BUNDLED_TASK_DATA;
        bundledData = true;
      }
      if (!existsSync(dir))
        throw new CompactError(
          `no benchmark data: --data-dir was not given and ${resolve(dir)} does not exist (give --data-dir, a folder with arc/, piqa/, hellaswag/, winogrande/, boolq/, openbookqa/, lambada/, mmlu/, gsm8k/; see docs/eval-tasks.md)`,
        );
    } else if (!existsSync(dir)) throw new CompactError(`--data-dir ${dir} does not exist`);
  }
  return {
    tasks: tasks.map((task) => {
      const shots = numFewshot ?? task.defaultNumFewshot;
      return { task, docs: task.load(dir ?? '.', { numFewshot: shots, limit }), numFewshot: shots };
    }),
    groups,
    bundledData,
  };
}

export interface TaskSettings {
  /** Sequences decoded together by generation tasks. */
  batchSize: number;
  threads?: number;
  onProgress?: (task: string, done: number, total: number) => void;
}

export interface TaskResults {
  tasks: TaskReport[];
  groups: GroupReport[];
}

export async function runTasks(
  ckpt: Checkpoint,
  engine: Engine,
  tokenizer: Tokenizer,
  loaded: LoadedTasks,
  s: TaskSettings,
): Promise<TaskResults> {
  const dir = ckpt.dir;
  const configFile = join(dir, 'tokenizer_config.json');
  const maxLength = modelMaxLength(ckpt.spec.raw, existsSync(configFile) ? readUserJsonObject(configFile, { within: dir }) : {});
  const decoder = loaded.tasks.some((t) => t.task.generation) ? await Decoder.open(ckpt, { threads: s.threads }) : undefined;
  const eosIds = eosTokenIds(dir, ckpt.spec.raw);
  const reports: TaskReport[] = [];
  try {
    for (const { task, docs, numFewshot } of loaded.tasks) {
      const options = {
        maxLength,
        numFewshot,
        generationBatch: s.batchSize,
        onProgress: (d: number, t: number) => s.onProgress?.(task.name, d, t),
      };
      if (task.generation) {
        const model = {
          decoder: decoder!,
          encode: (text: string) => encode(tokenizer, text),
          decode: (ids: number[]) => tokenizer.decode(ids, { skip_special_tokens: true }),
          eosIds,
          ...(eosIds.length > 0 ? { eosText: tokenizer.decode([eosIds[0]], { skip_special_tokens: false }) } : {}),
          maxLength,
        };
        reports.push(await evaluateGenerationTask(model, task, docs, options));
      } else reports.push(await evaluateTask(engine, (text) => encode(tokenizer, text), task, docs, options));
    }
  } finally {
    await decoder?.release();
  }
  return {
    tasks: reports,
    groups: loaded.groups.map((g) =>
      aggregateGroup(
        g.name,
        g.tasks.map((t) => reports.find((r) => r.task === t)!),
      ),
    ),
  };
}

/** The token ids generation stops at: generation_config.json's eos_token_id (one or a list), else config.json's. */
export function eosTokenIds(dir: string, config: Record<string, unknown>): number[] {
  const file = join(dir, 'generation_config.json');
  const generation = existsSync(file) ? readUserJsonObject(file, { within: dir }) : {};
  const value = generation.eos_token_id ?? config.eos_token_id;
  const ids = Array.isArray(value) ? value : value == null ? [] : [value];
  return ids.filter((id): id is number => Number.isSafeInteger(id));
}
