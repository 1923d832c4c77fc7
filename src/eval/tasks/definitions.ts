/**
 * The zero-shot tasks as a declarative table, field for field after LM-Evaluation-Harness's task
 * configs (lm_eval/tasks/<task>/*.yaml and their utils): doc_to_text, doc_to_choice,
 * doc_to_target, target_delimiter " ", the split, the metrics. `buildDoc` turns one document into
 * (context, continuation) requests as lm-eval's ConfigurableTask.construct_requests does.
 * The readers take the file layouts in shared/data (see each folder's README).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CompactError, check } from '../../util/errors.js';
import { indexField, objectField, readJsonl, readLines, readTable, type Row, stringArrayField, stringField } from './readers.js';
import { GSM8K } from './gsm8k.js';
import { mmluTasks, MMLU_GROUPS, MMLU_SUBJECTS, type TaskGroup } from './mmlu.js';
import { defineTask, type FewshotSource, type Task, type TaskDescriptor } from './task.js';
import { pyCapitalize, pyStrip } from './text.js';

export { buildDoc, defineTask, type Metric, type Task, type TaskDescriptor, type TaskDoc } from './task.js';
export type { TaskGroup } from './mmlu.js';

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
    check(
      labels.includes(answerKey),
      `${row.file}:${row.line}: field "answerKey" ${JSON.stringify(answerKey)} is not one of the labels ${labels.join(', ')}`,
    );
    return { ...row, value: { question: stringField(row, 'question'), choices: text, labels, answerKey } };
  });
}

/** A few-shot split lm-eval reads and shared/data lacks: the file is looked for in the data dir. */
function trainSplit<D>(files: string, load: (dir: string, usedFor: string) => Row<D>[], excludeEvalDoc: boolean): FewshotSource<D> {
  return { split: 'train', files, load, sampler: 'default', excludeEvalDoc };
}

