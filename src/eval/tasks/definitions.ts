/**
 * The zero-shot tasks as a declarative table, field for field after LM-Evaluation-Harness's task
 * configs (lm_eval/tasks/<task>/*.yaml and their utils): doc_to_text, doc_to_choice,
 * doc_to_target, target_delimiter " ", the split, the metrics. `buildDoc` turns one document into
 * (context, continuation) requests as lm-eval's ConfigurableTask.construct_requests does.
 * The readers take the file layouts in shared/data (see each folder's README).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { check } from '../../util/errors.js';
import { indexField, objectField, readJsonl, readLines, readTable, type Row, stringArrayField, stringField } from './readers.js';
import { pyCapitalize, pyStrip } from './text.js';

export type Metric = 'acc' | 'acc_norm' | 'perplexity';

/** A task as lm-eval's YAML describes it, over documents of type D. */
export interface TaskDescriptor<D> {
  name: string;
  /** The dataset and split the data file stands for (lm-eval evaluates the test split if it has one, else validation). */
  split: string;
  outputType: 'multiple_choice' | 'loglikelihood';
  /** Reads the documents (after lm-eval's process_docs, if the task has one). */
  load(dataDir: string): Row<D>[];
  /** The context; a number means "multiple inputs" (WinoGrande): the choices are the contexts and this is the gold index. */
  docToText(doc: D): string | number;
  docToChoice?(doc: D): string[];
  /** Gold choice index (multiple choice) or the continuation (loglikelihood, multiple inputs). */
  docToTarget(doc: D): number | string;
  targetDelimiter: string;
  metrics: Metric[];
}

/** One document as requests: (context, continuation) pairs, scored by log-likelihood. */
export interface TaskDoc {
  /** file:line of the document, for messages. */
  where: string;
  requests: { context: string; continuation: string }[];
  /** lm-eval's doc_to_choice strings (acc_norm divides by their length); empty for loglikelihood tasks. */
  choices: string[];
  /** Index of the right request (−1 for loglikelihood tasks). */
  gold: number;
}

export interface Task {
  name: string;
  split: string;
  outputType: 'multiple_choice' | 'loglikelihood';
  metrics: Metric[];
  load(dataDir: string): TaskDoc[];
}

/** construct_requests of lm-eval's ConfigurableTask, zero-shot, no chat template. */
export function buildDoc<D>(task: TaskDescriptor<D>, doc: D, where: string): TaskDoc {
  const text = task.docToText(doc);
  if (task.outputType === 'loglikelihood') {
    check(typeof text === 'string', `${task.name}: doc_to_text must give a string`);
    return { where, requests: [{ context: text, continuation: String(task.docToTarget(doc)) }], choices: [], gold: -1 };
  }
  const choices = task.docToChoice!(doc);
  const delimiter = task.targetDelimiter;
  if (typeof text === 'number') {
    // Multiple inputs: each choice is a context, the one target is the continuation.
    const continuation = `${delimiter}${task.docToTarget(doc)}`;
    return { where, requests: choices.map((context) => ({ context, continuation })), choices, gold: text };
  }
  const target = task.docToTarget(doc);
  const gold = typeof target === 'number' ? target : choices.indexOf(target);
  check(gold >= 0 && gold < choices.length, `${where}: gold answer ${JSON.stringify(target)} is not one of the ${choices.length} choices`);
  return { where, requests: choices.map((choice) => ({ context: text, continuation: `${delimiter}${choice}` })), choices, gold };
}

export function defineTask<D>(descriptor: TaskDescriptor<D>): Task {
  return {
    name: descriptor.name,
    split: descriptor.split,
    outputType: descriptor.outputType,
    metrics: descriptor.metrics,
    load: (dataDir) => descriptor.load(dataDir).map((row) => buildDoc(descriptor, row.value, `${row.file}:${row.line}`)),
  };
}

// ---- ARC (lm_eval/tasks/arc/arc_easy.yaml, arc_challenge.yaml) ----

interface ArcDoc {
  question: string;
  choices: string[];
  labels: string[];
  answerKey: string;
}

