/**
 * A tensor over 2 GiB through `compact prune` (issue 11: fs.writeSync refuses ≥ 2 GiB, and the
 * tensor was read whole). Writes (once) a random BF16 Llama whose embedding is 2.15 GB, prunes its
 * FFN by magnitude (the embedding is copied through the chunked writer), checks the copy is
 * byte-identical and reports time and peak RSS. Needs ~5 GB of free disk under the work folder.
 * Usage: node --import tsx bench/large-tensor.ts [work folder, default: $TMPDIR/compact-large]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { EMBED } from '../src/model/tensor-names.js';
import { randomCheckpoint } from './real-shapes.js';

const work = process.argv[2] ?? join(tmpdir(), 'compact-large');
const config = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  vocab_size: 1_050_000,
  hidden_size: 1024,
  intermediate_size: 256,
  num_hidden_layers: 1,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  tie_word_embeddings: true,
};
let t = performance.now();
const model = await randomCheckpoint(work, 'embedding-2.15GB', 1, config);
console.log(`input: ${model} (${((performance.now() - t) / 1000).toFixed(1)} s to write or find)`);
const out = join(work, 'pruned');
rmSync(out, { recursive: true, force: true });
t = performance.now();
const r = spawnSync(
  '/usr/bin/time',
  [
    '-f',
    '%M',
    process.execPath,
    '--import',
    'tsx',
    'test/helpers/cli-entry.ts',
    'prune',
    model,
    '-o',
    out,
    '--ffn',
    '128',
    '--criterion',
    'magnitude',
    '--json',
  ],
  { encoding: 'utf8' },
);
const seconds = (performance.now() - t) / 1000;
const peakKiB = Number(r.stderr.trim().split('\n').at(-1));
if (r.status !== 0) {
  console.log(`prune failed (exit ${r.status}): ${r.stderr}`);
  process.exit(1);
}
const digest = (dir: string): string => {
  const info = openCheckpoint(dir).tensors.get(EMBED)!;
  const hash = createHash('sha256');
  const fd = openSync(info.file, 'r');
  const buf = Buffer.alloc(64 << 20);
  for (let p = info.begin; p < info.end;) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, info.end - p), p);
    hash.update(buf.subarray(0, n));
    p += n;
  }
  closeSync(fd);
  return hash.digest('hex');
};
const same = digest(model) === digest(out);
const bytes = openCheckpoint(model).tensors.get(EMBED)!;
console.log(
  `embedding ${bytes.end - bytes.begin} bytes; prune --ffn 128 --criterion magnitude: exit 0 in ${seconds.toFixed(1)} s, peak RSS ${(peakKiB / 1024).toFixed(0)} MiB; embedding copied byte-identical: ${same}`,
);
rmSync(out, { recursive: true, force: true });
if (!same) process.exit(1);