const arc = (name: string, file: string): TaskDescriptor<ArcDoc> => ({
  name,
  split: `allenai/ai2_arc ${file.split('-')[1]}, test`,
  outputType: 'multiple_choice',
  load: (dir) => readArc(join(dir, 'arc', file), `task ${name}`),
  // lm-eval: training_split train, no fewshot_split, test_split test (so the document is not excluded).
  fewshot: trainSplit(
    `arc/${file.replace('-test', '-train')}`,
    (dir, usedFor) => readArc(join(dir, 'arc', file.replace('-test', '-train')), usedFor),
    false,
  ),
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

function readPiqa(dir: string, split = 'valid', usedFor = 'task piqa'): Row<PiqaDoc>[] {
  const file = join(dir, 'piqa', `${split}.jsonl`);
  const labelFile = join(dir, 'piqa', `${split}-labels.lst`);
  const rows = readJsonl(file, usedFor);
  const labels = readLines(labelFile, usedFor).filter((l) => l.value.trim() !== '');
  check(labels.length === rows.length, `${labelFile}: ${labels.length} labels for the ${rows.length} questions of ${file}`);
  return rows.map((row, i) => ({
    ...row,
    value: {
      goal: stringField(row, 'goal'),
      sol1: stringField(row, 'sol1'),
      sol2: stringField(row, 'sol2'),
      label: indexField({ ...labels[i], value: {} }, 'label', 2, labels[i].value),
    },
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
  return pyStrip(text)
    .replaceAll(' [title]', '. ')
    .replace(/\[.*?\]/g, '')
    .replaceAll('  ', ' ');
}

function readHellaswagJsonl(jsonl: string, usedFor: string): Row<HellaswagDoc>[] {
  return readJsonl(jsonl, usedFor).map((row) => {
    const endings = stringArrayField(row, 'endings');
    const ctx = `${stringField(row, 'ctx_a')} ${pyCapitalize(stringField(row, 'ctx_b'))}`;
    return {
      ...row,
      value: {
        query: hellaswagPreprocess(`${stringField(row, 'activity_label')}: ${ctx}`),
        choices: endings.map(hellaswagPreprocess),
        gold: indexField(row, 'label', endings.length),
      },
    };
  });
}

function readHellaswag(dir: string): Row<HellaswagDoc>[] {
  const jsonl = join(dir, 'hellaswag', 'hellaswag_val.jsonl');
  // The original release (rowanz/hellaswag data/hellaswag_val.jsonl, same fields as HF Rowan/hellaswag): process_docs exactly.
  if (existsSync(jsonl)) return readHellaswagJsonl(jsonl, 'task hellaswag');
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
    docs.push({
      ...row,
      value: {
        query: hellaswagPreprocess(lines[i].value),
        choices: lines.slice(i + 2, i + 6).map((l) => hellaswagPreprocess(l.value)),
        gold,
      },
    });
  }
  return docs;
}

// ---- WinoGrande (lm_eval/tasks/winogrande/default.yaml, preprocess_winogrande.py) ----

interface WinograndeDoc {
  sentence: string;
  options: string[];
  answer: number;
}

function readWinogrande(dir: string, file = 'winogrande_dev.jsonl', usedFor = 'task winogrande'): Row<WinograndeDoc>[] {
  return readJsonl(join(dir, 'winogrande', file), usedFor).map((row) => {
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

function readBoolq(dir: string, file = 'boolq_validation.csv', usedFor = 'task boolq'): Row<BoolqDoc>[] {
  return readTable(join(dir, 'boolq', file), usedFor, ',', ['question', 'passage', 'label']).map((row) => ({
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

function readOpenbookqa(dir: string, file = 'test.tsv', usedFor = 'task openbookqa'): Row<OpenbookqaDoc>[] {
  const labels = ['A', 'B', 'C', 'D'];
  return readTable(join(dir, 'openbookqa', file), usedFor, '\t', ['Question Stem', 'Choices', 'Answer Key']).map((row) => {
    // "(A) text (B) text (C) text (D) text": the original TSV's rendering of choices.text.
    const m = /^\(A\) (.*) \(B\) (.*) \(C\) (.*) \(D\) (.*)$/s.exec(row.value.Choices);
    check(m, `${row.file}:${row.line}: field "Choices" is not "(A) … (B) … (C) … (D) …"`);
    const answerKey = row.value['Answer Key'];
    check(
      labels.includes(answerKey.trimStart()),
      `${row.file}:${row.line}: field "Answer Key" must be one of A, B, C, D, got ${JSON.stringify(answerKey)}`,
    );
    return { ...row, value: { questionStem: row.value['Question Stem'], choices: m.slice(1, 5), labels, answerKey } };
  });
}

// ---- LAMBADA (lm_eval/tasks/lambada/lambada_openai.yaml) ----

function readLambada(dir: string, usedFor = 'task lambada_openai'): Row<string>[] {
  return readJsonl(join(dir, 'lambada', 'lambada_test.jsonl'), usedFor).map((row) => {
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
    return {
      ...row,
      value: { context: stringField(row, 'context', { nonEmpty: true }), choices, gold: indexField(row, 'gold', choices.length) },
    };
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
    load: (dir) => readPiqa(dir),
    // lm-eval: test_split null and no fewshot_split, so fewshot_split == test_split and the document is excluded.
    fewshot: trainSplit('piqa/train.jsonl + piqa/train-labels.lst', (dir, usedFor) => readPiqa(dir, 'train', usedFor), true),
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
    fewshot: trainSplit(
      'hellaswag/hellaswag_train.jsonl',
      (dir, usedFor) => readHellaswagJsonl(join(dir, 'hellaswag', 'hellaswag_train.jsonl'), usedFor),
      true,
    ),
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
    load: (dir) => readWinogrande(dir),
    fewshot: trainSplit(
      'winogrande/winogrande_train_xl.jsonl',
      (dir, usedFor) => readWinogrande(dir, 'winogrande_train_xl.jsonl', usedFor),
      true,
    ),
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
    load: (dir) => readBoolq(dir),
    fewshot: trainSplit('boolq/boolq_train.csv', (dir, usedFor) => readBoolq(dir, 'boolq_train.csv', usedFor), true),
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
    load: (dir) => readOpenbookqa(dir),
    fewshot: trainSplit('openbookqa/train.tsv', (dir, usedFor) => readOpenbookqa(dir, 'train.tsv', usedFor), false),
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
    load: (dir) => readLambada(dir),
    // No training or validation split: lm-eval draws shots from the test split itself, and (test_split
    // "test" ≠ fewshot_split None) does not exclude the evaluated document.
    fewshot: { split: 'test', files: 'lambada/lambada_test.jsonl', load: readLambada, sampler: 'default', excludeEvalDoc: false },
    docToText: (text) => text.split(' ').slice(0, -1).join(' '),
    docToTarget: (text) => ` ${text.split(' ').at(-1)}`,
    targetDelimiter: ' ',
    metrics: ['perplexity', 'acc'],
  }),
];

export const TASK_NAMES = [...TASKS.map((t) => t.name), 'gsm8k', 'mmlu', 'mmlu_<subject>'];

const MMLU_TASKS = new Map(mmluTasks().map((t) => [t.name, t]));

const unknown = (name: string) =>
  new CompactError(
    name.startsWith('mmlu_')
      ? `unknown MMLU subject or category ${JSON.stringify(name.slice(5))}; subjects: ${MMLU_SUBJECTS.join(', ')}; categories: stem, other, social_sciences, humanities`
      : `unknown task ${JSON.stringify(name)}; known: ${TASKS.map((t) => t.name).join(', ')}, gsm8k, mmlu (or mmlu_<subject>, mmlu_<category>), or mc:FILE.jsonl for your own multiple-choice file`,
  );

/** A task by name (mmlu_<subject>, gsm8k, …), or mc:FILE for a multiple-choice JSONL file. */
export function resolveTask(name: string): Task {
  if (name.startsWith('mc:')) {
    check(name.length > 3, 'task "mc:" needs a file: mc:path/to/file.jsonl');
    return multipleChoiceTask(name.slice(3));
  }
  const task = name === 'gsm8k' ? GSM8K : (TASKS.find((t) => t.name === name) ?? MMLU_TASKS.get(name));
  if (!task) throw unknown(name);
  return task;
}

/** A task or a group of tasks (mmlu, mmlu_stem, …): its leaf tasks, and the groups to aggregate (outermost first). */
export function resolveTasks(name: string): { tasks: Task[]; groups: TaskGroup[] } {
  const group = MMLU_GROUPS.find((g) => g.name === name);
  if (group) return { tasks: group.tasks.map((t) => MMLU_TASKS.get(t)!), groups: [group, ...group.subgroups] };
  return { tasks: [resolveTask(name)], groups: [] };
}