function readArc(file: string, usedFor: string): Row<ArcDoc>[] {
  return readJsonl(file, usedFor).map((row) => {
    const choices = objectField(row, 'choices');
    const text = stringArrayField(row, 'choices.text', choices.value.text);
    const labels = stringArrayField(row, 'choices.label', choices.value.label);
    check(labels.length === text.length, `${row.file}:${row.line}: field "choices": ${text.length} texts but ${labels.length} labels`);
    const answerKey = stringField(row, 'answerKey');
    check(labels.includes(answerKey), `${row.file}:${row.line}: field "answerKey" ${JSON.stringify(answerKey)} is not one of the labels ${labels.join(', ')}`);
    return { ...row, value: { question: stringField(row, 'question'), choices: text, labels, answerKey } };
  });
}

const arc = (name: string, file: string): TaskDescriptor<ArcDoc> => ({
  name,
  split: `allenai/ai2_arc ${file.split('-')[1]}, test`,
  outputType: 'multiple_choice',
  load: (dir) => readArc(join(dir, 'arc', file), `task ${name}`),
  docToText: (d) => `Question: ${d.question}\nAnswer:`,
  docToChoice: (d) => d.choices,
  docToTarget: (d) => d.labels.indexOf(d.answerKey),
  targetDelimiter: ' ',
  metrics: ['acc', 'acc_norm'],
});

// ---- PIQA (lm_eval/tasks/piqa/piqa.yaml) ----

interface PiqaDoc {
  goal: string;
  sol1: string;
  sol2: string;
  label: number;
}

function readPiqa(dir: string): Row<PiqaDoc>[] {
  const file = join(dir, 'piqa', 'valid.jsonl');
  const labelFile = join(dir, 'piqa', 'valid-labels.lst');
  const rows = readJsonl(file, 'task piqa');
  const labels = readLines(labelFile, 'task piqa').filter((l) => l.value.trim() !== '');
  check(labels.length === rows.length, `${labelFile}: ${labels.length} labels for the ${rows.length} questions of ${file}`);
  return rows.map((row, i) => ({
    ...row,
    value: { goal: stringField(row, 'goal'), sol1: stringField(row, 'sol1'), sol2: stringField(row, 'sol2'), label: indexField({ ...labels[i], value: {} }, 'label', 2, labels[i].value) },
  }));
}

// ---- HellaSwag (lm_eval/tasks/hellaswag/hellaswag.yaml, utils.py) ----

interface HellaswagDoc {
  query: string;
  choices: string[];
  gold: number;
}

