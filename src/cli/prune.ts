import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { EXPORT_DEFAULTS, PRUNE_DEFAULTS, withPruneDefaults } from '../defaults.js';
import { PRECISIONS, type Precision } from '../engine/precision.js';
import { checkpointTextMetrics, type TextMetrics } from '../eval/text-metrics.js';
import { OUTPUT_TYPES, type OutputType } from '../gguf/tensor-plan.js';
import { DEFAULT_DAMP } from '../prune/compensate.js';
import { DEFAULT_SELECTION, type Selection, SELECTIONS } from '../prune/greedy-removal.js';
import { METHOD_TRAITS, METHODS, type Method } from '../prune/methods.js';
import { parseCalibShard } from '../prune/calib-shard.js';
import { calibrateShard, prune, type PruneReport, type ShardReport } from '../prune/prune.js';
import { CHOICE_RULE } from '../prune/report.js';
import { CRITERIA, type Criterion, type Weighting, WEIGHTINGS } from '../prune/scores.js';
import { CompactError } from '../util/errors.js';
import { checkReadable, readUserText } from '../util/files.js';
import { KEEP_MODES } from '../vocab/keep-set.js';
import { addCalibrationOptions, type CalibrationFlags, calibrationOptions } from './calibration-options.js';
import { forceOption, jsonOption, outputOption, threads, threadsOption } from './common-options.js';
import { finiteNumber, positiveInt, readTextFile } from './parse.js';
import { GGUF_TYPE_HELP } from './export.js';
import { bytes, integer, percent, table } from './format.js';
import { progressBar } from './progress.js';

interface PruneFlags extends CalibrationFlags {
  output?: string;
  method: Method;
  vocab?: string;
  ffn?: string;
  ratio?: string;
  vocabShare?: string;
  auto?: boolean;
  searchText?: string;
  compensate?: boolean;
  damp?: string;
  selection: Selection;
  roundTo?: string;
  vocabMode?: 'rank' | 'frequency';
  vocabCorpus?: string[];
  keep?: string;
  weighting: Weighting;
  criterion: Criterion;
  scoresIn?: string[];
  scoresOut?: string;
  calibShard?: string;
  force?: boolean;
  threads?: string;
  precision: Precision;
  evalText?: string;
  gguf?: OutputType;
  json?: boolean;
}

