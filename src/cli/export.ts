import { type Command, Option } from 'commander';
import { EXPORT_DEFAULTS } from '../defaults.js';
import { exportGguf, type ExportReport } from '../gguf/export.js';
import { OUTPUT_TYPES, type OutputType } from '../gguf/tensor-plan.js';
import { forceOption, jsonOption, outputOption } from './common-options.js';
import { bytes, integer } from './format.js';
import { progressBar } from './progress.js';

interface ExportFlags {
  output: string;
  type: OutputType;
  vocabOnly?: boolean;
  name?: string;
  force?: boolean;
  json?: boolean;
}

export const GGUF_TYPE_HELP = 'f32 | f16 | bf16 | q8_0 (vectors stay f32; a q8_0 matrix whose rows are not a multiple of 32 stays f16)';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("write a GGUF file that llama.cpp runs unchanged (native writer; llama.cpp's own architectures and tokenizers)")
    .argument('<dir>', 'Hugging Face checkpoint directory (e.g. the output of compact prune)')
    .addOption(outputOption('file.gguf', 'GGUF file to write'))
    .addOption(new Option('--type <t>', GGUF_TYPE_HELP).choices(OUTPUT_TYPES).default(EXPORT_DEFAULTS.type))
    .option('--vocab-only', 'write the tokenizer and hyperparameters only, no tensors')
    .option('--name <name>', 'general.name (default: the directory name)')
    .addOption(forceOption('output file'))
    .addOption(jsonOption())
    .action(async (dir: string, f: ExportFlags) => {
      const bar = progressBar('export', !f.json);
      const report = await exportGguf(dir, f.output, {
        type: f.type,
        vocabOnly: f.vocabOnly,
        name: f.name,
        force: f.force,
        onTensor: (d, t) => bar.update(d, t),
      });
      bar.stop();
      if (f.json) console.log(JSON.stringify(report, null, 2));
      else console.log(exportSummary(report));
    });
}

export function exportSummary(r: ExportReport): string {
  const types = Object.entries(r.tensors.byType)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  const lines = [
    `wrote ${r.output}: llama.cpp architecture ${r.architecture}, ${integer(r.tensors.total)} tensors (${types || 'none'}), ${bytes(r.bytes)} of tensor data`,
    `tokenizer: ${r.tokenizer.model} (pre ${r.tokenizer.pre}), ${integer(r.tokenizer.tokens)} tokens${r.tokenizer.padded ? ` + ${integer(r.tokenizer.padded)} unused padding rows` : ''}${
      r.tokenizer.leftOut.length ? `; left out (no embedding row): ${r.tokenizer.leftOut.join(' ')}` : ''
    }`,
    `context length ${integer(r.contextLength)}${r.contextCappedAtWindow ? ' (capped at the sliding window: llama.cpp has none for this architecture)' : ''}`,
  ];
  return lines.join('\n');
}
