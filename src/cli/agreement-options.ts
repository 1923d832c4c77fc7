/** The agreement flags shared by `eval --reference` and `compare`, and their parsing. */
import type { Command } from 'commander';
import { EVAL_DEFAULTS } from '../defaults.js';
import { positiveInt } from './parse.js';

export interface AgreementFlags {
  paragraphs: string;
  continuation: string;
}

export function addAgreementOptions(command: Command, text: string): Command {
  return command
    .option('--paragraphs <n>', `paragraphs of ${text} used for agreement with the dense model`, String(EVAL_DEFAULTS.paragraphs))
    .option(
      '--continuation <chars>',
      'characters of each greedy continuation compared with the dense model',
      String(EVAL_DEFAULTS.continuationChars),
    );
}

export function agreementOptions(f: AgreementFlags): { paragraphs: number; continuationChars: number } {
  return { paragraphs: positiveInt(f.paragraphs, '--paragraphs'), continuationChars: positiveInt(f.continuation, '--continuation') };
}