export function registerPrune(program: Command, version: string, argv: string[]): void {
  const command = program
    .command('prune')
    .description('prune rare vocabulary and FFN channels (COMPACT) or layers (ShortGPT) and write a standard checkpoint')
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .addOption(outputOption('dir', 'output directory; required unless --calib-shard').makeOptionMandatory(false))
    .addOption(
      new Option('--method <m>', METHODS.map((m) => `${m}: ${METHOD_TRAITS[m].summary}`).join('; '))
        .choices(METHODS)
        .default(PRUNE_DEFAULTS.method),
    )
    .option('--vocab <V′>', 'vocabulary size to keep (special/added tokens, byte pieces and base symbols always count toward it)')
    .option('--ffn <I′>', 'FFN width to keep in every layer')
    .option('--ratio <r>', 'fraction of all parameters to remove, in (0, 1); solved into V′ and I′ from exact parameter counts')
    .option(
      '--vocab-share <s>',
      'with --ratio: share of the removal taken from the vocabulary (fixes the split; without it the split is searched, see --auto)',
    )
    .option(
      '--auto',
      "the default with --ratio and no --vocab-share: try vocabulary shares 0, 0.1, 0.25, 0.5, 0.75, 1 in both vocabulary modes (or the --vocab-mode given), then shares halfway to the best one's neighbours; each measured by bits per byte on the held-out last 10 % of the calibration text (or --search-text); the lowest wins unless splits within one standard error of it remove fewer frequency-chosen tokens (then the one removing fewest)",
    )
    .option(
      '--search-text <file>',
      "text the split search measures instead of the calibration text's last 10 % (all of the calibration text then feeds the statistics): give text the model was not trained on, or text of the domain it will serve",
    )
    .option(
      '--no-auto',
      "with --ratio: no search; the paper's fixed split (the vocabulary's share of the prunable parameters, capped at what it can give), --vocab-mode rank unless given",
    )
    .option(
      '--compensate',
      "refit each layer's down_proj by least squares on the kept channels (default wherever channels are pruned by calibrated act²; an error elsewhere)",
    )
    .option('--no-compensate', 'slice down_proj without refitting (the paper)')
    .option('--damp <x>', "compensation damping: λ = x · mean diagonal of the kept channels' Gram", String(DEFAULT_DAMP))
    .addOption(
      new Option(
        '--selection <s>',
        'with compensation, which channels go: act2 (lowest common act², the paper) | greedy (those whose removal the refitted layer misses least, by OBS cost: better where many go, slower: see docs/compensation.md)',
      )
        .choices(SELECTIONS)
        .default(DEFAULT_SELECTION),
    )
    .option('--round-to <k>', 'round I′ to a multiple of k (default: 256 if I ≥ 4096, 32 if I ≥ 512, else 1; llama.cpp k-quants want 256)')
    .addOption(
      new Option(
        '--vocab-mode <m>',
        'rank: keep the lowest ids (BPE merge order, the paper); frequency: keep the most frequent on --vocab-corpus, then the tokens the dense model expects most on that text (default: rank; the --ratio search tries both unless this is given)',
      ).choices(KEEP_MODES),
    )
    .option(
      '--vocab-corpus <file...>',
      'text whose token counts, and the dense model’s expected counts on it, drive --vocab-mode frequency (default: the calibration text)',
    )
    .option('--keep <file>', 'tokens to keep whatever the budget: one per line, a token string or a numeric id')
    .addOption(
      new Option('--weighting <w>', 'act² weighting: binary (common act², only kept tokens count) | frequency | none (plain act²)')
        .choices(WEIGHTINGS)
        .default(PRUNE_DEFAULTS.weighting),
    )
    .addOption(
      new Option('--criterion <c>', 'channel criterion: act2 | magnitude | random (baselines)')
        .choices(CRITERIA)
        .default(PRUNE_DEFAULTS.criterion),
    );
  addCalibrationOptions(command)
    .option('--scores-in <file...>', 'reuse channel scores (several files are summed) instead of calibrating')
    .option('--scores-out <file>', 'save the channel scores for re-pruning to another budget (must not exist unless --force)')
    .option(
      '--calib-shard <i/n>',
      "calibrate on the i-th of n disjoint parts of the calibration windows (window w where w mod n = i − 1) and write only that shard's scores to --scores-out (atomically; must not exist unless --force), no model; the n shards given to --scores-in sum to exactly the single run's scores (same flags everywhere; sharded runs use --no-compensate)",
    )
    .addOption(forceOption('output directory or --scores-out file'))
    .addOption(threadsOption())
    .addOption(
      new Option(
        '--precision <p>',
        "calibration forward pass: fp32 (reference) | int8 (faster; kept channels and tokens near fp32's, see the README)",
      )
        .choices(PRECISIONS)
        .default('fp32'),
    )
    .addOption(
      new Option(
        '--gguf [type]',
        `also write <output>/model.<type>.gguf for llama.cpp (as compact export; default type f16): ${GGUF_TYPE_HELP}`,
      )
        .choices(OUTPUT_TYPES)
        .preset(EXPORT_DEFAULTS.type),
    )
    .option('--eval-text <file>', 'also report bits per byte of the input and the output on this text (windows of 512)')
    .addOption(jsonOption())
    .action(async (dir: string, f: PruneFlags) => {
      const shard = f.calibShard == null ? undefined : parseCalibShard(f.calibShard);
      if (shard) {
        const stray = [
          f.output && '-o/--output',
          f.gguf && '--gguf',
          f.evalText && '--eval-text',
          f.scoresIn?.length && '--scores-in',
        ].filter(Boolean);
        if (stray.length)
          throw new CompactError(
            `--calib-shard writes only the shard's scores (--scores-out), no model: drop ${stray.join(', ')} (the run that prunes sums the shards with --scores-in)`,
          );
        if (!f.scoresOut) throw new CompactError("--calib-shard writes the shard's scores to --scores-out FILE; give --scores-out");
      } else if (!f.output)
        throw new CompactError("required option '-o, --output <dir>' not specified (only --calib-shard runs write no model)");
      // Every file named by a flag is checked before the work starts (--calib by prune itself).
      checkReadable([
        ...(f.evalText ? [f.evalText] : []),
        ...(f.searchText ? [f.searchText] : []),
        ...(f.vocabCorpus ?? []),
        ...(f.scoresIn ?? []),
      ]);
      const bar = progressBar('prune', !f.json);
      const damp = finiteNumber(f.damp, '--damp')!; // its range: checked by prune() before any work
      const budget = {
        vocab: finiteNumber(f.vocab, '--vocab'),
        ffn: finiteNumber(f.ffn, '--ffn'),
        ratio: finiteNumber(f.ratio, '--ratio'),
        vocabShare: finiteNumber(f.vocabShare, '--vocab-share'),
      };
      const threadCount = threads(f.threads);
      // What is not given comes from the library's defaults (src/defaults.ts), e.g. --ratio alone searches the split.
      const options = {
        ...withPruneDefaults({
          method: f.method,
          ...budget,
          auto: f.auto,
          searchText: f.searchText,
          compensate: f.compensate,
          damp,
          selection: f.selection,
          roundTo: f.roundTo == null ? undefined : positiveInt(f.roundTo, '--round-to'),
          vocabMode: f.vocabMode,
          vocabCorpus: f.vocabCorpus,
          keepList: f.keep ? readKeepList(f.keep) : undefined,
          weighting: f.weighting,
          criterion: f.criterion,
          ...calibrationOptions(f),
          scoresIn: f.scoresIn,
          scoresOut: f.scoresOut,
          calibShard: shard,
          force: f.force,
          threads: threadCount,
          precision: f.precision,
          gguf: f.gguf,
          onProgress: (stage, done, total) => bar.update(done, total, stage),
        }),
        commandLine: ['compact', ...argv.slice(2)].join(' '),
        version,
      };
      if (shard) {
        const report = await calibrateShard(dir, { ...options, calibShard: shard });
        bar.stop();
        if (f.json) console.log(JSON.stringify(report, null, 2));
        else printShardReport(report);
        return;
      }
      const output = f.output!;
      const report = await prune(dir, output, options);
      let quality: Quality | undefined;
      if (f.evalText) {
        const text = readTextFile(f.evalText);
        quality = {
          text: f.evalText,
          before: await checkpointTextMetrics(dir, text, threadCount, (d, t) => bar.update(d, t, 'evaluate input')),
          after: await checkpointTextMetrics(output, text, threadCount, (d, t) => bar.update(d, t, 'evaluate output')),
        };
      }
      bar.stop();
      if (f.json) console.log(JSON.stringify({ ...report, ...(quality ? { quality } : {}) }, null, 2));
      else printReport(report, quality);
    });
}

