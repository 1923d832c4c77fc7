import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Engine } from '../engine/engine.js';
import { evaluateText } from '../eval/text-metrics.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { CompactError } from '../util/errors.js';
import { integer, table } from './format.js';
import { progressBar } from './progress.js';

interface EvalOptions {
  text: string;
  window: string;
  stride?: string;
  threads?: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('score a text: tokens, UTF-8 bytes, total NLL, perplexity and bits per byte')
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .requiredOption('--text <file>', 'UTF-8 text file, encoded whole with the model tokenizer')
    .option('--window <n>', 'inputs per window: window w scores ids[s+1 .. s+w] from ids[s .. s+w-1]', '512')
    .option('--stride <n>', 'tokens between window starts (default: the window, i.e. no overlap); predictions are never scored twice')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: EvalOptions) => {
      const window = positiveInt(opts.window, '--window');
      const stride = opts.stride == null ? window : positiveInt(opts.stride, '--stride');
      const ckpt = openCheckpoint(dir);
      const text = readTextFile(opts.text);
      const ids = encode(loadTokenizer(dir), text);
      const engine = new Engine(ckpt, { threads: opts.threads ? positiveInt(opts.threads, '--threads') : undefined });
      const bar = progressBar('eval', !opts.json);
      const started = performance.now();
      const metrics = await evaluateText(engine, ids, Buffer.byteLength(text, 'utf8'), { window, stride, onProgress: (d, t) => bar.update(d, t) });
      bar.stop();
      await engine.release();
      const seconds = (performance.now() - started) / 1000;
      if (opts.json) {
        console.log(JSON.stringify({ dir, text: opts.text, ...metrics, seconds }, null, 2));
        return;
      }
      console.log(
        table(
          [
            ['tokens', integer(metrics.tokens)],
            ['UTF-8 bytes', integer(metrics.bytes)],
            ['predictions scored', `${integer(metrics.predictions)} in ${metrics.windows} windows of ${window} (stride ${stride})`],
            ['total NLL (nats)', metrics.totalNll.toFixed(3)],
            ['mean NLL', metrics.meanNll.toFixed(5)],
            ['perplexity', metrics.perplexity.toFixed(4)],
            ['bits per byte', metrics.bitsPerByte.toFixed(5)],
            ['time', `${seconds.toFixed(1)} s (${integer(Math.round(metrics.predictions / seconds))} tokens/s)`],
          ],
          [false, false],
        ),
      );
    });
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CompactError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function readTextFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (text.length === 0) throw new CompactError(`${file}: the text is empty`);
  return text;
}
