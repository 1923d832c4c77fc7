/**
 * A task as LM-Evaluation-Harness's ConfigurableTask describes it (lm_eval/api/task.py, 0.4.13),
 * and how it turns documents into requests, few-shot contexts included:
 *
 *   context = description + Σ over the sampled shots (q + target_delimiter + answer + fewshot_delimiter) + q
 *
 * (fewshot_context / build_qa_turn: the description is the "system" turn; each shot is a user turn
 * q followed by target_delimiter, and an assistant turn, the answer, followed by
 * fewshot_delimiter; the evaluated document's q ends the context). For a multiple-choice shot the
 * answer is choices[target]; for "multiple input" tasks (WinoGrande) q is the gold choice and the
 * answer the shared continuation. Shots come from the task's few-shot split through its sampler
 * (fewshot.ts): lm-eval's default sampler (random.Random(1234).sample) or first_n.
 * Requests are then built as construct_requests does: multiple choice → (context,
 * target_delimiter + choice) per choice; multiple input → (context_i, target_delimiter + target);
 * loglikelihood → (context, target); generate_until → the context and the generation settings.
 */
import { createHash } from 'node:crypto';
import { CompactError, check } from '../../util/errors.js';
import { sampleFewshot, type Sampler } from './fewshot.js';
import { PyRandom } from './py-random.js';
import type { Row } from './readers.js';

export type Metric = 'acc' | 'acc_norm' | 'perplexity' | 'exact_match';
export type OutputType = 'multiple_choice' | 'loglikelihood' | 'generate_until';

/** Where a task's few-shot examples come from (lm-eval: fewshot_split, or training → validation → test). */
export interface FewshotSource<D> {
  /** The split's name in lm-eval's terms (e.g. "train", "dev"). */
  split: string;
  /** The file(s) it is read from, for messages. */
  files: string;
  load(dataDir: string, usedFor: string): Row<D>[];
  sampler: Sampler;
  /**
   * lm-eval hands the evaluated document to the sampler, which drops it from the shots, when
   * fewshot_split == test_split; with its YAMLs that means a task with neither (both None):
   * PIQA, HellaSwag, WinoGrande, BoolQ. Then the default sampler draws n + 1 and keeps the first
   * n that are not the document.
   */
  excludeEvalDoc: boolean;
}

/** A filter of generated text (lm-eval's filter_list entry): the response → the value scored. */
export interface GenerationFilter {
  name: string;
  apply(response: string): string;
}

/** generate_until settings (lm-eval's generation_kwargs) and exact_match's options. */
export interface GenerationConfig {
  /** Stop strings; the model's EOS text is added as lm-eval's HF model does. */
  until: string[];
  /** Tokens generated at most (lm-eval's max_gen_toks; HFLM's default is 256). */
  maxGenToks: number;
  filters: GenerationFilter[];
  /** exact_match: reference and prediction compared after these rewrites. */
  exactMatch: { ignoreCase: boolean; regexesToIgnore: RegExp[] };
}

/** A task as lm-eval's YAML describes it, over documents of type D. */
export interface TaskDescriptor<D> {
  name: string;
  /** The dataset and split the data file stands for (lm-eval evaluates the test split if it has one, else validation). */
  split: string;
  outputType: OutputType;
  /** Reads the documents (after lm-eval's process_docs, if the task has one). */
  load(dataDir: string): Row<D>[];
  /** The context; a number means "multiple inputs" (WinoGrande): the choices are the contexts and this is the gold index. */
  docToText(doc: D): string | number;
  docToChoice?(doc: D): string[];
  /** Gold choice index (multiple choice), the continuation (loglikelihood, multiple inputs) or the reference (generation). */
  docToTarget(doc: D): number | string;
  targetDelimiter: string;
  /** Between shots (default "\n\n"). */
  fewshotDelimiter?: string;
  /** Prepended to every context (lm-eval's description), e.g. MMLU's subject line. */
  description?: string;
  metrics: Metric[];
  /** lm-eval's num_fewshot in the task file (default 0). */
  defaultNumFewshot?: number;
  fewshot?: FewshotSource<D>;
  generation?: GenerationConfig;
}

/** One document as requests: (context, continuation) pairs scored by log-likelihood, or a context to continue. */
export interface TaskDoc {
  /** file:line of the document, for messages. */
  where: string;
  requests: { context: string; continuation: string }[];
  /** lm-eval's doc_to_choice strings (acc_norm divides by their length); empty for loglikelihood and generation tasks. */
  choices: string[];
  /** Index of the right request (−1 for loglikelihood and generation tasks). */
  gold: number;
  /** The target as text: the gold choice, the continuation, or the generation reference. */
  target: string;
  /** generate_until: the prompt to continue. */
  context?: string;
  /** Index of the document in its split. */
  index: number;
}

export interface LoadOptions {
  /** Shots per context (default: the task's own default, as lm-eval's task file says). */
  numFewshot?: number;
  /** Only the first `limit` documents (lm-eval's --limit); the sampler draws for those only, in order. */
  limit?: number;
  /** lm-eval's fewshot_random_seed (default 1234). */
  seed?: number;
}