interface Quality {
  text: string;
  before: TextMetrics;
  after: TextMetrics;
}

/** Issue-5 interface: vocabulary-only pruning with tokenizer surgery (same code path as `prune --method vocab-only`). */
export function registerPruneVocab(program: Command, version: string, argv: string[]): void {
  program
    .command('prune-vocab')
    .description(
      'prune the vocabulary only: keep V′ tokens, rewrite the tokenizer so every text still encodes, slice embedding and LM head',
    )
    .argument('<dir>', 'Hugging Face checkpoint directory')
    .addOption(outputOption('dir', 'output directory'))
    .requiredOption('--vocab <V′>', 'vocabulary size to keep (special/added tokens, byte pieces and base symbols count toward it)')
    .addOption(
      new Option('--mode <m>', 'rank: lowest ids (BPE merge order) | frequency: most frequent on --corpus')
        .choices(KEEP_MODES)
        .default('rank'),
    )
    .option('--corpus <file...>', 'text for --mode frequency (plain files or .jsonl with a "text" field)')
    .option('--keep <file>', 'tokens to keep whatever the budget: one per line, a token string or a numeric id')
    .addOption(forceOption('output directory'))
    .addOption(jsonOption())
    .action(
      async (
        dir: string,
        f: { output: string; vocab: string; mode: 'rank' | 'frequency'; corpus?: string[]; keep?: string; force?: boolean; json?: boolean },
      ) => {
        if (f.mode === 'frequency' && !f.corpus?.length) throw new CompactError('--mode frequency needs --corpus FILE…');
        const report = await prune(dir, f.output, {
          ...VOCAB_ONLY_DEFAULTS,
          vocab: positiveInt(f.vocab, '--vocab'),
          vocabMode: f.mode,
          vocabCorpus: f.corpus,
          calib: f.corpus ?? [],
          keepList: f.keep ? readKeepList(f.keep) : undefined,
          force: f.force,
          commandLine: ['compact', ...argv.slice(2)].join(' '),
          version,
        });
        if (f.json) console.log(JSON.stringify(report, null, 2));
        else printReport(report);
      },
    );
}

