/**
 * npm run bench:rank-coverage: how often the tokens the paper's rank vocabulary removes occur in
 * the study's texts — the condition for common act² to differ from plain act² (docs/results.md).
 * For tinystories-llama32k at each V′ that the study's "compact" cells kept (read from
 * docs/study/tinystories-llama32k/study.json), the share of each text's tokens outside the rank
 * keep set: both calibration corpora (whole files) and both evaluated texts. Run `npm run study`
 * first (it writes the WikiText slices to .tmp/). Writes docs/study/rank-coverage.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';
import type { StudyRow } from '../src/study/study.js';
import { selectKeepSet } from '../src/vocab/keep-set.js';
import type { TokenizerFiles } from '../src/vocab/tokenizer-json.js';
import { sharedPath } from './shared.js';

const MODEL = sharedPath('models/tinystories-llama32k/hf');
const TEXTS: [string, string][] = [
  ['TinyStories calibration', 'data/tinystories/calibration_90pct.txt'],
  ['WikiText-2 calibration', '.tmp/wikitext-2-test-after-head.txt'],
  ['held-out TinyStories', 'data/tinystories/heldout_10pct.txt'],
  ['WikiText-2 head (evaluated)', '.tmp/wikitext-2-test-head.txt'],
];

const json = (file: string) => {
  try {
    return JSON.parse(readFileSync(`${MODEL}/${file}`, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};
const files: TokenizerFiles = {
  tokenizer: json('tokenizer.json'),
  tokenizerConfig: json('tokenizer_config.json'),
  config: json('config.json'),
  generationConfig: json('generation_config.json'),
  specialTokensMap: json('special_tokens_map.json'),
};
const tokenizer = loadTokenizer(MODEL);
const ids = TEXTS.map(([, file]) => encode(tokenizer, readFileSync(file, 'utf8')));
const study = JSON.parse(readFileSync('docs/study/tinystories-llama32k/study.json', 'utf8')) as { rows: StudyRow[] };
const cells = study.rows.filter((r) => r.method === 'compact' && !r.error && r.vocab != null);

const lines = cells.map((r) => {
  const keep = new Set(selectKeepSet(files, { size: r.vocab!, mode: 'rank' }).keep);
  const shares = ids.map((a) => `${((100 * a.filter((id) => !keep.has(id)).length) / a.length).toFixed(2)} %`);
  return `| ${Math.round(100 * r.ratio)} % | ${r.vocab!.toLocaleString('en-US')} | ${shares.join(' | ')} |`;
});
writeFileSync(
  'docs/study/rank-coverage.md',
  `Share of each text's tokens (tinystories-llama32k tokenizer) that the rank vocabulary of the "compact" cells removes
(\`npm run bench:rank-coverage\`; whole files: ${TEXTS.map(([name], i) => `${name} ${ids[i].length.toLocaleString('en-US')} tokens`).join(', ')}):

| compact at | V′ | ${TEXTS.map(([name]) => name).join(' | ')} |
| --- | ---: | ${TEXTS.map(() => '---:').join(' | ')} |
${lines.join('\n')}
`,
);
console.error('wrote docs/study/rank-coverage.md');
