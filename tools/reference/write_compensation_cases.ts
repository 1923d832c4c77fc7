/**
 * Our side of the compensation oracle: prunes every case of test/fixtures/compensation/cases.json
 * with compensation (the library call the tests repeat) into OUT (default .tmp/compensation-cases),
 * and writes what compensation_oracle.py needs: the calibration windows, the common-token weight of
 * each position (1 where the input token is kept) and our kept channels.
 *   node --import tsx tools/reference/write_compensation_cases.ts [OUT]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SELECTION } from '../../src/prune/greedy-removal.js';
import { pruneCompensationCase, type CompensationCase } from '../../test/helpers/compensation-cases.js';

const out = process.argv[2] ?? '.tmp/compensation-cases';
const cases = JSON.parse(readFileSync('test/fixtures/compensation/cases.json', 'utf8')) as CompensationCase[];
for (const c of cases) {
  const dir = join(out, c.name);
  const { windows } = await pruneCompensationCase(c, dir);
  const manifest = JSON.parse(readFileSync(join(dir, 'compact.json'), 'utf8')) as { old2new: number[] | null; channels: number[][] };
  const weights = windows.map((w) => w.map((id) => (manifest.old2new == null || manifest.old2new[id] >= 0 ? 1 : 0)));
  writeFileSync(
    join(dir, 'oracle-input.json'),
    JSON.stringify({
      source: c.source,
      windows,
      weights,
      channels: manifest.channels,
      damp: c.damp ?? 0.01,
      selection: c.selection ?? DEFAULT_SELECTION,
    }),
  );
  console.log(c.name, 'written');
}
