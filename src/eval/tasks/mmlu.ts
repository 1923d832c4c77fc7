/**
 * MMLU as LM-Evaluation-Harness's default MMLU tasks define it (lm_eval/tasks/mmlu/default/,
 * 0.4.13): one task `mmlu_<subject>` per subject (HF cais/mmlu, config <subject>), test split
 * evaluated, few-shot from the dev split with the first_n sampler (the 5 dev rows in file order);
 *   description  "The following are multiple choice questions (with answers) about <subject, _ → space>.\n\n"
 *   doc_to_text  "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
 *   choices      ["A", "B", "C", "D"], target = the answer's index, metric acc;
 * groups mmlu_stem / mmlu_other / mmlu_social_sciences / mmlu_humanities and mmlu over them,
 * acc weighted by size (the micro-average over all questions), stderr pooled
 * (lm_eval/api/group.py, metrics.pooled_sample_stderr) over the leaf subjects.
 * Data: the original CSV release as in shared/data/mmlu: <split>/<subject>_<split>.csv, no
 * header, 6 fields question, A, B, C, D, answer letter (RFC 4180; CRLF or LF).
 */
import { join } from 'node:path';
import { check } from '../../util/errors.js';
import { readRecords, type Row } from './readers.js';
import { defineTask, type Task } from './task.js';
import { pyStrip } from './text.js';

export const MMLU_CATEGORIES: Record<string, string[]> = {
  stem: [
    'abstract_algebra',
    'anatomy',
    'astronomy',
    'college_biology',
    'college_chemistry',
    'college_computer_science',
    'college_mathematics',
    'college_physics',
    'computer_security',
    'conceptual_physics',
    'electrical_engineering',
    'elementary_mathematics',
    'high_school_biology',
    'high_school_chemistry',
    'high_school_computer_science',
    'high_school_mathematics',
    'high_school_physics',
    'high_school_statistics',
    'machine_learning',
  ],
  other: [
    'business_ethics',
    'clinical_knowledge',
    'college_medicine',
    'global_facts',
    'human_aging',
    'management',
    'marketing',
    'medical_genetics',
    'miscellaneous',
    'nutrition',
    'professional_accounting',
    'professional_medicine',
    'virology',
  ],
  social_sciences: [
    'econometrics',
    'high_school_geography',
    'high_school_government_and_politics',
    'high_school_macroeconomics',
    'high_school_microeconomics',
    'high_school_psychology',
    'human_sexuality',
    'professional_psychology',
    'public_relations',
    'security_studies',
    'sociology',
    'us_foreign_policy',
  ],
  humanities: [
    'formal_logic',
    'high_school_european_history',
    'high_school_us_history',
    'high_school_world_history',
    'international_law',
    'jurisprudence',
    'logical_fallacies',
    'moral_disputes',
    'moral_scenarios',
    'philosophy',
    'prehistory',
    'professional_law',
    'world_religions',
  ],
};

/** The 57 subjects, alphabetically (lm-eval's task order within the group does not change any number). */
export const MMLU_SUBJECTS = Object.values(MMLU_CATEGORIES).flat().sort();

/** Task groups: name → the leaf tasks it aggregates, and its sub-groups for the report. */
export interface TaskGroup {
  name: string;
  tasks: string[];
  subgroups: TaskGroup[];
}

const category = (name: string): TaskGroup => ({
  name: `mmlu_${name}`,
  tasks: MMLU_CATEGORIES[name].map((s) => `mmlu_${s}`),
  subgroups: [],
});
const categories = ['stem', 'other', 'social_sciences', 'humanities'].map(category); // lm-eval's _mmlu.yaml order
export const MMLU_GROUPS: TaskGroup[] = [{ name: 'mmlu', tasks: categories.flatMap((c) => c.tasks), subgroups: categories }, ...categories];

interface MmluDoc {
  question: string;
  choices: string[];
  answer: number;
}

const LETTERS = ['A', 'B', 'C', 'D'];

function readMmlu(dir: string, subject: string, split: 'test' | 'dev', usedFor: string): Row<MmluDoc>[] {
  const file = join(dir, 'mmlu', split, `${subject}_${split}.csv`);
  const records = readRecords(file, usedFor);
  check(records.length > 0, `${file}: no rows (expected question, A, B, C, D, answer per row)`);
  return records.map(({ line, fields }) => {
    check(fields.length === 6, `${file}:${line}: ${fields.length} fields; an MMLU row has 6 (question, A, B, C, D, answer)`);
    const answer = LETTERS.indexOf(fields[5]);
    check(answer >= 0, `${file}:${line}: answer must be one of A, B, C, D, got ${JSON.stringify(fields[5])}`);
    return { file, line, value: { question: fields[0], choices: fields.slice(1, 5), answer } };
  });
}

export function mmluTask(subject: string): Task {
  const name = `mmlu_${subject}`;
  return defineTask<MmluDoc>({
    name,
    split: `cais/mmlu ${subject}, test`,
    outputType: 'multiple_choice',
    load: (dir) => readMmlu(dir, subject, 'test', `task ${name}`),
    description: `The following are multiple choice questions (with answers) about ${subject.split('_').join(' ')}.\n\n`,
    docToText: (d) => `${pyStrip(d.question)}\nA. ${d.choices[0]}\nB. ${d.choices[1]}\nC. ${d.choices[2]}\nD. ${d.choices[3]}\nAnswer:`,
    docToChoice: () => LETTERS,
    docToTarget: (d) => d.answer,
    targetDelimiter: ' ',
    metrics: ['acc'],
    fewshot: {
      split: 'dev',
      files: `mmlu/dev/${subject}_dev.csv`,
      load: (dir, usedFor) => readMmlu(dir, subject, 'dev', usedFor),
      sampler: 'first_n',
      excludeEvalDoc: false,
    },
  });
}

export const mmluTasks = (): Task[] => MMLU_SUBJECTS.map(mmluTask);
