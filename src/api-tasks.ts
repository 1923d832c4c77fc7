/**
 * Zero-shot / few-shot benchmarks for the library's `evaluate`: the same task definitions,
 * data loading and scoring as `compact eval --tasks`, without printing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers';
import { loadTasks } from './cli/eval.js';
import { Decoder } from './engine/decoder.js';
import type { Engine } from './engine/engine.js';
import { modelMaxLength } from './eval/loglikelihood.js';
import { aggregateGroup, evaluateGenerationTask, evaluateTask, type GroupReport, type TaskReport } from './eval/zero-shot.js';
import type { Checkpoint } from './model/checkpoint.js';
import { encode } from './model/tokenizer.js';
import { readUserJsonObject } from './util/files.js';

export interface TaskSettings {
  /** Task names as `compact eval --tasks` takes them (`arc_easy`, `mmlu`, `mc:FILE.jsonl`, …). */
  tasks: string[];
  dataDir?: string;
  limit?: number;
  numFewshot?: number;
  batchSize: number;
  threads?: number;
  onProgress?: (task: string, done: number, total: number) => void;
}

export interface TaskResults {
  tasks: TaskReport[];
  groups: GroupReport[];
}

export async function runTasks(ckpt: Checkpoint, engine: Engine, tokenizer: Tokenizer, s: TaskSettings): Promise<TaskResults> {
  const { tasks, groups } = loadTasks(s.tasks.join(','), s.dataDir, s.limit, s.numFewshot);
  const dir = ckpt.dir;
  const configFile = join(dir, 'tokenizer_config.json');
  const maxLength = modelMaxLength(ckpt.spec.raw, existsSync(configFile) ? readUserJsonObject(configFile, { within: dir }) : {});
  const decoder = tasks.some((t) => t.task.generation) ? await Decoder.open(ckpt, { threads: s.threads }) : undefined;
  const eosIds = eosTokenIds(dir, ckpt.spec.raw);
  const reports: TaskReport[] = [];
  try {
    for (const { task, docs, numFewshot } of tasks) {
      const options = { maxLength, numFewshot, generationBatch: s.batchSize, onProgress: (d: number, t: number) => s.onProgress?.(task.name, d, t) };
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
  return { tasks: reports, groups: groups.map((g) => aggregateGroup(g.name, g.tasks.map((t) => reports.find((r) => r.task === t)!))) };
}

/** The token ids generation stops at: generation_config.json's eos_token_id (one or a list), else config.json's. */
export function eosTokenIds(dir: string, config: Record<string, unknown>): number[] {
  const file = join(dir, 'generation_config.json');
  const generation = existsSync(file) ? readUserJsonObject(file, { within: dir }) : {};
  const value = generation.eos_token_id ?? config.eos_token_id;
  const ids = Array.isArray(value) ? value : value == null ? [] : [value];
  return ids.filter((id): id is number => Number.isSafeInteger(id));
}
