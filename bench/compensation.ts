/**
 * node --import tsx bench/compensation.ts [--model DIR --removed 0.1,0.2,0.3,0.4,0.5 --threads 2 --only ffn,weighting,damp,sequential]
 *
 * What least-squares compensation buys (docs/compensation.md): held-out TinyStories and WikiText
 * (first 100 KB of the test split) bits per byte of the pruned model, with and without
 * compensation, FFN-only with 10–50 % of the FFN channels removed; common act² vs plain act² with compensation; the damping;
 * one-shot vs sequential statistics. Calibration: the bundled 16 × 512 tokens, seed 0.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine.js';
import { evaluateText } from '../src/eval/text-metrics.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import { prune, type PruneOptions } from '../src/prune/prune.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/models/tinystories-llama32k/hf' },
    wiki: { type: 'string', default: '../shared/data/wikitext-2-raw/wiki.test.rows.txt' },
    removed: { type: 'string', default: '0.1,0.2,0.3,0.4,0.5' },
    threads: { type: 'string', default: '2' },
    only: { type: 'string', default: 'ffn,weighting,damp,sequential' },
    out: { type: 'string', default: '.tmp/bench-compensation' },
  },
});
const threads = Number(args.threads);
const only = new Set(args.only!.split(','));
mkdirSync(args.out!, { recursive: true });
const wikiAll = readFileSync(args.wiki!, 'utf8');
const texts = {
  heldout: readFileSync('data/tinystories/heldout_10pct.txt', 'utf8'),
  wiki: wikiAll.slice(0, wikiAll.indexOf('\n', 100000) + 1),
};

async function bpb(dir: string): Promise<{ heldout: number; wiki: number }> {
  const engine = new Engine(openCheckpoint(dir), { threads });
  const tok = loadTokenizer(dir);
  const out: Record<string, number> = {};
  for (const [name, text] of Object.entries(texts))
    out[name] = (await evaluateText(engine, encode(tok, text), Buffer.byteLength(text, 'utf8'))).bitsPerByte;
  await engine.release();
  return out as { heldout: number; wiki: number };
}

const base: PruneOptions = {
  method: 'compact',
  vocabMode: 'rank',
  weighting: 'binary',
  criterion: 'act2',
  calib: ['data/tinystories/calibration_90pct.txt'],
  calibField: 'text',
  samples: 16,
  seqLen: 512,
  seed: 0,
  force: true,
  threads,
  commandLine: 'bench:compensation',
  version: 'bench',
};
async function cell(label: string, o: Partial<PruneOptions>): Promise<string> {
  const dir = join(args.out!, 'cell');
  const t0 = performance.now();
  const r = await prune(args.model!, dir, { ...base, ...o });
  const seconds = (performance.now() - t0) / 1000;
  const m = await bpb(dir);
  rmSync(dir, { recursive: true, force: true });
  const row = `| ${label} | ${r.vocab.after} | ${r.ffn.after} | ${(100 * r.parameters.removedRatio).toFixed(1)} % | ${m.heldout.toFixed(4)} | ${(m.heldout - dense.heldout).toFixed(4)} | ${m.wiki.toFixed(4)} | ${(m.wiki - dense.wiki).toFixed(4)} | ${seconds.toFixed(1)} |`;
  console.log(row);
  appendFileSync(join(args.out!, 'rows.md'), row + '\n');
  return row;
}

const dense = await bpb(args.model!);
const header =
  '| cell | V′ | I′ | removed | held-out bpb | excess | WikiText bpb | excess | prune s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |';
const lines = [`dense: held-out ${dense.heldout.toFixed(4)}, WikiText ${dense.wiki.toFixed(4)} bits per byte`, ''];
console.log(lines[0]);
console.log(header);
const I = openCheckpoint(args.model!).spec.intermediateSize;
const widths = args.removed!.split(',').map((f) => Math.round(I * (1 - Number(f))));
if (only.has('ffn')) {
  lines.push('FFN-only, compensated vs not:', '', header);
  for (const ffn of widths) {
    for (const compensate of [false, true])
      lines.push(
        await cell(`ffn-only ${(100 * (1 - ffn / I)).toFixed(0)} % of channels ${compensate ? 'compensated' : 'sliced'}`, {
          method: 'ffn-only',
          ffn,
          compensate,
        }),
      );
  }
  lines.push('');
}
if (only.has('weighting')) {
  lines.push('common act² (binary) vs plain act² (none), compensated:', '', header);
  for (const [label, o] of [
    ['30 %, share 0.875, frequency', { ratio: 0.3, vocabShare: 0.875, vocabMode: 'frequency' }],
    ['30 %, share 0.75, rank', { ratio: 0.3, vocabShare: 0.75, vocabMode: 'rank' }],
  ] as [string, Partial<PruneOptions>][]) {
    for (const weighting of ['binary', 'none'] as const)
      lines.push(await cell(`${label}, ${weighting}`, { ...o, weighting, compensate: true }));
  }
  lines.push('');
}
if (only.has('damp')) {
  lines.push('damping (FFN-only, half the channels removed, compensated; damp 0.01 is the FFN table’s row):', '', header);
  for (const damp of [0.001, 0.1])
    lines.push(await cell(`damp ${damp}`, { method: 'ffn-only', ffn: Math.round(I / 2), compensate: true, damp }));
  lines.push('');
}
if (only.has('sequential')) {
  lines.push('sequential statistics (compensated; one-shot is the FFN table’s row):', '', header);
  for (const [label, o] of [['ffn-only, 50 % of channels', { method: 'ffn-only', ffn: Math.round(I / 2) }]] as [
    string,
    Partial<PruneOptions>,
  ][]) {
    for (const sequential of [true])
      lines.push(await cell(`${label}, ${sequential ? 'sequential' : 'one-shot'}`, { ...o, compensate: true, sequential }));
  }
  lines.push('');
}
writeFileSync(join(args.out!, 'results.md'), lines.join('\n') + '\n');
