/** The `compact` command line: every command has --help and --json; user mistakes exit 2 with one line. */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../api.js';
import { CompactError } from '../util/errors.js';
import { registerCompare } from './compare.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerInspect } from './inspect.js';
import { closeProgressBars } from './progress.js';
import { registerPrune, registerPruneVocab } from './prune.js';

/** `compact … | head` closes the pipe early: stop quietly, as Unix tools do, not with a stack trace. */
function exitOnClosedPipe(e: NodeJS.ErrnoException): void {
  if (e.code !== 'EPIPE') throw e;
  process.exit(0);
}

export async function main(argv: string[]): Promise<number> {
  // Once per process: main() run again in the same process (a warm test worker) added one listener per call.
  if (!process.stdout.listeners('error').includes(exitOnClosedPipe)) process.stdout.on('error', exitOnClosedPipe);
  const program = new Command()
    .name('compact')
    .description('Make Hugging Face decoder LLMs smaller the COMPACT way, and measure what it costs')
    .version(VERSION)
    .exitOverride()
    // An option-parser mistake is one line like any other (it printed the whole help after it).
    .configureOutput({
      outputError: (message, write) =>
        write(
          `compact: ${message
            .trim()
            .replace(/\s*\n\s*/g, ' ')
            .replace(/\.$/, '')}; see --help\n`,
        ),
    });
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
      process.stderr.write(`compact: error: ${errorLine(e.message)}\n`);
      return 2;
    }
    throw e;
  }
}

/** Longest error line printed; a message quoting more (a 1 MB config value) is shortened. */
const MAX_ERROR_CHARS = 1000;

/**
 * One short line, whatever a message quotes: control characters (a newline from a file) escaped,
 * a quoted string over 80 characters cut to its start and length (config values of a megabyte were
 * printed whole), and the line capped at MAX_ERROR_CHARS.
 */
export function errorLine(message: string): string {
  const escaped = message.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
  // one linear pass (a regular expression backtracks quadratically on an unclosed megabyte-long quote)
  let shortened = '';
  for (let i = 0; i < escaped.length;) {
    let end = -1;
    if (escaped[i] === '"')
      for (let j = i + 1; j < escaped.length; j += escaped[j] === '\\' ? 2 : 1)
        if (escaped[j] === '"') {
          end = j;
          break;
        }
    if (end < 0) shortened += escaped[i++];
    else {
      const body = escaped.slice(i + 1, end);
      shortened += body.length > 80 ? `"${body.slice(0, 40)}…" (${body.length} characters)` : `"${body}"`;
      i = end + 1;
    }
    if (shortened.length > MAX_ERROR_CHARS) break;
  }
  return shortened.length <= MAX_ERROR_CHARS ? shortened : `${shortened.slice(0, MAX_ERROR_CHARS)}… (${shortened.length} characters)`;
}
