/**
 * Prunes every case of test/fixtures/pruned/cases.json with `compact prune` into OUT (default
 * .tmp/prune-cases) and records the sha256 of each output file, so that prune_oracle.py can
 * load them in transformers and the tests can check they re-create the very same bytes.
 *   node --import tsx tools/reference/write_prune_cases.ts [OUT]
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { buildCalibration } from '../../src/prune/calibration.js';

const out = process.argv[2] ?? '.tmp/prune-cases';
const cases = JSON.parse(readFileSync('test/fixtures/pruned/cases.json', 'utf8')) as { name: string; source: string; args: string[] }[];
const hashes: Record<string, Record<string, string>> = {};
for (const c of cases) {
  const dir = join(out, c.name);
  const code = await main(['node', 'compact', 'prune', c.source, '-o', dir, '--force', '--json', ...c.args]);
  if (code !== 0) throw new Error(`case ${c.name} failed`);
  hashes[c.name] = Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.safetensors'))
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(dir, f)))
          .digest('hex'),
      ]),
  );
}
writeFileSync(join(out, 'hashes.json'), `${JSON.stringify(hashes, null, 2)}\n`);

// Brute-force act² oracle input: the calibration windows and binary weights of stories260K-compact.
const act2Case = cases.find((c) => c.name === 'stories260K-compact')!;
const arg = (flag: string) => act2Case.args[act2Case.args.indexOf(flag) + 1];
const calibration = buildCalibration(loadTokenizer(act2Case.source), [arg('--calib')], {
  samples: Number(arg('--samples')),
  seqLen: Number(arg('--seq-len')),
  seed: 0,
  field: 'text',
});
const manifest = JSON.parse(readFileSync(join(out, act2Case.name, 'compact.json'), 'utf8')) as { old2new: number[] };
const weights = calibration.windows.map((w) => Float32Array.from(w, (id) => (manifest.old2new[id] >= 0 ? 1 : 0)));
writeFileSync(
  join(out, 'act2-case.json'),
  JSON.stringify({ source: act2Case.source, windows: calibration.windows, weights: weights.map((w) => Array.from(w)) }),
);