const VOCAB_ONLY_DEFAULTS = { ...PRUNE_DEFAULTS, method: 'vocab-only' } as const;

function readKeepList(file: string): (string | number)[] {
  return readUserText(file)
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => (/^\d+$/.test(l) ? Number(l) : l));
}

export function printShardReport(r: ShardReport): void {
  const c = r.calibration;
  console.log(
    `${r.input}: calibration shard ${r.shard.index}/${r.shard.count} → ${r.scoresOut} (${r.criterion}, weighting ${r.weighting})`,
  );
  console.log(
    `ran ${r.windows.length} of ${c.samples} windows of ${c.seqLen} tokens (window w with w mod ${r.shard.count} = ${r.shard.index - 1}); sum all ${r.shard.count} shards with --scores-in`,
  );
  console.log(`time: ${r.seconds.total.toFixed(1)} s (read ${r.seconds.read.toFixed(1)}, calibrate ${r.seconds.calibrate.toFixed(1)})`);
}

export function printReport(r: PruneReport, quality?: Quality): void {
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
        ...(quality
          ? [
              ['tokens in eval text', integer(quality.before.tokens), integer(quality.after.tokens), ''],
              ['bits per byte (lower is better)', quality.before.bitsPerByte.toFixed(4), quality.after.bitsPerByte.toFixed(4), ''],
            ]
          : []),
      ],
      [false, true, true, true],
    ),
  );
  if (quality) console.log(`eval text: ${quality.text}`);
  if (r.auto) {
    console.log(
      `split search tried (bits per byte on ${integer(r.auto.heldOutChars)} held-out characters = ${integer(r.auto.heldOutTokens)} tokens of ${r.auto.heldOutText ?? 'the calibration text'}, in ${r.auto.heldOutPieces} pieces; chosen first: ${CHOICE_RULE}):`,
    );
    console.log(
      table(
        [
          ['vocab share', 'mode', 'V′', 'I′', 'removed', 'held-out bpb', '− lowest', '± s.e.', 'pieces', 'pass'],
          ...r.auto.candidates.map((c) => [
            c.vocabShare.toFixed(3),
            c.vocabMode,
            integer(c.vocab),
            integer(c.ffn),
            `${(100 * c.removedRatio).toFixed(1)} %`,
            c.heldOutBitsPerByte.toFixed(4),
            c.excess.toFixed(4),
            c.standardError.toFixed(4),
            `${c.piecesMeasured}/${r.auto!.heldOutPieces}`,
            c.pass,
          ]),
        ],
        [false, false, true, true, true, true, true, true, true, false],
      ),
    );
    if (r.auto.candidates.some((c) => c.piecesMeasured < r.auto!.heldOutPieces))
      console.log(
        '(a split measured on fewer pieces: its bits per byte are on those pieces, its excess against the lowest on the same pieces)',
      );
    for (const w of r.auto.warnings) console.log(`warning: ${w}`);
  }
  if (r.compensation) {
    const c = r.compensation;
    const silent = c.layers.reduce((n, l) => n + l.silentKept, 0);
    const empty = c.layers.filter((l) => l.noStatistics).length;
    console.log(
      `compensation: down_proj refitted by least squares in ${c.layers.length - empty} of ${c.layers.length} layers (λ = ${c.damp} · mean Gram diagonal; channels chosen ${c.selection === 'greedy' ? 'greedily by OBS cost' : 'by lowest act²'})` +
        (silent ? `; ${silent} kept channels never fired on a counted token (held by the damping)` : '') +
        (empty ? `; ${empty} layers had no counted token and were sliced as is` : ''),
    );
  }
  if (r.gguf)
    console.log(
      `GGUF for llama.cpp: ${join(r.output, r.gguf.file)} (${r.gguf.architecture}, ${r.gguf.type}, ${bytes(r.gguf.bytes)} of tensors)`,
    );
  if (r.leftOut.length) console.log(`left out of the output: ${r.leftOut.map((l) => `${l.file} (${l.reason})`).join(', ')}`);
  const s = r.seconds;
  console.log(
    `time: ${s.total.toFixed(1)} s (read ${s.read.toFixed(1)}, calibrate ${s.calibrate.toFixed(1)}${r.calibration && r.calibration.precision !== 'fp32' ? ` in ${r.calibration.precision}` : ''}, score ${s.score.toFixed(1)}${r.auto ? `, search ${s.search.toFixed(1)}` : ''}, write ${s.write.toFixed(1)})`,
  );
}
