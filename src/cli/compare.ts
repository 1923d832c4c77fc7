import { writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import type { Command } from 'commander';
import { agreementPrompts } from '../eval/agreement.js';
import { checkModelPath } from '../model/checkpoint.js';
import { STUDY_METHOD_NAMES } from '../study/methods.js';
import { studyCsv, studyHtml, studyMarkdown } from '../study/report.js';
import { runStudy } from '../study/study.js';
import { checkOutputDir, writeDirAtomic } from '../util/atomic-dir.js';
import { CompactError } from '../util/errors.js';
import { checkReadable } from '../util/files.js';
import { jsonText } from '../util/json-text.js';
import { addAgreementOptions, type AgreementFlags, agreementOptions } from './agreement-options.js';
import { addCalibrationOptions, type CalibrationFlags, calibrationOptions } from './calibration-options.js';
import { forceOption, jsonOption, outputOption, threads, threadsOption } from './common-options.js';
import { readTextFile } from './parse.js';
import { progressBar } from './progress.js';

interface CompareFlags extends CalibrationFlags, AgreementFlags {
  output: string;
  ratios: string;
  methods: string;
  evalText: string[];
  agreement: boolean;
  threads?: string;
  force?: boolean;
  json?: boolean;
}

export function registerCompare(program: Command, version: string, argv: string[]): void {
  const command = program
    .command('compare')
    .description(
      'study: prune one model with several methods × ratios, measure bits per byte, write a report (Markdown, HTML with plots, JSON, CSV)',
    )
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .addOption(outputOption('dir', 'report directory'))
    .requiredOption('--eval-text <file...>', 'held-out text(s) measured in bits per byte (never the calibration text)')
    .option('--ratios <list>', 'fractions of parameters to remove', '0.1,0.2,0.3,0.4,0.5')
    .option('--methods <list>', `methods, from: ${STUDY_METHOD_NAMES.join(', ')}`, STUDY_METHOD_NAMES.join(','))
    .option('--no-agreement', 'skip agreement with the dense model (greedy, top-1 and KL on the first --eval-text)');
  addAgreementOptions(command, 'the first --eval-text');
  addCalibrationOptions(command)
    .addOption(threadsOption())
    .addOption(forceOption('report directory'))
    .addOption(jsonOption('the rows'))
    .action(async (dir: string, f: CompareFlags) => {
      checkModelPath(dir);
      const methods = f.methods.split(',').map((m) => m.trim());
      const unknown = methods.filter((m) => !STUDY_METHOD_NAMES.includes(m));
      if (unknown.length) throw new CompactError(`unknown method(s) ${unknown.join(', ')}; known: ${STUDY_METHOD_NAMES.join(', ')}`);
      const ratios = f.ratios.split(',').map((r) => Number(r));
      if (ratios.some((r) => !(r > 0 && r < 1))) throw new CompactError(`--ratios must be numbers in (0, 1), got ${f.ratios}`);
      const names = f.evalText.map((file) => basename(file).replace(/\.[^.]+$/, ''));
      // Each list names the report's columns or cells: a repeat would run a cell twice or overwrite a column.
      noRepeats('--methods', methods);
      noRepeats('--ratios', ratios.map(String));
      noRepeats('--eval-text (its file names, without extension, name the columns)', names);
      const evalTexts = f.evalText.map((file, i) => ({ name: names[i], text: readTextFile(file) }));
      checkReadable(f.calib); // here, or every cell would fail on it and the study report nothing
      checkOutputDir(f.output, { force: f.force, inputs: [dir] }); // here, not only after the whole study
      const agreement = f.agreement ? { ...agreementOptions(f), window: 512 } : undefined;
      if (agreement) agreementPrompts(evalTexts[0].text, agreement.paragraphs, f.evalText[0]);
      const bar = progressBar('compare', !f.json);
      const command = ['compact', ...argv.slice(2)].join(' ');
      const rows = await runStudy(dir, {
        methods,
        ratios,
        evalTexts,
        agreement,
        base: {
          ...calibrationOptions(f),
          threads: threads(f.threads),
        },
        version,
        workDir: dirname(f.output),
        onProgress: (stage, done, total, note) => bar.update(done, total, stage, note),
      });
      const shown = (path: string) => (isAbsolute(path) && path.startsWith(process.cwd()) ? relative(process.cwd(), path) : path);
      const meta = {
        model: shown(dir),
        calibration: `${f.calib.map(shown).join(', ')} (${f.samples} × ${f.seqLen} tokens, seed ${f.seed})`,
        agreement:
          agreement &&
          `${evalTexts[0].name}, ${agreement.paragraphs} paragraphs, ${agreement.continuationChars} characters per continuation`,
        command,
        version,
      };
      await writeDirAtomic(f.output, { force: f.force, inputs: [dir] }, (tmp) => {
        writeFileSync(join(tmp, 'study.json'), jsonText({ ...meta, rows }));
        writeFileSync(join(tmp, 'study.csv'), studyCsv(rows));
        writeFileSync(join(tmp, 'study.md'), studyMarkdown(rows, meta));
        writeFileSync(join(tmp, 'study.html'), studyHtml(rows, meta));
      });
      bar.stop(); // the cells bar reaches 100 % only once the report is written
      if (f.json) console.log(JSON.stringify(rows, null, 2));
      else console.log(`${studyMarkdown(rows, meta)}\nreport: ${join(f.output, 'study.html')}`);
    });
}

function noRepeats(what: string, items: string[]): void {
  const repeated = items.find((item, i) => items.indexOf(item) !== i);
  if (repeated != null) throw new CompactError(`${what}: ${JSON.stringify(repeated)} is given twice`);
}