export interface Task {
  name: string;
  split: string;
  outputType: OutputType;
  metrics: Metric[];
  defaultNumFewshot: number;
  /** "train (arc/ARC-Easy-train.jsonl)", or undefined when the task has no few-shot split. */
  fewshotSplit?: string;
  generation?: GenerationConfig;
  load(dataDir: string, options?: LoadOptions): TaskDoc[];
}

export const DEFAULT_FEWSHOT_SEED = 1234;

/** sha256 of a string, hex (what --log-samples records for prompts). */
export const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** The answer text of a shot (build_qa_turn: choices[a] when a is an index, else a). */
function shotParts<D>(task: TaskDescriptor<D>, doc: D): { q: string; a: string } {
  const text = task.docToText(doc);
  const target = task.docToTarget(doc);
  if (typeof text === 'number') return { q: task.docToChoice!(doc)[text], a: String(target) }; // multiple inputs
  if (typeof target === 'number') return { q: text, a: task.docToChoice!(doc)[target] };
  return { q: text, a: target };
}

/** construct_requests of lm-eval's ConfigurableTask for one document, after its few-shot prefix. */
export function buildDoc<D>(task: TaskDescriptor<D>, doc: D, where: string, index: number, prefix = ''): TaskDoc {
  const text = task.docToText(doc);
  if (task.outputType === 'loglikelihood' || task.outputType === 'generate_until') {
    check(typeof text === 'string', `${task.name}: doc_to_text must give a string`);
    const target = String(task.docToTarget(doc));
    if (task.outputType === 'generate_until') return { where, index, requests: [], choices: [], gold: -1, target, context: prefix + text };
    return { where, index, requests: [{ context: prefix + text, continuation: target }], choices: [], gold: -1, target };
  }
  const choices = task.docToChoice!(doc);
  const delimiter = task.targetDelimiter;
  if (typeof text === 'number') {
    // Multiple inputs: each choice is a context, the one target is the continuation.
    const target = String(task.docToTarget(doc));
    const continuation = `${delimiter}${target}`;
    return { where, index, requests: choices.map((choice) => ({ context: prefix + choice, continuation })), choices, gold: text, target };
  }
  const target = task.docToTarget(doc);
  const gold = typeof target === 'number' ? target : choices.indexOf(target);
  check(gold >= 0 && gold < choices.length, `${where}: gold answer ${JSON.stringify(target)} is not one of the ${choices.length} choices`);
  return {
    where,
    index,
    requests: choices.map((choice) => ({ context: prefix + text, continuation: `${delimiter}${choice}` })),
    choices,
    gold,
    target: choices[gold],
  };
}

export function defineTask<D>(descriptor: TaskDescriptor<D>): Task {
  const defaultNumFewshot = descriptor.defaultNumFewshot ?? 0;
  return {
    name: descriptor.name,
    split: descriptor.split,
    outputType: descriptor.outputType,
    metrics: descriptor.metrics,
    defaultNumFewshot,
    ...(descriptor.fewshot ? { fewshotSplit: `${descriptor.fewshot.split} (${descriptor.fewshot.files})` } : {}),
    ...(descriptor.generation ? { generation: descriptor.generation } : {}),
    load: (dataDir, options = {}) => {
      const numFewshot = options.numFewshot ?? defaultNumFewshot;
      check(Number.isSafeInteger(numFewshot) && numFewshot >= 0, `--num-fewshot must be a non-negative integer, got ${numFewshot}`);
      let rows = descriptor.load(dataDir);
      if (options.limit != null) rows = rows.slice(0, options.limit);
      const description = descriptor.description ?? '';
      if (numFewshot === 0) return rows.map((row, i) => buildDoc(descriptor, row.value, `${row.file}:${row.line}`, i, description));
      const source = descriptor.fewshot;
      if (!source) throw new CompactError(`task ${descriptor.name} has no few-shot split, so --num-fewshot must be 0 (got ${numFewshot})`);
      const pool = source.load(dataDir, `task ${descriptor.name} with --num-fewshot ${numFewshot} (its ${source.split} split)`);
      const rnd = new PyRandom(options.seed ?? DEFAULT_FEWSHOT_SEED); // set_fewshot_seed: one generator per task, drawn in document order
      const key = (d: D) => JSON.stringify(d); // lm-eval compares documents as dicts (x != eval_doc)
      const poolKeys = pool.map((r) => key(r.value));
      const delimiter = descriptor.fewshotDelimiter ?? '\n\n';
      return rows.map((row, i) => {
        const picked = sampleFewshot(
          source.sampler,
          rnd,
          poolKeys,
          numFewshot,
          source.excludeEvalDoc ? key(row.value) : undefined,
          () =>
            `task ${descriptor.name}: --num-fewshot ${numFewshot} but its ${source.split} split (${source.files}) has ${pool.length} documents` +
            (source.sampler === 'default' && source.excludeEvalDoc
              ? ` (lm-eval's sampler draws num_fewshot + 1 = ${numFewshot + 1} of them)`
              : ''),
        );
        const shots = picked.map((p) => {
          const { q, a } = shotParts(descriptor, pool[p].value);
          return a === '' ? q : `${q}${descriptor.targetDelimiter}${a}${delimiter}`; // no answer: the user turn alone, undelimited
        });
        return buildDoc(descriptor, row.value, `${row.file}:${row.line}`, i, description + shots.join(''));
      });
    },
  };
}
