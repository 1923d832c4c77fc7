/**
 * A warm CLI process for the fuzzer: it loads the CLI once and runs one command per message,
 * capturing what the command writes, so a case costs its work and not Node's start-up. The parent
 * (warm-pool.ts) bounds each command in time and memory, and replaces the process when it dies.
 * Arguments: `dist` (the built CLI) or `src` (the sources, through tsx), and the build's root.
 */
import { ROOT } from './run-cli.js';

const flavour = process.argv[2] === 'src' ? 'src' : 'dist';
const build = process.argv[3] ?? ROOT;
const { main } = (await import(flavour === 'src' ? `${ROOT}src/cli/main.ts` : `${build}dist/cli/main.js`)) as {
  main: (argv: string[]) => Promise<number>;
};

interface Request {
  args: string[];
  env: Record<string, string>;
}

class ExitCalled extends Error {
  constructor(readonly code: number) {
    super(`process.exit(${code})`);
  }
}

let out = '';
let err = '';
const realExit = process.exit.bind(process);
const outWrite = process.stdout.write.bind(process.stdout);
// What the command prints is captured; the parent reads this process's real stderr for fatal errors.
process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
// An exception thrown outside the command's promise chain is what a fresh process would die of.
const late = (e: unknown) => {
  err += `${e instanceof Error ? e.stack : String(e)}\n`;
};
process.on('uncaughtException', late);
process.on('unhandledRejection', late);

// The parent gone (killed, interrupted): nothing more will come.
process.on('disconnect', () => realExit(0));

process.on('message', async (m: Request) => {
  out = '';
  err = '';
  const saved = { ...process.env };
  Object.assign(process.env, m.env);
  process.exit = ((code?: number) => {
    throw new ExitCalled(code ?? 0);
  }) as typeof process.exit;
  let code: number;
  try {
    code = await main(['node', 'compact', ...m.args]);
  } catch (e) {
    if (e instanceof ExitCalled) code = e.code;
    else {
      // what Node prints for an unhandled rejection: the stack, exit 1
      err += `${e instanceof Error ? e.stack : String(e)}\n`;
      code = 1;
    }
  } finally {
    process.exit = realExit;
    for (const k of Object.keys(m.env)) if (saved[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved);
  }
  process.exitCode = 0;
  process.send!({ code, stdout: out, stderr: err });
});
outWrite(''); // keep the binding used
process.send!({ ready: true });
