import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import { METHODS, type Method, prune, type PruneReport } from '../prune/prune.js';
import { CRITERIA, type Criterion, type Weighting, WEIGHTINGS } from '../prune/scores.js';
import { CompactError } from '../util/errors.js';
import { positiveInt } from './eval.js';
import { integer, percent, table } from './format.js';
import { progressBar } from './progress.js';

/** Bundled calibration text (TinyStories, CDLA-Sharing-1.0): fits the demo model; pass your own for real models. */
export const DEFAULT_CALIBRATION = fileURLToPath(new URL('../../data/tinystories/calibration_90pct.txt', import.meta.url));

interface PruneFlags {
  output: string;
  method: Method;
  vocab?: string;
  ffn?: string;
  ratio?: string;
  vocabShare?: string;
  roundTo?: string;
  vocabMode: 'rank' | 'frequency';
  vocabCorpus?: string[];
  keep?: string;
  weighting: Weighting;
  criterion: Criterion;
  calib: string[];
  calibField: string;
  samples: string;
  seqLen: string;
  seed: string;
  scoresIn?: string[];
  scoresOut?: string;
  force?: boolean;
  threads?: string;
  json?: boolean;
}

export function registerPrune(program: Command, version: string, argv: string[]): void {
  program
    .command('prune')
    .description('prune rare vocabulary and FFN channels (COMPACT) or layers (ShortGPT) and write a standard checkpoint')
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .requiredOption('-o, --output <dir>', 'output directory (written atomically; must not exist unless --force)')
    .addOption(new Option('--method <m>', 'compact | vocab-only | ffn-only | shortgpt (depth pruning baseline)').choices(METHODS).default('compact'))
    .option('--vocab <V′>', "vocabulary size to keep (special/added tokens, byte pieces and base symbols always count toward it)")
    .option('--ffn <I′>', 'FFN width to keep in every layer')
    .option('--ratio <r>', 'fraction of all parameters to remove, in (0, 1); solved into V′ and I′ from exact parameter counts')
    .option('--vocab-share <s>', 'with --ratio: share of the removal taken from the vocabulary (default: the vocabulary share of the prunable parameters)')
    .option('--round-to <k>', 'round I′ to a multiple of k (default: 256 if I ≥ 4096, 32 if I ≥ 512, else 1; llama.cpp k-quants want 256)')
    .addOption(new Option('--vocab-mode <m>', 'rank: keep the lowest ids (BPE merge order, the paper); frequency: keep the most frequent on --vocab-corpus').choices(['rank', 'frequency']).default('rank'))
    .option('--vocab-corpus <file...>', 'text whose token counts drive --vocab-mode frequency (default: the calibration text)')
    .option('--keep <file>', 'tokens to keep whatever the budget: one per line, a token string or a numeric id')
    .addOption(new Option('--weighting <w>', 'act² weighting: binary (common act², only kept tokens count) | frequency | none (plain act²)').choices(WEIGHTINGS).default('binary'))
    .addOption(new Option('--criterion <c>', 'channel criterion: act2 | magnitude | random (baselines)').choices(CRITERIA).default('act2'))
    .option('--calib <file...>', 'calibration text: plain files (one document each) or .jsonl (default: the bundled TinyStories text)', [DEFAULT_CALIBRATION])
    .option('--calib-field <name>', 'JSONL field holding the text', 'text')
    .option('--samples <n>', 'calibration windows', '16')
    .option('--seq-len <n>', 'tokens per calibration window (never derived from the model context)', '512')
    .option('--seed <n>', 'seed for window sampling and random scores', '0')
    .option('--scores-in <file...>', 'reuse channel scores (several files are summed) instead of calibrating')
    .option('--scores-out <file>', 'save the channel scores for re-pruning to another budget')
    .option('--force', 'replace the output directory if it exists')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, f: PruneFlags) => {
      const number = (value: string | undefined, flag: string): number | undefined => {
        if (value == null) return undefined;
        const n = Number(value);
        if (!Number.isFinite(n)) throw new CompactError(`${flag} must be a number, got ${JSON.stringify(value)}`);
        return n;
      };
      const bar = progressBar('prune', !f.json);
      const report = await prune(dir, f.output, {
        method: f.method,
        vocab: number(f.vocab, '--vocab'),
        ffn: number(f.ffn, '--ffn'),
        ratio: number(f.ratio, '--ratio'),
        vocabShare: number(f.vocabShare, '--vocab-share'),
        roundTo: f.roundTo == null ? undefined : positiveInt(f.roundTo, '--round-to'),
        vocabMode: f.vocabMode,
        vocabCorpus: f.vocabCorpus,
        keepList: f.keep ? readKeepList(f.keep) : undefined,
        weighting: f.weighting,
        criterion: f.criterion,
        calib: f.calib,
        calibField: f.calibField,
        samples: positiveInt(f.samples, '--samples'),
        seqLen: positiveInt(f.seqLen, '--seq-len'),
        seed: Number(f.seed) | 0,
        scoresIn: f.scoresIn,
        scoresOut: f.scoresOut,
        force: f.force,
        threads: f.threads ? positiveInt(f.threads, '--threads') : undefined,
        commandLine: ['compact', ...argv.slice(2)].join(' '),
        version,
        onProgress: (stage, done, total) => bar.update(done, total),
      });
      bar.stop();
      if (f.json) console.log(JSON.stringify(report, null, 2));
      else printReport(report);
    });
}

function readKeepList(file: string): (string | number)[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return text.split('\n').filter((l) => l.length > 0).map((l) => (/^\d+$/.test(l) ? Number(l) : l));
}

export function printReport(r: PruneReport): void {
  const b = r.parameters.before;
  const a = r.parameters.after;
  const row = (label: string, x: number, y: number) => [label, integer(x), integer(y), percent(x - y, x === 0 ? 1 : x)];
  console.log(`${r.input} → ${r.output} (${r.method})`);
  console.log(
    table(
      [
        ['', 'before', 'after', 'removed'],
        row('vocabulary V', r.vocab.before, r.vocab.after),
        row('FFN width I', r.ffn.before, r.ffn.after),
        row('layers', r.layers.before, r.layers.after),
        row('embedding + LM head', b.parts.embedding + b.parts.lmHead, a.parts.embedding + a.parts.lmHead),
        row('FFN parameters', b.parts.ffn, a.parts.ffn),
        row('attention parameters', b.parts.attention, a.parts.attention),
        row('total parameters', b.total, a.total),
      ],
      [false, true, true, true],
    ),
  );
  const s = r.seconds;
  console.log(`time: ${s.total.toFixed(1)} s (read ${s.read.toFixed(1)}, calibrate ${s.calibrate.toFixed(1)}, score ${s.score.toFixed(1)}, write ${s.write.toFixed(1)})`);
}