/** lm-eval's hellaswag preprocess(): strip, " [title]" → ". ", drop every [...], "  " → " ". */
export function hellaswagPreprocess(text: string): string {
  return pyStrip(text).replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

function readHellaswag(dir: string): Row<HellaswagDoc>[] {
  const jsonl = join(dir, 'hellaswag', 'hellaswag_val.jsonl');
  if (existsSync(jsonl)) {
    // The original release (rowanz/hellaswag data/hellaswag_val.jsonl, same fields as HF Rowan/hellaswag): process_docs exactly.
    return readJsonl(jsonl, 'task hellaswag').map((row) => {
      const endings = stringArrayField(row, 'endings');
      const ctx = `${stringField(row, 'ctx_a')} ${pyCapitalize(stringField(row, 'ctx_b'))}`;
      return {
        ...row,
        value: { query: hellaswagPreprocess(`${stringField(row, 'activity_label')}: ${ctx}`), choices: endings.map(hellaswagPreprocess), gold: indexField(row, 'label', endings.length) },
      };
    });
  }
  // llama.cpp's 6-lines-per-task text (shared/data): "<label>: <ctx>", gold, 4 endings, already cleaned
  // by its extractor; lm-eval's preprocess() is applied again (a no-op on most lines). This layout has
  // lost the ctx_a / ctx_b boundary, so lm-eval's ctx_b.capitalize() cannot be redone (see docs).
  const file = join(dir, 'hellaswag', 'hellaswag_val_full.txt');
  const lines = readLines(file, 'task hellaswag');
  check(lines.length % 6 === 0, `${file}: ${lines.length} lines; expected 6 per task (context, gold label, 4 endings)`);
  const docs: Row<HellaswagDoc>[] = [];
  for (let i = 0; i < lines.length; i += 6) {
    const row = { file, line: lines[i].line, value: {} };
    check(lines[i].value.includes(': '), `${file}:${lines[i].line}: expected "<activity label>: <context>"`);
    const gold = indexField({ ...row, line: lines[i + 1].line }, 'gold label', 4, lines[i + 1].value);
    docs.push({ ...row, value: { query: hellaswagPreprocess(lines[i].value), choices: lines.slice(i + 2, i + 6).map((l) => hellaswagPreprocess(l.value)), gold } });
  }
  return docs;
}

// ---- WinoGrande (lm_eval/tasks/winogrande/default.yaml, preprocess_winogrande.py) ----

interface WinograndeDoc {
  sentence: string;
  options: string[];
  answer: number;
}

function readWinogrande(dir: string): Row<WinograndeDoc>[] {
  return readJsonl(join(dir, 'winogrande', 'winogrande_dev.jsonl'), 'task winogrande').map((row) => {
    const sentence = stringField(row, 'sentence');
    check(sentence.includes('_'), `${row.file}:${row.line}: field "sentence" has no "_" blank`);
    const answer = stringField(row, 'answer');
    check(answer === '1' || answer === '2', `${row.file}:${row.line}: field "answer" must be "1" or "2", got ${JSON.stringify(answer)}`);
    return { ...row, value: { sentence, options: [stringField(row, 'option1'), stringField(row, 'option2')], answer: Number(answer) - 1 } };
  });
}

// ---- BoolQ (lm_eval/tasks/super_glue/boolq/default.yaml) ----

interface BoolqDoc {
  passage: string;
  question: string;
  label: number;
}

function readBoolq(dir: string): Row<BoolqDoc>[] {
  return readTable(join(dir, 'boolq', 'boolq_validation.csv'), 'task boolq', ',', ['question', 'passage', 'label']).map((row) => ({
    ...row,
    value: { passage: row.value.passage, question: row.value.question, label: indexField(row, 'label', 2) },
  }));
}

// ---- OpenBookQA (lm_eval/tasks/openbookqa/openbookqa.yaml) ----

interface OpenbookqaDoc {
  questionStem: string;
  choices: string[];
  labels: string[];
  answerKey: string;
}

function readOpenbookqa(dir: string): Row<OpenbookqaDoc>[] {
  const labels = ['A', 'B', 'C', 'D'];
  return readTable(join(dir, 'openbookqa', 'test.tsv'), 'task openbookqa', '\t', ['Question Stem', 'Choices', 'Answer Key']).map((row) => {
    // "(A) text (B) text (C) text (D) text": the original TSV's rendering of choices.text.
    const m = /^\(A\) (.*) \(B\) (.*) \(C\) (.*) \(D\) (.*)$/s.exec(row.value.Choices);
    check(m, `${row.file}:${row.line}: field "Choices" is not "(A) … (B) … (C) … (D) …"`);
    const answerKey = row.value['Answer Key'];
    check(labels.includes(answerKey.trimStart()), `${row.file}:${row.line}: field "Answer Key" must be one of A, B, C, D, got ${JSON.stringify(answerKey)}`);
    return { ...row, value: { questionStem: row.value['Question Stem'], choices: m.slice(1, 5), labels, answerKey } };
  });
}

// ---- LAMBADA (lm_eval/tasks/lambada/lambada_openai.yaml) ----

function readLambada(dir: string): Row<string>[] {
  return readJsonl(join(dir, 'lambada', 'lambada_test.jsonl'), 'task lambada_openai').map((row) => {
    const text = stringField(row, 'text');
    check(text.includes(' '), `${row.file}:${row.line}: field "text" has no space, so no last word to predict`);
    return { ...row, value: text };
  });
}

// ---- Your own multiple-choice file (mc:FILE) ----

interface McDoc {
  context: string;
  choices: string[];
  gold: number;
}

export function readMultipleChoice(file: string): Row<McDoc>[] {
  return readJsonl(file, `task mc:${file}`).map((row) => {
    const choices = stringArrayField(row, 'choices');
    choices.forEach((c, i) => check(c.length > 0, `${row.file}:${row.line}: field "choices": choice ${i} is empty`));
    return { ...row, value: { context: stringField(row, 'context', { nonEmpty: true }), choices, gold: indexField(row, 'gold', choices.length) } };
  });
}

export function multipleChoiceTask(file: string): Task {
  return defineTask<McDoc>({
    name: `mc:${file}`,
    split: 'multiple-choice JSONL',
    outputType: 'multiple_choice',
    load: () => readMultipleChoice(file),
    docToText: (d) => d.context,
    docToChoice: (d) => d.choices,
    docToTarget: (d) => d.gold,
    targetDelimiter: ' ',
    metrics: ['acc', 'acc_norm'],
  });
}

export const TASKS: Task[] = [
  defineTask(arc('arc_easy', 'ARC-Easy-test.jsonl')),
  defineTask(arc('arc_challenge', 'ARC-Challenge-test.jsonl')),
  defineTask<PiqaDoc>({
    name: 'piqa',
    split: 'PIQA validation',
    outputType: 'multiple_choice',
    load: readPiqa,
    docToText: (d) => `Question: ${d.goal}\nAnswer:`,
    docToChoice: (d) => [d.sol1, d.sol2],
    docToTarget: (d) => d.label,
    targetDelimiter: ' ',
    metrics: ['acc', 'acc_norm'],
  }),
  defineTask<HellaswagDoc>({
    name: 'hellaswag',
    split: 'HellaSwag validation',
    outputType: 'multiple_choice',
    load: readHellaswag,
    docToText: (d) => d.query,
    docToChoice: (d) => d.choices,
    docToTarget: (d) => d.gold,
    targetDelimiter: ' ',
    metrics: ['acc', 'acc_norm'],
  }),
  defineTask<WinograndeDoc>({
    name: 'winogrande',
    split: 'winogrande_xl validation (dev)',
    outputType: 'multiple_choice',
    load: readWinogrande,
    // Partial scoring: the option fills the blank in the context; only the shared rest is scored.
    docToText: (d) => d.answer,
    docToChoice: (d) => d.options.map((option) => d.sentence.slice(0, d.sentence.indexOf('_')) + option),
    docToTarget: (d) => pyStrip(d.sentence.slice(d.sentence.indexOf('_') + 1)),
    targetDelimiter: ' ',
    metrics: ['acc'],
  }),
  defineTask<BoolqDoc>({
    name: 'boolq',
    split: 'super_glue/boolq validation',
    outputType: 'multiple_choice',
    load: readBoolq,
    docToText: (d) => `${d.passage}\nQuestion: ${d.question}?\nAnswer:`,
    docToChoice: () => ['no', 'yes'],
    docToTarget: (d) => d.label,
    targetDelimiter: ' ',
    metrics: ['acc'],
  }),
  defineTask<OpenbookqaDoc>({
    name: 'openbookqa',
    split: 'openbookqa main, test',
    outputType: 'multiple_choice',
    load: readOpenbookqa,
    docToText: (d) => d.questionStem,
    docToChoice: (d) => d.choices,
    docToTarget: (d) => d.labels.indexOf(d.answerKey.trimStart()),
    targetDelimiter: ' ',
    metrics: ['acc', 'acc_norm'],
  }),
  defineTask<string>({
    name: 'lambada_openai',
    split: 'lambada_openai test',
    outputType: 'loglikelihood',
    load: readLambada,
    docToText: (text) => text.split(' ').slice(0, -1).join(' '),
    docToTarget: (text) => ` ${text.split(' ').at(-1)}`,
    targetDelimiter: ' ',
    metrics: ['perplexity', 'acc'],
  }),
];

export const TASK_NAMES = TASKS.map((t) => t.name);

/** A task by name, or mc:FILE for a multiple-choice JSONL file. */
export function resolveTask(name: string): Task {
  if (name.startsWith('mc:')) {
    check(name.length > 3, 'task "mc:" needs a file: mc:path/to/file.jsonl');
    return multipleChoiceTask(name.slice(3));
  }
  const task = TASKS.find((t) => t.name === name);
  check(task, `unknown task ${JSON.stringify(name)}; known: ${TASK_NAMES.join(', ')}, or mc:FILE.jsonl for your own multiple-choice file`);
  return task;
}
