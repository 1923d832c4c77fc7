/**
 * GSM8K as LM-Evaluation-Harness defines it (lm_eval/tasks/gsm8k/gsm8k.yaml, 0.4.13):
 *   test split evaluated; 5 shots by default from the train split, default sampler
 *   (Random(1234).sample; fewshot_split "train" ≠ test_split "test", so nothing is excluded);
 *   doc_to_text "Question: {{question}}\nAnswer:", doc_to_target "{{answer}}" (the whole worked
 *   solution, "#### N" included, is each shot's answer); target delimiter " ", shots joined by "\n\n";
 *   generate_until: greedy, until ["Question:", "</s>", "<|im_end|>"] (+ the model's EOS text),
 *   max_gen_toks 256 (HFLM's default; the task sets none);
 *   metric exact_match (ignore_case, regexes_to_ignore ",", "\$", "(?s).*#### ", "\.$") under
 *   two filters: strict-match (first match of "#### (\-?[0-9\.\,]+)") and flexible-extract
 *   (last match of "(-?[$0-9.,]{2,})|(-?[0-9]+)", its first non-empty group), then take_first;
 *   a response without a match becomes "[invalid]".
 * Data: the original JSONL (openai/grade-school-math) as in shared/data/gsm8k: gsm8k/test.jsonl
 * and gsm8k/train.jsonl, {"question", "answer"} per line.
 */
import { join } from 'node:path';
import { check } from '../../util/errors.js';
import { readJsonl, type Row, stringField } from './readers.js';
import { defineTask, type GenerationFilter } from './task.js';
import { pyStrip } from './text.js';

interface Gsm8kDoc {
  question: string;
  answer: string;
}

function readGsm8k(dir: string, split: 'test' | 'train', usedFor: string): Row<Gsm8kDoc>[] {
  return readJsonl(join(dir, 'gsm8k', `${split}.jsonl`), usedFor).map((row) => {
    const answer = stringField(row, 'answer');
    check(answer.includes('#### '), `${row.file}:${row.line}: field "answer" has no "#### <final answer>" line`);
    return { ...row, value: { question: stringField(row, 'question', { nonEmpty: true }), answer } };
  });
}

/**
 * lm-eval's RegexFilter (lm_eval/filters/extraction.py) over Python's re.findall: the
 * `groupSelect`-th match (negative: from the end); with several groups, its first non-empty
 * group; stripped (str.strip); no match → fallback.
 */
export function regexFilter(name: string, pattern: RegExp, groupSelect = 0, fallback = '[invalid]'): GenerationFilter {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  return {
    name,
    apply(response: string): string {
      const matches = [...response.matchAll(global)];
      if (matches.length === 0) return fallback;
      const m = matches[groupSelect < 0 ? matches.length + groupSelect : groupSelect];
      if (m === undefined) return fallback; // Python would raise IndexError; only a positive group_select past the end gets here
      const groups = m.slice(1);
      let value: string;
      if (groups.length === 0) value = m[0];
      else if (groups.length === 1) value = groups[0] ?? '';
      else {
        const found = groups.find((g) => g !== undefined && g !== '');
        if (found === undefined) return fallback; // all groups empty: the fallback, not stripped
        value = found;
      }
      return pyStrip(value);
    },
  };
}

export const GSM8K = defineTask<Gsm8kDoc>({
  name: 'gsm8k',
  split: 'openai/gsm8k main, test',
  outputType: 'generate_until',
  load: (dir) => readGsm8k(dir, 'test', 'task gsm8k'),
  docToText: (d) => `Question: ${d.question}\nAnswer:`,
  docToTarget: (d) => d.answer,
  targetDelimiter: ' ',
  metrics: ['exact_match'],
  defaultNumFewshot: 5,
  fewshot: {
    split: 'train',
    files: 'gsm8k/train.jsonl',
    load: (dir, usedFor) => readGsm8k(dir, 'train', usedFor),
    sampler: 'default',
    excludeEvalDoc: false,
  },
  generation: {
    until: ['Question:', '</s>', '<|im_end|>'],
    maxGenToks: 256,
    filters: [regexFilter('strict-match', /#### (-?[0-9.,]+)/), regexFilter('flexible-extract', /(-?[$0-9.,]{2,})|(-?[0-9]+)/, -1)],
    // Python's "\.$" also matches before a final newline: (?=\n?$).
    exactMatch: { ignoreCase: true, regexesToIgnore: [/,/g, /\$/g, /.*#### /gs, /\.(?=\n?$)/g] },
  },
});
