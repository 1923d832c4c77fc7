/** The `compact` command line: every command has --help and --json; user mistakes exit 2 with one line. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CompactError } from '../util/errors.js';
import { registerCompare } from './compare.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerInspect } from './inspect.js';
import { closeProgressBars } from './progress.js';
import { registerPrune, registerPruneVocab } from './prune.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('compact')
    .description('Make Hugging Face decoder LLMs smaller the COMPACT way, and measure what it costs')
    .version(VERSION)
    .exitOverride()
    // An option-parser mistake is one line like any other (it printed the whole help after it).
    .configureOutput({ outputError: (message, write) => write(`compact: ${message.trim().replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}; see --help\n`) });
  registerInspect(program);
  registerEval(program);
  registerPrune(program, VERSION, argv);
  registerPruneVocab(program, VERSION, argv);
  registerCompare(program, VERSION, argv);
  registerExport(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    closeProgressBars(); // the error starts its own line, not the end of a bar's
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof CompactError) {
      // One line, whatever a message quotes: control characters (a newline from a file) are escaped.
      const line = e.message.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
      process.stderr.write(`compact: error: ${line}\n`);
      return 2;
    }
    throw e;
  }
}
