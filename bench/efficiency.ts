/**
 * npm run bench:efficiency: what pruning gains, measured side by side. tinystories-llama32k (real
 * trained model, from ../shared) is pruned by 30 % with several methods; the dense model and each
 * pruned one are then measured by `compact eval --speed --json` in their own processes (so peak
 * RSS is theirs), round-robin over 5 rounds, and the medians are written to
 * docs/study/efficiency.md (included in docs/results.md by `npm run study`).
 *   npm run bench:efficiency [-- --ratio 0.3 --rounds 5 --python ../venv-ref/bin/python]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { median } from './common.js';
import { sharedPath } from './shared.js';

const { values: args } = parseArgs({
  options: {
    ratio: { type: 'string', default: '0.3' },
    rounds: { type: 'string', default: '5' },
    python: { type: 'string', default: '../venv-ref/bin/python' },
  },
});
// The same protocol in transformers (tools/bench/torch_decode.py), when a Python with torch is there.
const torchSide = existsSync(args.python!);
const ratio = Number(args.ratio);
const rounds = Number(args.rounds);
const dense = sharedPath('models/tinystories-llama32k/hf');
const cli = (argv: string[]) =>
  execFileSync(process.execPath, ['bin/compact.js', ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

mkdirSync('.tmp/efficiency', { recursive: true });
const variants: { name: string; dir: string }[] = [{ name: 'dense', dir: dense }];
const unreachable: string[] = [];
for (const method of ['compact', 'vocab-only', 'ffn-only', 'shortgpt']) {
  const dir = `.tmp/efficiency/${method}`;
  console.error(`pruning: ${method} @ ${ratio}`);
  try {
    cli(['prune', dense, '-o', dir, '--method', method, '--ratio', String(ratio), '--force', '--json']);
    variants.push({ name: method, dir });
  } catch (e) {
    // An unreachable budget is a finding, not a failure (e.g. six layers cannot give exactly 30 %).
    unreachable.push(`${method}: ${String((e as { stderr?: string }).stderr ?? e).trim()}`);
  }
}

interface EvalJson {
  efficiency: {
    parameters: { total: number; storedBytes: number };
    peakRssBytes: number;
    speed: { promptTokens: number; newTokens: number; prefillTokensPerSecond: number; msPerToken: number };
    pruning?: { seconds: { total: number } };
  };
}
interface TorchJson {
  prefillTokensPerSecond: number;
  msPerToken: number;
}
const runs = new Map<string, EvalJson[]>(variants.map((v) => [v.name, []]));
const torchRuns = new Map<string, TorchJson[]>(variants.map((v) => [v.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const v of variants) {
    console.error(`round ${round + 1}/${rounds}: ${v.name}`);
    const ours = JSON.parse(cli(['eval', v.dir, '--speed', '--repeats', '3', '--json'])) as EvalJson;
    runs.get(v.name)!.push(ours);
    if (!torchSide) continue;
    const { promptTokens, newTokens } = ours.efficiency.speed;
    const torchArgs = [
      'tools/bench/torch_decode.py',
      v.dir,
      '--prompt-tokens',
      String(promptTokens),
      '--new-tokens',
      String(newTokens),
      '--repeats',
      '3',
      '--threads',
      String(cpus().length),
    ];
    const out = execFileSync(args.python!, torchArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    torchRuns.get(v.name)!.push(JSON.parse(out.trim().split('\n').at(-1)!) as TorchJson);
  }
}

const MiB = 2 ** 20;
const summary = variants.map((v) => {
  const r = runs.get(v.name)!;
  const e = r[0].efficiency;
  return {
    name: v.name,
    parameters: e.parameters.total,
    weightMiB: e.parameters.storedBytes / MiB,
    rssMiB: median(r.map((x) => x.efficiency.peakRssBytes)) / MiB,
    prefill: median(r.map((x) => x.efficiency.speed.prefillTokensPerSecond)),
    msPerToken: median(r.map((x) => x.efficiency.speed.msPerToken)),
    pruneSeconds: e.pruning?.seconds.total,
    torchPrefill: torchSide ? median(torchRuns.get(v.name)!.map((x) => x.prefillTokensPerSecond)) : undefined,
    torchMsPerToken: torchSide ? median(torchRuns.get(v.name)!.map((x) => x.msPerToken)) : undefined,
  };
});
const base = summary[0];
const speed = runs.get('dense')![0].efficiency.speed;
const rows = summary.map(
  (s) =>
    `| ${s.name} | ${s.parameters.toLocaleString('en-US')} (${((100 * s.parameters) / base.parameters).toFixed(0)} %) | ${s.weightMiB.toFixed(1)} | ${s.rssMiB.toFixed(0)} (${(s.rssMiB / base.rssMiB).toFixed(2)}×) | ` +
    `${Math.round(s.prefill).toLocaleString('en-US')} (${(s.prefill / base.prefill).toFixed(2)}×) | ${s.msPerToken.toFixed(2)} (${(s.msPerToken / base.msPerToken).toFixed(2)}×) | ${s.pruneSeconds == null ? '—' : s.pruneSeconds.toFixed(1)} |` +
    (torchSide ? ` ${Math.round(s.torchPrefill!).toLocaleString('en-US')} | ${s.torchMsPerToken!.toFixed(2)} |` : ''),
);
function torchVersion(): string {
  return execFileSync(
    args.python!,
    ['-c', 'import torch, transformers; print(f"{transformers.__version__} / torch {torch.__version__}")'],
    { encoding: 'utf8' },
  ).trim();
}
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
writeFileSync(
  'docs/study/efficiency.md',
  `tinystories-llama32k, dense and pruned by ${ratio * 100} % of its parameters (default options), measured by
\`compact eval --speed\` (all weights resident in f32, key/value cache, one sequence; prefill of ${speed.promptTokens}
tokens, then ${speed.newTokens} decoded tokens): each number is the median of ${rounds} processes run round-robin
(each itself the median of 3 repeats); ratios against the dense model. ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}),
compact ${version}. Command: \`npm run bench:efficiency -- --ratio ${ratio} --rounds ${rounds}\`.${
    torchSide
      ? ` The last two columns run the same protocol in transformers ${torchVersion()} (tools/bench/torch_decode.py, ${cpus().length} threads, same rounds), for scale.`
      : ''
  }

| model | parameters | weights on disk (MiB) | peak RSS (MiB) | prefill (tokens/s) | decoding (ms/token) | pruning (s) |${torchSide ? ' transformers prefill | transformers decoding |' : ''}
| --- | ---: | ---: | ---: | ---: | ---: | ---: |${torchSide ? ' ---: | ---: |' : ''}
${rows.join('\n')}
${unreachable.length ? `\nNot reachable at ${ratio * 100} %:\n\n${unreachable.map((u) => `* ${u}`).join('\n')}\n` : ''}`,
);
console.log(readFileSync('docs/study/efficiency.md', 'utf8'));
