import type { Command } from 'commander';
import { openCheckpoint } from '../model/checkpoint.js';
import { inspect } from '../api.js';
import { countParams, PARTS, type ParamCount, type Part } from '../model/param-count.js';
import { jsonOption } from './common-options.js';
import { bytes, integer, percent, table } from './format.js';

const LABELS: Record<Part, string> = {
  embedding: 'embedding',
  lmHead: 'LM head',
  attention: 'attention',
  ffn: 'FFN',
  norms: 'norms',
  other: 'other',
};

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('where the parameters are: vocabulary (embedding, LM head), attention, FFN, norms')
    .argument('<dir>', 'Hugging Face checkpoint directory (config.json + safetensors)')
    .addOption(jsonOption('the parameter counts'))
    .action((dir: string, opts: { json?: boolean }) => {
      if (opts.json) {
        console.log(JSON.stringify(inspect(dir), null, 2));
        return;
      }
      const ckpt = openCheckpoint(dir);
      const count = countParams(ckpt);
      const { spec } = ckpt;
      console.log(
        `${dir}: ${spec.modelType}, V=${spec.vocabSize} D=${spec.hiddenSize} I=${spec.intermediateSize} L=${spec.numLayers} heads=${spec.numHeads}/${spec.numKvHeads}×${spec.headDim}`,
      );
      console.log(parameterTable(count));
      console.log(`weights on disk: ${bytes(count.storedBytes)}`);
    });
}

/** Parameters by part with their shares, the vocabulary's total and the grand total. */
export function parameterTable(count: ParamCount): string {
  const rows = [['part', 'parameters', 'share']];
  for (const part of PARTS) {
    if (part === 'lmHead' && count.tied) rows.push([LABELS[part], 'tied', '—']);
    else if (count.parts[part] > 0 || part !== 'other')
      rows.push([LABELS[part], integer(count.parts[part]), percent(count.parts[part], count.total)]);
  }
  const vocab = count.parts.embedding + count.parts.lmHead;
  rows.push(['vocabulary (embedding + head)', integer(vocab), percent(vocab, count.total)]);
  rows.push(['total', integer(count.total), '100.0 %']);
  return table(rows, [false, true, true]);
}
